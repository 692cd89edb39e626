"""AMLResponse (stand-in for azureml.contrib.services.aml_response)."""

import json

__all__ = ["AMLResponse"]


class AMLResponse:
    """A response returned as is by run(): AMLResponse(message, status_code, headers=None, json_str=False).

    message: bytes or str (or any JSON-serialisable value with json_str=True, which also sets
    Content-Type: application/json). Header values are sent as given (str())."""

    def __init__(self, message, status_code, headers=None, json_str=False, run_function_failed=False,
                 response_headers=None):
        self.status_code = int(status_code)
        hdrs = {}
        if json_str:
            message = json.dumps(message)
            hdrs["Content-Type"] = "application/json"
        else:
            hdrs["Content-Type"] = "text/html; charset=utf-8"
        for extra in (headers, response_headers):
            if extra:
                for k, v in dict(extra).items():
                    # a user's Content-Type replaces ours whatever its case
                    if k.lower() == "content-type":
                        hdrs.pop("Content-Type", None)
                    hdrs[k] = v
        if run_function_failed:
            hdrs["x-ms-run-function-failed"] = "True"
        self.headers = hdrs
        if message is None:
            message = b""
        if isinstance(message, str):
            message = message.encode("utf-8")
        elif not isinstance(message, (bytes, bytearray, memoryview)):
            message = str(message).encode("utf-8")
        self.data = bytes(message)

    def get_data(self, as_text=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    @property
    def status(self):
        return "%d" % self.status_code

    @property
    def mimetype(self):
        for k, v in self.headers.items():
            if k.lower() == "content-type":
                return str(v).split(";", 1)[0].strip()
        return None

    def __repr__(self):
        return "<AMLResponse %d, %d bytes>" % (self.status_code, len(self.data))
