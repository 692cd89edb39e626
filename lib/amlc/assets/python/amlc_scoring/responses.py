"""HTTP response pieces of the scoring server, shared by the workers and the supervisor: status lines,
the content types it answers with, and the JSON `{"message": ...}` error bodies."""

import json

_REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}
_STATUS_LINES = {}


def status_line(code):
    line = _STATUS_LINES.get(code)
    if line is None:
        line = "HTTP/1.1 %d %s\r\n" % (code, _REASONS.get(code, "Status"))
        _STATUS_LINES[code] = line
    return line


JSON = "application/json"
HTML = "text/html; charset=utf-8"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RUN_FAILED = ("x-ms-run-function-failed", "True")  # on a response of a failed (or timed-out) run()


def message(text):
    """The JSON error body {"message": text}."""
    return json.dumps({"message": text}).encode("utf-8")


def timeout_message(timeout_ms):
    """The body of the 500 answered for a run() past SCORING_TIMEOUT_MS."""
    return message("Scoring timeout after %d ms" % timeout_ms)


def closing_json(status, body, header_lines=b""):
    """A whole response with a JSON body that closes the connection; header_lines: more header lines
    (b"Name: value\r\n" each)."""
    return ((status_line(status) + "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body))
            .encode("latin-1") + header_lines + b"Connection: close\r\n\r\n" + body)


def clean(value):
    """value as a header value: str, no CR or LF."""
    s = str(value)
    if "\r" in s or "\n" in s:
        s = s.replace("\r", " ").replace("\n", " ")
    return s
