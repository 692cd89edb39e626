"""amlc scoring server: `python3 -m amlc_scoring.server` (configured by environment variables, see
README.md).

Process model: a supervisor process forks WORKER_COUNT workers. Each worker loads the entry script,
calls init() once, then binds its own listening socket on AMLC_HOST:AMLC_PORT with SO_REUSEPORT (the
kernel spreads connections over the workers) and serves HTTP/1.1 (keep-alive, pipelining) from a
single-threaded epoll loop; run() executes in that thread, bounded by SIGALRM. The supervisor
replaces workers that die or stay stuck in run() past SCORING_TIMEOUT_MS + AMLC_TIMEOUT_GRACE_MS, and
exits non-zero when a worker fails to start (init() raised).
"""

import collections
import errno
import json
import mmap
import os
import select
import signal
import socket
import struct
import sys
import time
import uuid
from urllib.parse import parse_qsl

from amlc_scoring.app import (MAX_HEAD, MAX_REQUEST_ID, MIN_BODY_BUDGET, REQUEST_IDLE_S, SMALL_BODY, UNEXPECTED,
                              Config, ConfigError, Keys, ScoringTimeout, UserScript, json_default, log, log_err,
                              print_exc)
from amlc_scoring.protocol import BadRequest, ChunkedBody, head_end, parse_head, skip_empty_lines
from azureml.contrib.services.aml_request import AMLRequest, make_headers

_REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}
_STATUS_LINES = {}


def _status_line(code):
    line = _STATUS_LINES.get(code)
    if line is None:
        line = "HTTP/1.1 %d %s\r\n" % (code, _REASONS.get(code, "Status"))
        _STATUS_LINES[code] = line
    return line


JSON = "application/json"
HTML = "text/html; charset=utf-8"

# Shared memory, per worker slot: run() start (monotonic, 0 = idle), ready flag, open connections.
_SLOT = struct.Struct("ddd")
_D = struct.Struct("d")
_BUSY, _READY, _CONNS = 0, 8, 16
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_ERRMASK = select.EPOLLERR | select.EPOLLHUP
_RECV = 65536          # bytes read at once outside a body
_RECV_BODY = 1 << 20   # bytes read at once into a body
_LINGER_IDLE = 2.0     # after our close: drain the client's unread data while it keeps coming ...
_LINGER_MAX = 10.0     # ... for at most this long
_HEAD_CACHE_SIZE = 256  # parsed request heads a worker keeps ...
_HEAD_CACHE_BYTES = 2048  # ... of at most this size


def _msg(text):
    return json.dumps({"message": text}).encode("utf-8")


def _clean(value):
    s = str(value)
    if "\r" in s or "\n" in s:
        s = s.replace("\r", " ").replace("\n", " ")
    return s


class _Conn:
    __slots__ = ("sock", "fd", "peer", "buf", "wbuf", "closing", "linger", "linger_end", "last",
                 "started", "req", "body", "need", "dec", "discard", "reserved", "want", "paused", "rid", "t0",
                 "ids")

    def __init__(self, sock, peer, now):
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.buf = b""           # received bytes not consumed yet
        self.wbuf = None         # response bytes the socket did not take yet
        self.closing = False     # close after the response being sent
        self.linger = 0.0        # draining after our close, until then
        self.linger_end = 0.0
        self.last = now          # last bytes received
        self.started = 0.0       # first bytes of the request head whose end has not arrived yet
        self.req = None          # the request whose body is being read
        self.body = None         # its Content-Length body so far (bytearray)
        self.need = 0            # body bytes still to read
        self.dec = None          # its chunked body decoder
        self.discard = 0         # body bytes of an answered request to skip
        self.reserved = 0        # bytes of the worker's body budget this connection holds
        self.want = 0            # bytes of budget it waits for (paused: not reading)
        self.paused = False
        self.rid = None          # the current request's id (x-request-id or a new UUID) ...
        self.t0 = 0.0            # ... when its head was in ...
        self.ids = None          # ... and its request-id/CORS response header lines (made once)


