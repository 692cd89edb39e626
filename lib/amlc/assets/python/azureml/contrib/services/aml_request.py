"""AMLRequest and the @rawhttp decorator (stand-in for azureml.contrib.services.aml_request)."""

import json
from urllib.parse import parse_qsl

__all__ = ["AMLRequest", "rawhttp", "Headers"]


class Headers(dict):
    """Request headers: a dict keyed by Title-Case names (as Flask/werkzeug present them), with
    case-insensitive get / [] / in."""

    __slots__ = ()

    def __getitem__(self, key):
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            return dict.__getitem__(self, _title(key))

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return dict.__contains__(self, key) or (isinstance(key, str) and dict.__contains__(self, _title(key)))


def _title(name):
    return "-".join(p.capitalize() for p in name.split("-"))


def make_headers(pairs):
    h = Headers()
    for k, v in pairs:
        k = _title(k)
        if dict.__contains__(h, k):
            dict.__setitem__(h, k, dict.__getitem__(h, k) + ", " + v)
        else:
            dict.__setitem__(h, k, v)
    return h


class AMLRequest:
    """The HTTP request handed to a @rawhttp run(): method, path, full_path, args, headers, data."""

    def __init__(self, method="GET", path="/score", query_string="", headers=None, data=b"", remote_addr=None):
        self.method = method
        self.path = path
        self.query_string = query_string.encode("latin-1") if isinstance(query_string, str) else query_string
        if isinstance(headers, Headers):
            self.headers = headers
        else:
            self.headers = make_headers((headers or {}).items())
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.remote_addr = remote_addr
        self._args = None
        self._json = _UNSET

    @property
    def full_path(self):
        return self.path + "?" + self.query_string.decode("latin-1")

    @property
    def url(self):
        host = self.headers.get("Host", "localhost")
        qs = self.query_string.decode("latin-1")
        return "http://%s%s%s" % (host, self.path, "?" + qs if qs else "")

    @property
    def args(self):
        """Query arguments as a dict (the first value of a repeated argument; all via getlist)."""
        if self._args is None:
            self._args = _Args(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))
        return self._args

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @property
    def mimetype(self):
        ct = self.content_type or ""
        return ct.split(";", 1)[0].strip().lower()

    @property
    def is_json(self):
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        if as_text:
            return self.data.decode("utf-8", "replace")
        return self.data

    def get_json(self, force=False, silent=False, cache=True):
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError("Content-Type is not application/json (use get_json(force=True))")
        if self._json is _UNSET or not cache:
            try:
                value = json.loads(self.data.decode("utf-8")) if self.data else None
            except ValueError:
                if silent:
                    return None
                raise
            if not cache:
                return value
            self._json = value
        return self._json

    @property
    def json(self):
        return self.get_json(silent=True)

    def __repr__(self):
        return "<AMLRequest %s %s>" % (self.method, self.full_path)


_UNSET = object()


class _Args(dict):
    def __init__(self, pairs):
        super().__init__()
        self._pairs = pairs
        for k, v in pairs:
            self.setdefault(k, v)

    def getlist(self, key):
        return [v for k, v in self._pairs if k == key]

    def get(self, key, default=None, type=None):
        if key not in self:
            return default
        v = dict.__getitem__(self, key)
        if type is not None:
            try:
                return type(v)
            except (TypeError, ValueError):
                return default
        return v

    def to_dict(self, flat=True):
        return dict(self) if flat else {k: self.getlist(k) for k in self}


def rawhttp(func):
    """Marks run(request) to receive the raw AMLRequest instead of the decoded body."""
    func._aml_rawhttp = True
    return func
