"""HTTP/1.1 request parsing for the scoring server (RFC 9112): the request head and chunked bodies.

Strict where a lenient reading could be exploited or misread (request smuggling through Content-Length
and Transfer-Encoding, integers Python would parse but HTTP does not allow, control characters), tolerant
where clients commonly differ: bare LF line ends and empty lines before the request line are accepted.
Every malformed input raises BadRequest with the status to answer (400, 413, 431, 501, 505).
"""

import re

MAX_HEADERS = 100            # header fields per request (431 past it)
MAX_CHUNK_LINE = 4096        # a chunk-size line with its extensions and CR, without the LF (400 past it)

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
# The request line (its CR, if any, included); the target is visible ASCII or obs-text.
_REQUEST_LINE = re.compile(r"([%s]+) ([\x21-\x7e\x80-\xff]+) HTTP/([0-9])\.([0-9])\r?" % _TCHAR)
# The header section: "name: value" lines, each ending in "\n" or "\r\n"; no control character but HTAB
# (so no bare CR), no obs-fold (a line starting with white space), no empty or non-token name.
_FIELDS = re.compile(r"(?:[%s]+:[^\x00-\x08\x0a-\x1f\x7f]*\r?\n)*" % _TCHAR)
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?")


class BadRequest(Exception):
    """A request the server refuses: `status` is the answer (the connection is closed after it)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Request:
    """A parsed request head (never changed after parsing: a worker reuses it for a repeated head).
    `length` is the Content-Length (0 without one); `chunked` is set for Transfer-Encoding: chunked.
    `path` and `query` are split from the target (origin- or absolute-form)."""

    __slots__ = ("method", "target", "path", "query", "version", "keep", "hdrs", "pairs", "length", "chunked",
                 "expect")

    def __init__(self, method, target, path, query, version, keep, hdrs, pairs, length, chunked, expect):
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.keep = keep
        self.hdrs = hdrs
        self.pairs = pairs
        self.length = length
        self.chunked = chunked
        self.expect = expect


def skip_empty_lines(buf):
    """How many leading bytes of buf are empty lines ("\\r\\n" or "\\n") to ignore before a request line."""
    i = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 10:
            i += 1
        elif c == 13 and i + 1 < n and buf[i + 1] == 10:
            i += 2
        else:
            break
    return i


def head_end(buf, start=0):
    """(end of the head, start of the body) of the head that begins at buf[start], or None while its
    empty line has not arrived. The head is buf[start:end] (without the final line end)."""
    crlf = buf.find(b"\n\r\n", start)
    lf = buf.find(b"\n\n", start, crlf + 1 if crlf >= 0 else len(buf))
    if lf >= 0:
        end, body = lf, lf + 2
    elif crlf >= 0:
        end, body = crlf, crlf + 3
    else:
        return None
    if end > start and buf[end - 1] == 13:
        end -= 1
    return end, body


def parse_head(raw):
    """Parses a request head (request line and header fields, without the empty line). Raises BadRequest."""
    line, _, fields = raw.decode("latin-1").partition("\n")
    m = _REQUEST_LINE.fullmatch(line)
    if m is None:
        raise BadRequest(400, "Malformed request line")
    method, target, major, minor = m.groups()
    if major != "1":
        raise BadRequest(505, "HTTP version %s.%s is not supported (use HTTP/1.1)" % (major, minor))
    version = "HTTP/1.0" if minor == "0" else "HTTP/1.1"
    if target[0] == "/":
        path, _, query = target.partition("?")
    else:
        path, query = _split_target(method, target)
    hdrs = {}
    pairs = []
    if fields:
        fields += "\n"
        if _FIELDS.fullmatch(fields) is None:
            raise BadRequest(400, "Malformed header field")
        lines = fields.split("\n")
        lines.pop()
        if len(lines) > MAX_HEADERS:
            raise BadRequest(431, "More than %d header fields" % MAX_HEADERS)
        for field in lines:
            k, _, v = field.partition(":")
            v = v.strip(" \t\r")
            pairs.append((k, v))
            k = k.lower()
            if k in hdrs:
                if k == "host":
                    raise BadRequest(400, "More than one Host header")
                hdrs[k] = hdrs[k] + ", " + v
            else:
                hdrs[k] = v
    conn = hdrs.get("connection")
    if conn is None:
        keep = version == "HTTP/1.1"
    elif version == "HTTP/1.1":
        keep = "close" not in _list(conn.lower())
    else:
        keep = "keep-alive" in _list(conn.lower())
    length = 0
    chunked = False
    te = hdrs.get("transfer-encoding")
    cl = hdrs.get("content-length")
    if te is None and cl is None:
        pass
    elif te is not None:
        if version == "HTTP/1.0":
            raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")
        if cl is not None:
            raise BadRequest(400, "Both Content-Length and Transfer-Encoding")
        if te.lower() != "chunked":
            raise BadRequest(501, "Unsupported Transfer-Encoding: %s (only chunked)" % te)
        chunked = True
    elif cl is not None:
        value = cl
        if "," in cl:
            values = set(_list(cl))
            if len(values) != 1:
                raise BadRequest(400, "Conflicting Content-Length values")
            value = values.pop()
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise BadRequest(400, "Invalid Content-Length: %s" % cl[:40])
        length = int(value)
    expect = hdrs.get("expect")
    if expect is not None:
        expect = expect.lower() == "100-continue"
    return Request(method, target, path, query, version, keep, hdrs, pairs, length, chunked, expect)


def _list(value):
    return [p.strip(" \t") for p in value.split(",")]


def _split_target(method, target):
    if target[0] != "/":
        if target == "*":
            if method != "OPTIONS":
                raise BadRequest(400, "Request target * is only for OPTIONS")
            return "*", ""
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
            raise BadRequest(400, "Malformed request target")
        i = min((j for j in (rest.find("/"), rest.find("?")) if j >= 0), default=-1)
        target = "/" if i < 0 else ("/" + rest[i:] if rest[i] == "?" else rest[i:])
    path, _, query = target.partition("?")
    return path, query


class ChunkedBody:
    """Incremental decoder of a chunked request body: feed() the bytes as they arrive; `done` once the
    last chunk and the trailer section were read. The decoded body is `body` (at most `limit` bytes, else
    413); each step is linear in the new bytes."""

    SIZE, DATA, DATA_END, TRAILER, DONE = range(5)
    __slots__ = ("limit", "body", "state", "left", "trailer_bytes")

    def __init__(self, limit, max_trailer):
        self.limit = limit
        self.body = bytearray()
        self.state = self.SIZE
        self.left = 0
        self.trailer_bytes = max_trailer

    @property
    def done(self):
        return self.state == self.DONE

    def feed(self, buf, pos=0):
        """Consumes buf[pos:] as far as it goes; returns the position after what was consumed."""
        n = len(buf)
        view = None
        while pos < n:
            state = self.state
            if state == self.DATA:
                take = min(self.left, n - pos)
                if view is None:
                    view = memoryview(buf)
                self.body += view[pos:pos + take]
                pos += take
                self.left -= take
                if not self.left:
                    self.state = self.DATA_END
                continue
            if state == self.DATA_END:
                c = buf[pos]
                if c == 10:
                    pos += 1
                elif c == 13 and pos + 1 < n and buf[pos + 1] == 10:
                    pos += 2
                elif c == 13 and pos + 1 == n:
                    break
                else:
                    raise BadRequest(400, "Malformed chunked request body: chunk data is not followed by CRLF")
                self.state = self.SIZE
                continue
            if state == self.DONE:
                break
            # The line's LF is looked for only as far as the line may go, so that a long line is refused
            # the same way whether it arrived at once or in pieces (and the search stays linear).
            if state == self.SIZE:
                eol = buf.find(b"\n", pos, pos + MAX_CHUNK_LINE + 1)
                if eol < 0:
                    if n - pos > MAX_CHUNK_LINE:
                        raise BadRequest(400, "Malformed chunked request body: chunk-size line too long")
                    break
            else:
                eol = buf.find(b"\n", pos, pos + max(self.trailer_bytes, 0) + 1)
                if eol < 0:
                    if n - pos > self.trailer_bytes:
                        raise BadRequest(431, "Chunked request trailers are too large")
                    break
            line = bytes(buf[pos:eol])
            if line.endswith(b"\r"):
                line = line[:-1]
            pos = eol + 1
            if state == self.SIZE:
                m = _CHUNK_SIZE.fullmatch(line)
                if m is None:
                    raise BadRequest(400, "Malformed chunked request body: bad chunk-size line")
                size = int(m.group(1), 16)
                if not size:
                    self.state = self.TRAILER
                elif size > self.limit - len(self.body):
                    raise BadRequest(413, "Request body is larger than %d bytes" % self.limit)
                else:
                    self.left = size
                    self.state = self.DATA
            else:
                self.trailer_bytes -= len(line) + 2
                if self.trailer_bytes < 0:
                    raise BadRequest(431, "Chunked request trailers are too large")
                if not line:
                    self.state = self.DONE
                    break
                if _FIELDS.fullmatch(line.decode("latin-1") + "\n") is None:
                    raise BadRequest(400, "Malformed chunked request body: bad trailer field")
        return pos