class Worker:
    """One worker process: the user's script plus an epoll HTTP loop."""

    def __init__(self, cfg, script, keys, slot_mem, slot):
        self.cfg = cfg
        self.script = script
        self.keys = keys
        self.mem = slot_mem
        self.slot_off = slot * _SLOT.size
        self.nworkers = cfg.workers
        self.limit = 1 << 30  # connections above this (fair share + 1) are closed after their response
        self.nresp = 0
        self.nlinger = 0
        self.conns = {}
        self.ep = None
        self.lsock = None
        self.in_run = False
        self.timeout_s = cfg.timeout_ms / 1000.0
        self.timeout_msg = _msg("Scoring timeout after %d ms" % cfg.timeout_ms)
        self.max_body = cfg.max_body
        self.too_large = "Request body is larger than %d bytes" % cfg.max_body
        self.budget = max(cfg.max_body, MIN_BODY_BUDGET)
        self.reserved = 0
        self.waiters = collections.deque()  # paused connections, first come first served
        self.resumed = []
        self.request_idle = min(REQUEST_IDLE_S, cfg.keepalive_s)
        self.scratch = bytearray(_RECV)
        self.heads = {}  # request head bytes -> Request: clients tend to repeat theirs
        self.swagger_cache = {}
        self.ppid = os.getppid()

    # ---- setup -------------------------------------------------------------------------------------

    def listen(self):
        family = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((self.cfg.host, self.cfg.port))
        s.listen(1024)
        s.setblocking(False)
        self.lsock = s
        self.ep = select.epoll()
        self.ep.register(s.fileno(), _EPOLLIN)

    def _on_alarm(self, signum, frame):
        if self.in_run:
            raise ScoringTimeout()

    # ---- loop --------------------------------------------------------------------------------------

    def serve_forever(self):
        if self.timeout_s > 0:
            signal.signal(signal.SIGALRM, self._on_alarm)
        lfd = self.lsock.fileno()
        conns = self.conns
        poll = self.ep.poll
        next_sweep = time.monotonic() + 1.0
        while True:
            try:
                events = poll(1.0)
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == lfd:
                    self._accept()
                    continue
                conn = conns.get(fd)
                if conn is None:
                    continue
                try:
                    if conn.paused:
                        self._close(conn)  # only errors and hang-ups are reported for a paused connection
                    elif ev & _EPOLLOUT:
                        self._on_writable(conn)
                    elif ev & (_EPOLLIN | _ERRMASK):
                        self._on_readable(conn)
                except Exception:
                    print_exc("amlc-scoring: internal error on a connection (closed):")
                    self._close(conn)
            while self.resumed:
                conn = self.resumed.pop()
                if conn.fd in conns and conns[conn.fd] is conn:
                    try:
                        self._process(conn)
                    except Exception:
                        print_exc("amlc-scoring: internal error on a connection (closed):")
                        self._close(conn)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                self._sweep(now)

    def _sweep(self, now):
        if os.getppid() != self.ppid:
            log_err("supervisor is gone; worker exits")
            os._exit(0)
        idle = self.cfg.keepalive_s
        for conn in list(self.conns.values()):
            if conn.linger:
                if now > conn.linger:
                    self._close(conn)
            elif conn.paused or conn.wbuf is not None:
                continue
            elif conn.req is not None or conn.discard or conn.buf:
                # inside a request: it must keep coming, and a head must be complete in time
                if now - conn.last > self.request_idle or (conn.started and now - conn.started > self.request_idle):
                    self._error_close(conn, 408, "Request not received in time")
            elif now - conn.last > idle:
                self._close(conn)

    def _accept(self):
        for _ in range(64):
            try:
                sock, peer = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log_err("accept failed: %s" % e)
                break
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, peer, time.monotonic())
            self.conns[conn.fd] = conn
            self.ep.register(conn.fd, _EPOLLIN)
        self._publish()

    def _publish(self):
        """Shares this worker's count of active connections and refreshes the fair-share limit."""
        if self.nworkers > 1:
            _D.pack_into(self.mem, self.slot_off + _CONNS, float(len(self.conns) - self.nlinger))
            self._update_limit()

    def _update_limit(self):
        mem = self.mem
        total = 0.0
        alive = 0
        for i in range(self.nworkers):
            base = i * _SLOT.size
            if _D.unpack_from(mem, base + _READY)[0] == 1.0:
                alive += 1
                total += _D.unpack_from(mem, base + _CONNS)[0]
        self.limit = int(-(-total // alive)) + 1 if alive > 1 else 1 << 30

    def _close(self, conn):
        if self.conns.pop(conn.fd, None) is None:
            return
        if conn.linger:
            self.nlinger -= 1
        self._release(conn)
        self._publish()
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        conn.req = conn.body = conn.dec = None
        conn.buf = b""

    def _finish_close(self, conn):
        """Server-side close after the response went out: half-close and drain what the client still
        sends (while it keeps coming, up to _LINGER_MAX), so that unread request data does not turn into
        a reset that loses the response."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        now = time.monotonic()
        conn.linger = now + _LINGER_IDLE
        conn.linger_end = now + _LINGER_MAX
        self.nlinger += 1
        self._release(conn)
        self._publish()
        conn.buf = b""
        conn.req = conn.body = conn.dec = None
        conn.discard = 0

    # ---- body budget -------------------------------------------------------------------------------

    def _reserve(self, conn, amount):
        """Takes `amount` bytes of the body budget for conn, or pauses reading it until they are free."""
        if not self.waiters and self.reserved + amount <= self.budget:
            self.reserved += amount
            conn.reserved += amount
            return True
        conn.want = amount
        conn.paused = True
        self.waiters.append(conn)
        self.ep.modify(conn.fd, 0)
        return False

    def _release(self, conn):
        """Gives back conn's budget (or its place in the queue) and resumes the waiters that now fit."""
        if conn.paused:
            conn.paused = False
            conn.want = 0
            try:
                self.waiters.remove(conn)
            except ValueError:
                pass
        elif not conn.reserved:
            return
        self.reserved -= conn.reserved
        conn.reserved = 0
        waiters = self.waiters
        while waiters and self.reserved + waiters[0].want <= self.budget:
            c = waiters.popleft()
            self.reserved += c.want
            c.reserved += c.want
            c.want = 0
            c.paused = False
            c.last = time.monotonic()
            self.ep.modify(c.fd, _EPOLLIN)
            if c.req is not None and c.req.expect and not c.body and c.dec is None:
                self._send(c, b"HTTP/1.1 100 Continue\r\n\r\n")
            self.resumed.append(c)

    # ---- I/O ---------------------------------------------------------------------------------------

    def _on_readable(self, conn):
        if conn.linger:
            try:
                n = conn.sock.recv_into(self.scratch)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                n = 0
            if not n:
                self._close(conn)
            else:
                conn.linger = min(time.monotonic() + _LINGER_IDLE, conn.linger_end)
            return
        body = conn.req is not None and conn.dec is None
        try:
            data = conn.sock.recv(min(conn.need, _RECV_BODY) if body else _RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.last = time.monotonic()
        if body:
            conn.body += data
            conn.need -= len(data)
            if conn.need:
                return
            holder = [conn.body]
            conn.body = data = None
            self._request(conn, conn.req, holder)
        elif conn.discard:
            n = len(data)
            if n <= conn.discard:
                conn.discard -= n
                return
            data = data[conn.discard:]
            conn.discard = 0
            conn.buf = data
        elif conn.buf:
            if isinstance(conn.buf, bytes):
                conn.buf = bytearray(conn.buf)
            conn.buf += data
        else:
            conn.buf = data
        self._process(conn)

    def _on_writable(self, conn):
        try:
            n = conn.sock.send(conn.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.wbuf[:n]
        if conn.wbuf:
            return
        conn.wbuf = None
        self.ep.modify(conn.fd, 0 if conn.paused else _EPOLLIN)
        if conn.closing:
            self._finish_close(conn)
            return
        self._process(conn)

    def _send(self, conn, data):
        if conn.wbuf is not None:
            conn.wbuf += data
            return
        try:
            n = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._close(conn)
            return
        if n < len(data):
            conn.wbuf = bytearray(data[n:])
            self.ep.modify(conn.fd, _EPOLLOUT)
        elif conn.closing:
            self._finish_close(conn)

    # ---- HTTP parsing ------------------------------------------------------------------------------

    def _process(self, conn):
        """Handles every complete request in conn.buf (pipelining), stopping while output is blocked,
        the connection waits for body budget, or a body is incomplete."""
        conns = self.conns
        while conn.wbuf is None and not conn.closing and not conn.paused and conn.fd in conns:
            buf = conn.buf
            if conn.dec is not None:
                if not buf:
                    return
                dec = conn.dec
                try:
                    pos = dec.feed(buf)
                except BadRequest as e:
                    self._error_close(conn, e.status, str(e))
                    return
                conn.buf = buf[pos:] if pos < len(buf) else b""
                if dec.done:
                    holder = [dec.body]
                    dec.body = None
                    self._request(conn, conn.req, holder)
                    continue
                if len(dec.body) > SMALL_BODY and not conn.reserved:
                    self._reserve(conn, self.max_body)
                return
            if conn.req is not None:
                return  # a Content-Length body: _on_readable reads it
            if conn.discard:
                n = min(conn.discard, len(buf))
                conn.discard -= n
                buf = conn.buf = buf[n:]
            if not buf:
                return
            if buf[0] == 13 or buf[0] == 10:
                buf = conn.buf = buf[skip_empty_lines(buf):]
                if not buf:
                    return
            found = head_end(buf)
            if found is None:
                if len(buf) > MAX_HEAD:
                    self._error_close(conn, 431, "Request headers are larger than %d bytes" % MAX_HEAD)
                elif not conn.started:
                    conn.started = time.monotonic()
                return
            end, start = found
            conn.started = 0.0
            if end > MAX_HEAD:
                self._error_close(conn, 431, "Request headers are larger than %d bytes" % MAX_HEAD)
                return
            raw = bytes(buf[:end])
            req = self.heads.get(raw)
            if req is None:
                try:
                    req = parse_head(raw)
                except BadRequest as e:
                    self._error_close(conn, e.status, str(e))
                    return
                if end <= _HEAD_CACHE_BYTES:
                    if len(self.heads) >= _HEAD_CACHE_SIZE:
                        self.heads.clear()
                    self.heads[raw] = req
            self._head(conn, req, buf[start:])

    def _head(self, conn, req, rest):
        """A request head is in: answer now when the request needs no body (or is refused), else start
        reading the body, within the body budget."""
        conn.t0 = time.monotonic()
        rid = req.hdrs.get("x-request-id")
        conn.rid = rid if rid is not None else str(uuid.uuid4())
        conn.ids = None
        answer = self._route(conn, req)
        if answer is not None:
            # The body is not needed: skip it when it is small or already here, else close after the answer.
            if req.chunked:
                conn.closing = True
                conn.buf = b""
            elif len(rest) >= req.length:
                conn.buf = rest[req.length:] if req.length else rest
            elif req.length - len(rest) <= SMALL_BODY and req.keep:
                conn.discard = req.length - len(rest)
                conn.buf = b""
            else:
                conn.closing = True
                conn.buf = b""
            self._reply(conn, req, *answer)
            return
        if req.chunked:
            conn.req = req
            conn.dec = ChunkedBody(self.max_body, MAX_HEAD)
            conn.buf = rest
            if req.expect and not rest:
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        need = req.length
        if need > self.max_body:
            self._error_close(conn, 413, self.too_large)
            return
        if len(rest) >= need:
            conn.buf = rest[need:]
            self._request(conn, req, [rest[:need]])
            return
        conn.req = req
        conn.body = bytearray(rest)
        conn.need = need - len(rest)
        conn.buf = b""
        if need > SMALL_BODY and not self._reserve(conn, need):
            return  # 100 Continue (if asked for) when reading resumes
        if req.expect and not rest:
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _request(self, conn, req, holder):
        """The body of the request being read is complete (the one item of `holder`, so that _score can
        drop the last reference once run()'s argument is made from it): answer it."""
        conn.req = conn.dec = conn.body = None
        conn.need = 0
        try:
            self._score(conn, req, holder)
        finally:
            if conn.reserved:
                self._release(conn)

    def _error_close(self, conn, status, message):
        conn.closing = True
        conn.buf = b""
        conn.req = conn.body = conn.dec = None
        conn.need = conn.discard = 0
        body = _msg(message)
        self._send(conn, ("%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % (_status_line(status), len(body))).encode("latin-1") + body)

    # ---- routing -----------------------------------------------------------------------------------

    def _route(self, conn, req):
        """The answer (status, body, content type, extra headers) of a request that does not run the
        script, from its head alone; None for an authorised /score request (its body is read first)."""
        method = req.method
        path = req.path
        if len(conn.rid) > MAX_REQUEST_ID:
            conn.closing = True
            conn.rid = None
            return (431, _msg("x-request-id header must be at most %d characters" % MAX_REQUEST_ID), JSON, None)
        if path == "/score":
            if method == "POST" or method == "GET":
                if self.keys is not None and not self.keys.check(req.hdrs.get("authorization"), conn.t0):
                    return self._unauthorized()
                return None
            if method == "OPTIONS":
                return self._options(req)
            return 405, _msg("Method %s is not allowed on /score" % method), JSON, [("Allow", "GET, POST, OPTIONS")]
        if path == "/":
            if method == "GET" or method == "HEAD":
                return 200, b"Healthy", HTML, None
            if method == "OPTIONS":
                return self._options(req)
            return 405, _msg("Method %s is not allowed on /" % method), JSON, [("Allow", "GET, HEAD, OPTIONS")]
        if path == "/swagger.json":
            if method == "GET" or method == "HEAD":
                if self.keys is not None and not self.keys.check(req.hdrs.get("authorization"), conn.t0):
                    return self._unauthorized()
                status, doc = self._swagger(req.query)
                return status, doc, JSON, None
            return (405, _msg("Method %s is not allowed on /swagger.json" % method), JSON,
                    [("Allow", "GET, HEAD")])
        if path == "*" and method == "OPTIONS":
            return self._options(req)
        return 404, _msg("Not found: %s" % path), JSON, None

    @staticmethod
    def _unauthorized():
        return (401, _msg("Unauthorized: send a service key as 'Authorization: Bearer <key>'"), JSON,
                [("WWW-Authenticate", "Bearer")])

    def _options(self, req):
        extra = [("Allow", "GET, POST, OPTIONS")]
        if self.cfg.cors_origins:
            extra.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
            req_h = req.hdrs.get("access-control-request-headers")
            extra.append(("Access-Control-Allow-Headers", _clean(req_h) if req_h else
                          "Authorization, Content-Type, x-request-id, x-ms-client-request-id"))
            extra.append(("Access-Control-Max-Age", "600"))
        return 200, b"", HTML, extra

    def _score(self, conn, req, holder):
        body = holder.pop()
        script = self.script
        method = req.method
        path = req.path
        query = req.query
        hdrs = req.hdrs
        kwargs = None
        if script.rawhttp:
            args = (AMLRequest(method, path, query, make_headers(req.pairs), bytes(body),
                               conn.peer[0] if conn.peer else None),)
        elif script.schema:
            args = ()
            if method == "POST":
                if not hdrs.get("content-type", "").lower().startswith("application/json"):
                    return self._reply(conn, req, 415, _msg("Expects Content-Type to be application/json"), JSON)
                if not body.strip():
                    return self._reply(conn, req, 400, _msg("POST body is empty. Expecting a JSON dictionary."), JSON)
                try:
                    kwargs = json.loads(body.decode("utf-8"))
                except ValueError as e:
                    return self._reply(conn, req, 400, _msg("The request body is not valid JSON: %s" % e), JSON)
                if not isinstance(kwargs, dict):
                    return self._reply(conn, req, 400, _msg("Expecting a JSON dictionary whose keys are run()'s "
                                                            "parameters"), JSON)
            else:
                kwargs = {}
                for k, v in parse_qsl(query, keep_blank_values=True):
                    kwargs.setdefault(k, v)
        elif not script.takes_data:
            args = ()
        elif method == "POST":
            args = (body.decode("utf-8", "replace"),)
        else:
            args = (self._query_json(query),)
        del body
        if script.wants_headers:
            if kwargs is None:
                kwargs = {}
            kwargs["request_headers"] = make_headers(req.pairs)
        run = script.run
        mem = self.mem
        off = self.slot_off
        timeout = self.timeout_s
        rid = conn.rid
        status = 200
        extra = []
        failed = False
        self.in_run = True
        try:
            try:
                if timeout:
                    _D.pack_into(mem, off, time.monotonic())
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                result = run(*args, **kwargs) if kwargs is not None else run(*args)
            finally:
                if timeout:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    _D.pack_into(mem, off, 0.0)
                self.in_run = False
        except ScoringTimeout:
            log_err("run() timed out after %d ms (request %s)" % (self.cfg.timeout_ms, rid))
            return self._reply(conn, req, 500, self.timeout_msg, JSON, [("x-ms-run-function-failed", "True")],
                               time.monotonic())
        except Exception:
            print_exc("Encountered Exception in run() (request %s):" % rid)
            return self._reply(conn, req, 500, _msg(UNEXPECTED), JSON, [("x-ms-run-function-failed", "True")],
                               time.monotonic())
        t1 = time.monotonic()
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
                        ctype = _clean(v)
                    elif lk not in ("content-length", "transfer-encoding", "connection"):
                        extra.append((_clean(k), _clean(v)))
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
        except Exception:
            print_exc("Cannot send the value returned by run() (request %s):" % rid)
            data = _msg(UNEXPECTED)
            status = 500
            ctype = JSON
            extra = []
            failed = True
        if failed:
            extra.append(("x-ms-run-function-failed", "True"))
        return self._reply(conn, req, status, data, ctype, extra, t1)

    @staticmethod
    def _query_json(query):
        if not query:
            return "{}"
        args = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            args.setdefault(k, v)
        return json.dumps(args)

    def _swagger(self, query):
        version = "2"
        if query:
            for k, v in parse_qsl(query, keep_blank_values=True):
                if k == "version":
                    version = v.strip()
        if version not in ("2", "3"):
            return 404, _msg("Swagger version %s is not supported (use 2 or 3)" % version)
        path = os.path.join(self.cfg.app_root, "swagger%s.json" % version)
        try:
            st = os.stat(path)
        except OSError:
            return 200, self._generated_swagger(version)
        cached = self.swagger_cache.get(version)
        if cached and cached[0] == st.st_mtime_ns:
            return 200, cached[1]
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return 500, _msg("Cannot read %s: %s" % (os.path.basename(path), e))
        self.swagger_cache[version] = (st.st_mtime_ns, data)
        return 200, data

    def _generated_swagger(self, version):
        title = os.environ.get("SERVICE_NAME") or "ML service"
        ver = os.environ.get("SERVICE_VERSION") or "1.0"
        sec = [{"Bearer": []}] if self.keys is not None else []
        in_schema = self.script.input_schema or {}
        out_schema = self.script.output_schema or {}
        responses = {"200": {"description": "Success", "schema": out_schema},
                     "default": {"description": "Failure", "schema": {"$ref": "#/definitions/ErrorResponse"}}}
        err_def = {"type": "object", "properties": {"message": {"type": "string"}}}
        if version == "2":
            doc = {
                "swagger": "2.0",
                "info": {"title": title, "description": "API specification for the Azure Machine Learning service %s"
                         % title, "version": ver},
                "schemes": ["http"],
                "consumes": ["application/json"],
                "produces": ["application/json"],
                "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header",
                                                   "description": "For example: Bearer abc123"}},
                "paths": {
                    "/": {"get": {"operationId": "ServiceHealthCheck", "description": "Simple health check endpoint "
                                  "to ensure the service is up at any given point.",
                                  "responses": {"200": {"description": "If service is up and running, this response "
                                                        "will be returned with the content 'Healthy'",
                                                        "schema": {"type": "string"}},
                                                "default": responses["default"]}}},
                    "/score": {"post": {"operationId": "RunMLService", "description": "Run web service's model "
                                        "and get the prediction output", "security": sec,
                                        "parameters": [{"name": "serviceInputPayload", "in": "body",
                                                        "description": "The input payload for executing the "
                                                        "real-time machine learning service.", "schema": in_schema}],
                                        "responses": responses}},
                },
                "definitions": {"ErrorResponse": err_def},
            }
        else:
            doc = {
                "openapi": "3.0.1",
                "info": {"title": title, "version": ver},
                "paths": {
                    "/": {"get": {"operationId": "ServiceHealthCheck",
                                  "responses": {"200": {"description": "Healthy",
                                                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
                    "/score": {"post": {"operationId": "RunMLService", "security": sec,
                                        "requestBody": {"content": {"application/json": {"schema": in_schema}}},
                                        "responses": {"200": {"description": "Success",
                                                              "content": {"application/json": {"schema": out_schema}}},
                                                      "default": {"description": "Failure", "content": {
                                                          "application/json": {"schema": {
                                                              "$ref": "#/components/schemas/ErrorResponse"}}}}}}},
                },
                "components": {"schemas": {"ErrorResponse": err_def},
                               "securitySchemes": {"Bearer": {"type": "apiKey", "name": "Authorization",
                                                              "in": "header"}}},
            }
        return json.dumps(doc, indent=2).encode("utf-8")

    # ---- response ----------------------------------------------------------------------------------

    def _id_headers(self, conn, req):
        """The request-id (and CORS) response header lines of the request conn is answering."""
        if conn.ids is not None:
            return conn.ids
        hdrs = req.hdrs
        rid = conn.rid
        s = ""
        if rid is not None:
            s = ("x-request-id: " + rid + "\r\nx-ms-request-id: " + _clean(hdrs.get("x-ms-request-id", rid)) +
                 "\r\nx-ms-client-request-id: " + _clean(hdrs.get("x-ms-client-request-id", rid)) + "\r\n")
        if self.cfg.cors_origins:
            allow = self.cfg.cors_allow(hdrs.get("origin"))
            if allow:
                s += "Access-Control-Allow-Origin: " + allow + "\r\nVary: Origin\r\n"
        conn.ids = s
        return s

    def _reply(self, conn, req, status, body, ctype, extra=None, t_run_end=None):
        if not req.keep:
            conn.closing = True
        elif self.nworkers > 1 and not conn.closing:
            # Keep-alive connections stay with the worker the kernel gave them to; a worker holding
            # more than its fair share closes one after its response so the client reconnects
            # (and is hashed again), which evens out queueing delay (p99) across workers.
            self.nresp += 1
            if not self.nresp & 15:
                self._update_limit()
            if len(self.conns) - self.nlinger > self.limit:
                conn.closing = True
        method = req.method
        parts = [_status_line(status), "Content-Type: ", ctype, "\r\nContent-Length: ", str(len(body)), "\r\n",
                 self._id_headers(conn, req)]
        if t_run_end is not None:
            parts += ["x-ms-run-fn-exec-ms: ", "%.3f" % ((t_run_end - conn.t0) * 1000.0), "\r\n"]
        if extra:
            for k, v in extra:
                parts += [k, ": ", v, "\r\n"]
        if conn.closing:
            parts.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            parts.append("Connection: keep-alive\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("latin-1", "replace")
        if self.cfg.debug:
            log("%s %s -> %d (%d bytes, %.3f ms) request-id=%s"
                % (method, req.target, status, len(body), (time.monotonic() - conn.t0) * 1000.0, conn.rid))
        if method == "HEAD" or status == 204:
            self._send(conn, head)
        elif len(body) < 65536:
            self._send(conn, head + body)
        else:
            self._send(conn, head)
            self._send(conn, body)


# ---- process management ----------------------------------------------------------------------------

def _worker_main(cfg, keys, mem, slot):
    """Runs in the forked child; never returns."""
    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _set_pdeathsig()
        try:
            script = UserScript(cfg.entry_script)
        except ConfigError as e:
            log_err(str(e))
            os._exit(3)
        except BaseException:
            print_exc("Failed to load the entry script %s:" % cfg.entry_script)
            os._exit(3)
        if script.init is not None:
            t = time.monotonic()
            try:
                script.init()
            except BaseException:
                print_exc("Encountered Exception in init() of %s; the worker cannot start:" % cfg.entry_script)
                os._exit(3)
            log("init() succeeded in %.0f ms (worker %d)" % ((time.monotonic() - t) * 1000.0, slot))
        else:
            log("entry script has no init(); continuing (worker %d)" % slot)
        w = Worker(cfg, script, keys, mem, slot)
        try:
            w.listen()
        except OSError as e:
            log_err("cannot listen on %s:%d: %s" % (cfg.host, cfg.port, e))
            os._exit(4)
        _D.pack_into(mem, slot * _SLOT.size + _READY, 1.0)
        w.serve_forever()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        print_exc("worker crashed:")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _set_pdeathsig():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Supervisor:
    def __init__(self, cfg, keys):
        self.cfg = cfg
        self.keys = keys
        self.mem = mmap.mmap(-1, _SLOT.size * cfg.workers)
        self.pids = {}  # pid -> slot
        self.slot_pids = [0] * cfg.workers
        self.all_ready = False

    def _spawn(self, slot):
        _SLOT.pack_into(self.mem, slot * _SLOT.size, 0.0, 0.0, 0.0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _worker_main(self.cfg, self.keys, self.mem, slot)
        self.pids[pid] = slot
        self.slot_pids[slot] = pid
        return pid

    def _ready(self, slot):
        return _D.unpack_from(self.mem, slot * _SLOT.size + _READY)[0] == 1.0

    def run(self):
        cfg = self.cfg
        watched = [signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        for slot in range(cfg.workers):
            self._spawn(slot)
        hard_limit = (cfg.timeout_ms + cfg.grace_ms) / 1000.0 if cfg.timeout_ms else 0
        while True:
            info = signal.sigtimedwait(watched, 0.2)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                log("received signal %d; stopping %d worker(s)" % (info.si_signo, len(self.pids)))
                return self._stop(0)
            if info is not None and info.si_signo == signal.SIGHUP:
                log("SIGHUP: replacing the workers")
                for pid in list(self.pids):
                    _kill(pid, signal.SIGTERM)
            code = self._reap()
            if code is not None:
                return code
            if not self.all_ready and all(self._ready(s) for s in range(cfg.workers)):
                self.all_ready = True
                log("ready: http://%s:%d/score (%d worker(s), entry script %s)"
                    % (cfg.host, cfg.port, cfg.workers, cfg.entry_script))
            if hard_limit:
                now = time.monotonic()
                for slot, pid in enumerate(self.slot_pids):
                    started = _D.unpack_from(self.mem, slot * _SLOT.size + _BUSY)[0]
                    if pid and started and now - started > hard_limit:
                        log_err("worker %d (pid %d) is stuck in run() for %.0f ms; killing and replacing it"
                                % (slot, pid, (now - started) * 1000.0))
                        _D.pack_into(self.mem, slot * _SLOT.size + _BUSY, 0.0)
                        _kill(pid, signal.SIGKILL)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            slot = self.pids.pop(pid, None)
            if slot is None:
                continue  # an orphan we adopted (PID 1 in a container)
            self.slot_pids[slot] = 0
            ready = self._ready(slot)
            desc = ("exit code %d" % os.WEXITSTATUS(status)) if os.WIFEXITED(status) \
                else ("signal %d" % os.WTERMSIG(status))
            if not ready:
                log_err("worker %d (pid %d) failed to start (%s); stopping the server" % (slot, pid, desc))
                self._stop(None)
                return 3
            log_err("worker %d (pid %d) exited (%s); starting a new one" % (slot, pid, desc))
            self._spawn(slot)

    def _stop(self, code):
        for pid in list(self.pids):
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.02)
                continue
            self.pids.pop(pid, None)
        for pid in list(self.pids):
            _kill(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        return code


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _check_port(cfg):
    """Fails early with a clear message when the port is taken; resolves port 0 to a free port."""
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cfg.host, cfg.port))
        cfg.port = s.getsockname()[1]
    finally:
        s.close()


def main():
    try:
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    try:
        cfg = Config()
        keys = Keys(cfg.keys_file) if cfg.keys_file else None
        if cfg.model_dir:
            os.environ["AZUREML_MODEL_DIR"] = cfg.model_dir
        os.environ["AML_APP_ROOT"] = cfg.app_root
        if os.path.isdir(cfg.app_root):
            os.chdir(cfg.app_root)
            if cfg.app_root not in sys.path:
                sys.path.insert(0, cfg.app_root)
        try:
            _check_port(cfg)
        except OSError as e:
            raise ConfigError("cannot listen on %s:%d: %s" % (cfg.host, cfg.port, e)) from None
    except ConfigError as e:
        log_err("error: %s" % e)
        return 2
    log("amlc scoring server starting: entry script %s, %d worker(s), port %d, scoring timeout %d ms, auth %s, "
        "body limit %d bytes" % (cfg.entry_script, cfg.workers, cfg.port, cfg.timeout_ms, "on" if keys else "off",
                                 cfg.max_body))
    return Supervisor(cfg, keys).run()


if __name__ == "__main__":
    sys.exit(main())
