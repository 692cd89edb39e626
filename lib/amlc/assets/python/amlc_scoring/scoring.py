"""The /score route of the scoring server: calling run(). How run() is called for a request (plain data,
request_headers, @rawhttp, @input_schema) is call_args; what it returned becomes a response in
result_response; Scoring (part of the Worker) runs it under the SIGALRM timeout, with the request recorded
in the worker's shared-memory slot so the supervisor can answer it if the worker never comes back."""

import json
import signal
import time
from urllib.parse import parse_qsl

from amlc_scoring.app import UNEXPECTED, ScoringTimeout, json_default, log_err, print_exc
from amlc_scoring.responses import HTML, JSON, RUN_FAILED, clean, message
from azureml.contrib.services.aml_request import AMLRequest, make_headers


class Refused(Exception):
    """A /score request run() cannot take (@input_schema): answered with `status` and a JSON message."""

    def __init__(self, status, text):
        super().__init__(text)
        self.status = status


def call_args(script, req, body, peer):
    """run()'s positional arguments and keyword arguments (None: none) for a request with this body.
    Raises Refused."""
    method = req.method
    query = req.query
    kwargs = None
    if script.rawhttp:
        args = (AMLRequest(method, req.path, query, make_headers(req.pairs), bytes(body),
                           peer[0] if peer else None),)
    elif script.schema:
        args = ()
        if method == "POST":
            if not req.hdrs.get("content-type", "").lower().startswith("application/json"):
                raise Refused(415, "Expects Content-Type to be application/json")
            if not body.strip():
                raise Refused(400, "POST body is empty. Expecting a JSON dictionary.")
            try:
                kwargs = json.loads(body.decode("utf-8"))
            except ValueError as e:
                raise Refused(400, "The request body is not valid JSON: %s" % e) from None
            if not isinstance(kwargs, dict):
                raise Refused(400, "Expecting a JSON dictionary whose keys are run()'s parameters")
        else:
            kwargs = query_args(query)
    elif not script.takes_data:
        args = ()
    elif method == "POST":
        args = (body.decode("utf-8", "replace"),)
    else:
        args = (query_json(query),)
    if script.wants_headers:
        if kwargs is None:
            kwargs = {}
        kwargs["request_headers"] = make_headers(req.pairs)
    return args, kwargs


def query_args(query):
    """The query's arguments as a dict (the first value of a repeated name)."""
    args = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        args.setdefault(k, v)
    return args


def query_json(query):
    """A GET's query as run()'s data: a JSON object string."""
    if not query:
        return "{}"
    return json.dumps(query_args(query))


def result_response(result, rid):
    """(status, body, content type, extra headers) of what run() returned: an AMLResponse-like object as
    is, anything else as JSON."""
    status = 200
    extra = []
    failed = False
    try:
        if hasattr(result, "status_code") and hasattr(result, "headers") and hasattr(result, "get_data"):
            status = int(result.status_code)
            data = result.get_data()
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif not isinstance(data, bytes):
                data = bytes(data)
            ctype = None
            for k, v in dict(result.headers).items():
                lk = k.lower()
                if lk == "content-type":
                    ctype = clean(v)
                elif lk not in ("content-length", "transfer-encoding", "connection"):
                    extra.append((clean(k), clean(v)))
            if ctype is None:
                ctype = HTML
            if status >= 500:
                failed = True
        else:
            if isinstance(result, (bytes, bytearray)):
                result = bytes(result).decode("utf-8", "replace")
            try:
                data = json.dumps(result).encode("utf-8")
            except TypeError:  # numpy-like values: slower path with a converter
                data = json.dumps(result, default=json_default).encode("utf-8")
            ctype = JSON
    except BaseException:
        print_exc("Cannot send the value returned by run() (request %s):" % rid)
        data = message(UNEXPECTED)
        status = 500
        ctype = JSON
        extra = []
        failed = True
    if failed:
        extra.append(RUN_FAILED)
    return status, data, ctype, extra


class Scoring:
    """The Worker's part that calls run(). Uses the Worker's script, cfg, slots and slot (its shared-memory
    slot), timeout_s, timeout_msg, in_run, _reply and _id_headers."""

    def _score(self, conn, req, holder):
        """Answers an authorised /score request whose body is the one item of `holder` (popped, so that the
        body is freed once run()'s argument is made from it)."""
        body = holder.pop()
        try:
            args, kwargs = call_args(self.script, req, body, conn.peer)
        except Refused as e:
            return self._reply(conn, req, e.status, message(str(e)), JSON)
        del body
        run = self.script.run
        timeout = self.timeout_s
        rid = conn.rid
        # What the supervisor needs to answer this request if the worker never comes back from run().
        self.slots.record_request(self.slot, conn.token,
                                  self._id_headers(conn, req).encode("latin-1", "replace") if conn.token else b"")
        self.in_run = True
        try:
            try:
                self.slots.set_busy(self.slot, time.monotonic())
                if timeout:
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                result = run(*args, **kwargs) if kwargs is not None else run(*args)
            finally:
                self._end_run()
        except ScoringTimeout:
            # The (one-shot) timer may have fired at the very start of the cleanup above and cut it short.
            self._end_run()
            log_err("run() timed out after %d ms (request %s)" % (self.cfg.timeout_ms, rid))
            return self._reply(conn, req, 500, self.timeout_msg, JSON, [RUN_FAILED],
                               time.monotonic())
        except BaseException:
            # SystemExit (sys.exit()) and KeyboardInterrupt too: a failed request, not a dead worker
            print_exc("Encountered Exception in run() (request %s):" % rid)
            return self._reply(conn, req, 500, message(UNEXPECTED), JSON, [RUN_FAILED],
                               time.monotonic())
        t1 = time.monotonic()
        status, data, ctype, extra = result_response(result, rid)
        return self._reply(conn, req, status, data, ctype, extra, t1)

    def _end_run(self):
        """Marks the worker out of run(). Safe to repeat; in_run is cleared first, so a SIGALRM that
        fires during this raises nothing."""
        self.in_run = False
        if self.timeout_s:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.slots.set_busy(self.slot, 0.0)

    def _on_alarm(self, signum, frame):
        if self.in_run:
            raise ScoringTimeout()
