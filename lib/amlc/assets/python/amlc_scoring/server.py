"""amlc scoring server: `python3 -m amlc_scoring.server` (configured by environment variables, see
README.md).

Process model: a supervisor process forks WORKER_COUNT workers. Each worker loads the entry script,
calls init() once, then binds its own listening socket on AMLC_HOST:AMLC_PORT with SO_REUSEPORT (the
kernel spreads connections over the workers) and serves HTTP/1.1 (keep-alive, pipelining) from a
single-threaded epoll loop; run() executes in that thread, bounded by SIGALRM. The supervisor
replaces workers that die or stay stuck in run() past SCORING_TIMEOUT_MS + AMLC_TIMEOUT_GRACE_MS, and
exits non-zero when a worker fails to start (init() raised).
"""

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

from amlc_scoring.app import (MAX_BODY, MAX_HEAD, MAX_REQUEST_ID, UNEXPECTED, Config, ConfigError, Keys,
                              ScoringTimeout, UserScript, json_default, log, log_err, print_exc)
from azureml.contrib.services.aml_request import AMLRequest, make_headers

_REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
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


def _msg(text):
    return json.dumps({"message": text}).encode("utf-8")


def _clean(value):
    s = str(value)
    if "\r" in s or "\n" in s:
        s = s.replace("\r", " ").replace("\n", " ")
    return s


class _Conn:
    __slots__ = ("sock", "fd", "buf", "wbuf", "closing", "linger", "last", "peer",
                 "head", "need", "chunks", "have", "chunked")

    def __init__(self, sock, peer, now):
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        self.wbuf = None
        self.closing = False
        self.linger = 0.0
        self.last = now
        self.peer = peer
        self.head = None
        self.need = 0
        self.chunks = None
        self.have = 0
        self.chunked = False


class _BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _dechunk(buf, pos):
    """Decodes a chunked body starting at buf[pos]: (body, end) or None when incomplete."""
    parts = []
    total = 0
    n = len(buf)
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if n - pos > 1024:
                raise _BadRequest(400, "Malformed chunked request body")
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, "Malformed chunked request body") from None
        pos = eol + 2
        if size == 0:
            while True:  # trailers up to an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return b"".join(parts), eol + 2
                pos = eol + 2
        total += size
        if total > MAX_BODY:
            raise _BadRequest(413, "Request body is larger than %d bytes" % MAX_BODY)
        if n < pos + size + 2:
            return None
        parts.append(bytes(buf[pos:pos + size]))
        pos += size + 2


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
                    if ev & _EPOLLOUT:
                        self._on_writable(conn)
                    elif ev & (_EPOLLIN | _ERRMASK):
                        self._on_readable(conn)
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
            elif now - conn.last > idle and conn.wbuf is None:
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
        self._publish()
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def _finish_close(self, conn):
        """Server-side close after the response went out: half-close and drain what the client still
        sends for up to 2 s, so that unread request data does not turn into a reset that loses the
        response."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.linger = time.monotonic() + 2.0
        self.nlinger += 1
        self._publish()
        conn.buf = b""
        conn.head = None
        conn.chunks = None

    def _on_readable(self, conn):
        try:
            data = conn.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.linger:
            return  # draining after our close
        conn.last = time.monotonic()
        if conn.head is not None and not conn.chunked:
            conn.chunks.append(data)
            conn.have += len(data)
            if conn.have < conn.need:
                return
            joined = b"".join(conn.chunks)
            head = conn.head
            conn.head = None
            conn.chunks = None
            conn.buf = joined[conn.need:]
            self._dispatch(conn, head, joined[:conn.need])
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
        if conn.closing:
            self.ep.modify(conn.fd, _EPOLLIN)
            self._finish_close(conn)
            return
        self.ep.modify(conn.fd, _EPOLLIN)
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
        """Handles every complete request in conn.buf (pipelining), stopping while output is blocked."""
        while conn.wbuf is None and not conn.closing and conn.fd in self.conns and conn.head is None:
            buf = conn.buf
            if conn.chunked:
                try:
                    res = _dechunk(buf, 0)
                except _BadRequest as e:
                    self._error_close(conn, e.status, str(e))
                    return
                if res is None:
                    return
                body, end = res
                head = conn.chunks  # a chunked request's head waits in conn.chunks
                conn.chunked = False
                conn.chunks = None
                conn.buf = buf[end:]
                self._dispatch(conn, head, body)
                continue
            if not buf:
                return
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._error_close(conn, 431, "Request headers are larger than %d bytes" % MAX_HEAD)
                return
            if end > MAX_HEAD:
                self._error_close(conn, 431, "Request headers are larger than %d bytes" % MAX_HEAD)
                return
            try:
                head = self._parse_head(bytes(buf[:end]) if not isinstance(buf, bytes) else buf[:end])
            except _BadRequest as e:
                self._error_close(conn, e.status, str(e))
                return
            rest = buf[end + 4:]
            hdrs = head[4]
            te = hdrs.get("transfer-encoding")
            if te is not None:
                if te.strip().lower() != "chunked":
                    self._error_close(conn, 501, "Unsupported Transfer-Encoding: %s" % te)
                    return
                conn.chunked = True
                conn.chunks = head
                conn.buf = bytearray(rest)
                if hdrs.get("expect", "").lower() == "100-continue":
                    self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
                continue
            cl = hdrs.get("content-length")
            need = 0
            if cl is not None:
                try:
                    need = int(cl)
                    if need < 0:
                        raise ValueError
                except ValueError:
                    self._error_close(conn, 400, "Invalid Content-Length: %s" % cl)
                    return
                if need > MAX_BODY:
                    self._error_close(conn, 413, "Request body is larger than %d bytes" % MAX_BODY)
                    return
            if len(rest) >= need:
                if need:
                    body = bytes(rest[:need])
                    conn.buf = rest[need:]
                else:
                    body = b""
                    conn.buf = rest
                self._dispatch(conn, head, body)
                continue
            conn.head = head
            conn.need = need
            conn.chunks = [bytes(rest)]
            conn.have = len(rest)
            conn.buf = b""
            if hdrs.get("expect", "").lower() == "100-continue":
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return

    @staticmethod
    def _parse_head(raw):
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "Malformed request line")
        method, target, version = parts
        hdrs = {}
        pairs = []
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep or not k or k[-1] in " \t":
                raise _BadRequest(400, "Malformed header line")
            v = v.strip()
            pairs.append((k, v))
            k = k.lower()
            if k in hdrs:
                hdrs[k] = hdrs[k] + ", " + v
            else:
                hdrs[k] = v
        if version == "HTTP/1.1":
            keep = hdrs.get("connection", "").lower() != "close"
        else:
            keep = hdrs.get("connection", "").lower() == "keep-alive"
        return method, target, version, keep, hdrs, pairs

    def _error_close(self, conn, status, message):
        conn.closing = True
        body = _msg(message)
        self._send(conn, ("%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % (_status_line(status), len(body))).encode("latin-1") + body)

    # ---- routing -----------------------------------------------------------------------------------

    def _dispatch(self, conn, head, body):
        method, target, version, keep, hdrs, pairs = head
        t0 = time.monotonic()
        if not keep:
            conn.closing = True
        rid = hdrs.get("x-request-id")
        if rid is None:
            rid = str(uuid.uuid4())
        elif len(rid) > MAX_REQUEST_ID:
            conn.closing = True
            return self._reply(conn, 431, _msg("x-request-id header must be at most %d characters"
                                               % MAX_REQUEST_ID), JSON, None, None, hdrs, method, target, t0)
        if target[0] != "/":
            # absolute-form: http://host/path
            i = target.find("/", target.find("//") + 2) if "//" in target else -1
            target = target[i:] if i >= 0 else "/"
        path, _, query = target.partition("?")
        if path == "/score":
            if method == "POST" or method == "GET":
                if self.keys is not None and not self.keys.check(hdrs.get("authorization"), t0):
                    return self._unauthorized(conn, rid, hdrs, method, target, t0)
                return self._score(conn, method, path, query, hdrs, pairs, body, rid, t0)
            if method == "OPTIONS":
                return self._options(conn, rid, hdrs, method, target, t0)
            return self._reply(conn, 405, _msg("Method %s is not allowed on /score" % method), JSON, rid,
                               [("Allow", "GET, POST, OPTIONS")], hdrs, method, target, t0)
        if path == "/":
            if method == "GET" or method == "HEAD":
                return self._reply(conn, 200, b"Healthy", HTML, rid, None, hdrs, method, target, t0)
            if method == "OPTIONS":
                return self._options(conn, rid, hdrs, method, target, t0)
            return self._reply(conn, 405, _msg("Method %s is not allowed on /" % method), JSON, rid,
                               [("Allow", "GET, HEAD, OPTIONS")], hdrs, method, target, t0)
        if path == "/swagger.json":
            if method == "GET" or method == "HEAD":
                if self.keys is not None and not self.keys.check(hdrs.get("authorization"), t0):
                    return self._unauthorized(conn, rid, hdrs, method, target, t0)
                status, doc = self._swagger(query)
                return self._reply(conn, status, doc, JSON, rid, None, hdrs, method, target, t0)
            return self._reply(conn, 405, _msg("Method %s is not allowed on /swagger.json" % method), JSON,
                               rid, [("Allow", "GET, HEAD")], hdrs, method, target, t0)
        return self._reply(conn, 404, _msg("Not found: %s" % path), JSON, rid, None, hdrs, method, target, t0)

    def _unauthorized(self, conn, rid, hdrs, method, target, t0):
        return self._reply(conn, 401, _msg("Unauthorized: send a service key as 'Authorization: Bearer <key>'"),
                           JSON, rid, [("WWW-Authenticate", "Bearer")], hdrs, method, target, t0)

    def _options(self, conn, rid, hdrs, method, target, t0):
        extra = [("Allow", "GET, POST, OPTIONS")]
        if self.cfg.cors_origins:
            extra.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
            req_h = hdrs.get("access-control-request-headers")
            extra.append(("Access-Control-Allow-Headers", _clean(req_h) if req_h else
                          "Authorization, Content-Type, x-request-id, x-ms-client-request-id"))
            extra.append(("Access-Control-Max-Age", "600"))
        return self._reply(conn, 200, b"", HTML, rid, extra, hdrs, method, target, t0)

    def _score(self, conn, method, path, query, hdrs, pairs, body, rid, t0):
        script = self.script
        target = path + "?" + query if query else path
        kwargs = None
        if script.rawhttp:
            args = (AMLRequest(method, path, query, make_headers(pairs), body, conn.peer[0] if conn.peer else None),)
        elif script.schema:
            args = ()
            if method == "POST":
                if not hdrs.get("content-type", "").lower().startswith("application/json"):
                    return self._reply(conn, 415, _msg("Expects Content-Type to be application/json"), JSON, rid,
                                       None, hdrs, method, target, t0)
                if not body.strip():
                    return self._reply(conn, 400, _msg("POST body is empty. Expecting a JSON dictionary."), JSON,
                                       rid, None, hdrs, method, target, t0)
                try:
                    kwargs = json.loads(body.decode("utf-8"))
                except ValueError as e:
                    return self._reply(conn, 400, _msg("The request body is not valid JSON: %s" % e), JSON, rid,
                                       None, hdrs, method, target, t0)
                if not isinstance(kwargs, dict):
                    return self._reply(conn, 400, _msg("Expecting a JSON dictionary whose keys are run()'s "
                                                       "parameters"), JSON, rid, None, hdrs, method, target, t0)
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
        if script.wants_headers:
            if kwargs is None:
                kwargs = {}
            kwargs["request_headers"] = make_headers(pairs)
        run = script.run
        mem = self.mem
        off = self.slot_off
        timeout = self.timeout_s
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
            return self._reply(conn, 500, self.timeout_msg, JSON, rid, [("x-ms-run-function-failed", "True")],
                               hdrs, method, target, t0, time.monotonic())
        except Exception:
            print_exc("Encountered Exception in run() (request %s):" % rid)
            return self._reply(conn, 500, _msg(UNEXPECTED), JSON, rid, [("x-ms-run-function-failed", "True")],
                               hdrs, method, target, t0, time.monotonic())
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
        return self._reply(conn, status, data, ctype, rid, extra, hdrs, method, target, t0, t1)

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

    def _reply(self, conn, status, body, ctype, rid, extra, hdrs, method, target, t0, t_run_end=None):
        if self.nworkers > 1 and not conn.closing:
            # Keep-alive connections stay with the worker the kernel gave them to; a worker holding
            # more than its fair share closes one after its response so the client reconnects
            # (and is hashed again), which evens out queueing delay (p99) across workers.
            self.nresp += 1
            if not self.nresp & 15:
                self._update_limit()
            if len(self.conns) - self.nlinger > self.limit:
                conn.closing = True
        parts = [_status_line(status), "Content-Type: ", ctype, "\r\nContent-Length: ", str(len(body)), "\r\n"]
        if rid is not None:
            parts += ["x-request-id: ", rid, "\r\nx-ms-request-id: ", _clean(hdrs.get("x-ms-request-id", rid)),
                      "\r\nx-ms-client-request-id: ", _clean(hdrs.get("x-ms-client-request-id", rid)), "\r\n"]
        if t_run_end is not None:
            parts += ["x-ms-run-fn-exec-ms: ", "%.3f" % ((t_run_end - t0) * 1000.0), "\r\n"]
        if extra:
            for k, v in extra:
                parts += [k, ": ", v, "\r\n"]
        if self.cfg.cors_origins:
            allow = self.cfg.cors_allow(hdrs.get("origin"))
            if allow:
                parts += ["Access-Control-Allow-Origin: ", allow, "\r\nVary: Origin\r\n"]
        if conn.closing:
            parts.append("Connection: close\r\n")
        elif method and hdrs.get("connection", "").lower() == "keep-alive":
            parts.append("Connection: keep-alive\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("latin-1", "replace")
        if self.cfg.debug:
            log("%s %s -> %d (%d bytes, %.3f ms) request-id=%s"
                % (method, target, status, len(body), (time.monotonic() - t0) * 1000.0, rid))
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
    log("amlc scoring server starting: entry script %s, %d worker(s), port %d, scoring timeout %d ms, auth %s"
        % (cfg.entry_script, cfg.workers, cfg.port, cfg.timeout_ms, "on" if keys else "off"))
    return Supervisor(cfg, keys).run()


if __name__ == "__main__":
    sys.exit(main())
