"""HTTP on a worker's connections: reading requests within the worker's request-memory budgets, parsing
them (pipelined; heads through protocol.py), writing responses (what the socket does not take waits for
it), and the response head (status, request ids, CORS, the fair-share Connection: close)."""

import collections
import time
import uuid

from amlc_scoring.app import FREE_INPUT, MAX_HEAD, MAX_REQUEST_ID, SMALL_BODY, log
from amlc_scoring.connection import EPOLLIN, EPOLLOUT, LINGER_IDLE
from amlc_scoring.protocol import BadRequest, ChunkedBody, head_end, parse_head, skip_empty_lines
from amlc_scoring.responses import CONTINUE, JSON, clean, closing_json, message, status_line

RECV = 65536          # bytes read at once outside a body
_RECV_BODY = 1 << 18   # bytes read at once into a body (under the 1 MiB mmap threshold)
_HEAD_CACHE_SIZE = 256  # parsed request heads a worker keeps ...
_HEAD_CACHE_BYTES = 2048  # ... of at most this size


class HttpIO:
    """The Worker's part that reads, parses and answers requests on its connections. It uses the Worker's
    state (conns, ep, head_budget, body_budget, chunked_need, resumed, heads, scratch, routes, max_body,
    too_large, cfg, nworkers, limit, nresp, nlinger, drain_asked) and its _close, _finish_close,
    _update_limit and _score.

    Memory: each connection may hold FREE_INPUT bytes of request (head and body) on its own; a head past
    that takes MAX_HEAD of the head budget, a body past it its size of the body budget; a connection holds
    at most one response that the client has not taken yet (its next request is read after that)."""

    # ---- request memory ----------------------------------------------------------------------------

    def _reserve(self, conn, budget, amount):
        """Takes `amount` bytes of `budget` for conn (which holds none of it), or pauses reading conn until
        they are free (first come, first served). True when taken."""
        if budget.take(conn, amount):
            return True
        self.ep.modify(conn.fd, 0)
        return False

    def _give_back(self, budget, amount):
        """Gives `amount` bytes back to `budget` and resumes reading the connections that waited for it."""
        for c in budget.give_back(amount):
            c.last = time.monotonic()
            if c.started:
                c.started = c.last  # the time it waited for us does not count against its head
            self.ep.modify(c.fd, EPOLLIN)
            if c.req is not None and c.req.expect and not c.body and c.dec is None:
                self._send(c, CONTINUE)
            self.resumed.append(c)

    def _release(self, conn):
        """Gives back all conn holds of the budgets (or its place in a queue)."""
        budget = conn.paused
        if budget is not None:
            conn.paused = None
            conn.want = 0
            try:
                budget.waiters.remove(conn)
            except ValueError:
                pass
            self._give_back(budget, 0)  # the ones behind it may fit now
        self._give_back_held(conn, self.body_budget)
        self._give_back_held(conn, self.head_budget)

    def _settle(self, conn):
        """A request was answered: its body budget goes back; its head budget too unless what follows it
        (pipelined) is more than FREE_INPUT."""
        self._give_back_held(conn, self.body_budget)
        if len(conn.buf) <= FREE_INPUT:
            self._give_back_held(conn, self.head_budget)

    def _give_back_held(self, conn, budget):
        """Gives back what conn holds of budget."""
        amount = getattr(conn, budget.held)
        if amount:
            setattr(conn, budget.held, 0)
            self._give_back(budget, amount)

    def _room(self, conn):
        """conn waits for more of its request: when it holds all it may, it takes more of a budget (or
        waits for it, not reading)."""
        if conn.paused or conn.closing or conn.wbuf is not None or conn.linger or conn.fd not in self.conns:
            return
        dec = conn.dec
        if conn.req is not None and dec is None:
            return  # a Content-Length body: its budget was taken with its head
        held = len(conn.buf) + (len(dec.body) if dec is not None else 0)
        if held < FREE_INPUT + conn.hres + conn.bres:
            return
        if dec is not None and not conn.bres:
            self._reserve(conn, self.body_budget, self.chunked_need)
        elif dec is None and not conn.hres:
            self._reserve(conn, self.head_budget, MAX_HEAD)
        else:  # cannot happen (431 or 413 came first); never spin on a connection that may not read
            self._error_close(conn, 413 if dec is not None else 431, "Request too large")

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
                conn.linger = min(time.monotonic() + LINGER_IDLE, conn.linger_end)
            return
        dec = conn.dec
        body = conn.req is not None and dec is None
        if body:
            size = min(conn.need, _RECV_BODY)
        else:
            # no more than it may hold; a chunked body is read so that little past its end comes with it
            size = FREE_INPUT + conn.hres + conn.bres - len(conn.buf)
            if dec is not None:
                size = min(size - len(dec.body), (dec.left if dec.state == dec.DATA else 0) + FREE_INPUT)
            size = min(size + conn.discard, RECV)
            if size <= 0:
                self._room(conn)
                return
        try:
            data = conn.sock.recv(size)
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
        wbuf = conn.wbuf
        try:
            n = conn.sock.sendmsg(wbuf) if len(wbuf) > 1 else conn.sock.send(wbuf[0])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if n:
            conn.wlast = time.monotonic()
        while n:
            first = wbuf[0]
            if n < len(first):
                wbuf[0] = first[n:]
                return
            n -= len(first)
            wbuf.popleft()
        if wbuf:
            return
        conn.wbuf = None
        self.ep.modify(conn.fd, 0 if conn.paused else EPOLLIN)
        if conn.closing:
            self._finish_close(conn)
            return
        self._process(conn)

    def _send(self, conn, data, more=None):
        """Sends data (then `more`: a big response body, sent without copying it) as one unit: what the
        socket does not take waits for it, and a closing connection is shut down only after the last
        byte (shutting it down in between lost the body of big responses)."""
        if conn.wbuf is not None:
            conn.wbuf.append(memoryview(data))
            if more is not None:
                conn.wbuf.append(memoryview(more))
            return
        total = len(data) if more is None else len(data) + len(more)
        try:
            n = conn.sock.send(data) if more is None else conn.sock.sendmsg([data, more])
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._close(conn)
            return
        if n < total:
            wbuf = collections.deque()
            for part in (data, more):
                if part is None:
                    continue
                if n >= len(part):
                    n -= len(part)
                    continue
                wbuf.append(memoryview(part)[n:])
                n = 0
            conn.wbuf = wbuf
            conn.wlast = time.monotonic()
            self.ep.modify(conn.fd, EPOLLOUT)
        elif conn.closing:
            self._finish_close(conn)

    # ---- HTTP parsing ------------------------------------------------------------------------------

    def _process(self, conn):
        self._parse(conn)
        self._room(conn)

    def _parse(self, conn):
        """Handles every complete request in conn.buf (pipelining), stopping while output is blocked,
        the connection waits for budget, or a body is incomplete."""
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
            self._head(conn, req, buf[start:], end)

    def _head(self, conn, req, rest, head_len):
        """A request head is in: answer now when the request needs no body (or is refused), else start
        reading the body, within the body budget."""
        conn.t0 = time.monotonic()
        rid = req.hdrs.get("x-request-id")
        conn.rid = rid if rid is not None else str(uuid.uuid4())
        conn.ids = None
        if len(conn.rid) > MAX_REQUEST_ID:
            conn.closing = True
            conn.rid = None
            answer = (431, message("x-request-id header must be at most %d characters" % MAX_REQUEST_ID), JSON, None)
        else:
            answer = self.routes.answer(req, conn.t0)
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
            self._settle(conn)
            return
        if req.chunked:
            conn.req = req
            conn.dec = ChunkedBody(self.max_body, MAX_HEAD)
            conn.buf = rest
            if req.expect and not rest:
                self._send(conn, CONTINUE)
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
        want = need + (head_len if not conn.hres else 0) - FREE_INPUT  # (the parsed head stays meanwhile)
        if want > 0 and not self._reserve(conn, self.body_budget, want):
            return  # 100 Continue (if asked for) when reading resumes
        if req.expect and not rest:
            self._send(conn, CONTINUE)

    def _request(self, conn, req, holder):
        """The body of the request being read is complete (the one item of `holder`, so that _score can
        drop the last reference once run()'s argument is made from it): answer it."""
        conn.req = conn.dec = conn.body = None
        conn.need = 0
        try:
            self._score(conn, req, holder)
        finally:
            self._settle(conn)

    def _error_close(self, conn, status, text):
        conn.closing = True
        conn.drop_request()
        self._send(conn, closing_json(status, message(text)))

    # ---- response ----------------------------------------------------------------------------------

    def _id_headers(self, conn, req):
        """The request-id (and CORS) response header lines of the request conn is answering."""
        if conn.ids is not None:
            return conn.ids
        hdrs = req.hdrs
        rid = conn.rid
        s = ""
        if rid is not None:
            s = ("x-request-id: " + rid + "\r\nx-ms-request-id: " + clean(hdrs.get("x-ms-request-id", rid)) +
                 "\r\nx-ms-client-request-id: " + clean(hdrs.get("x-ms-client-request-id", rid)) + "\r\n")
        if self.cfg.cors_origins:
            allow = self.cfg.cors_allow(hdrs.get("origin"))
            if allow:
                s += "Access-Control-Allow-Origin: " + allow + "\r\nVary: Origin\r\n"
        conn.ids = s
        return s

    def _reply(self, conn, req, status, body, ctype, extra=None, t_run_end=None):
        if not req.keep or self.drain_asked:
            conn.closing = True
        elif self.nworkers > 1 and not conn.closing:
            # A worker holding more than its fair share of keep-alive connections closes one after its
            # response so the client reconnects (and lands on a worker waiting for work), which evens
            # out queueing delay (p99) across workers.
            self.nresp += 1
            if not self.nresp & 15:
                self._update_limit()
            if len(self.conns) - self.nlinger > self.limit:
                conn.closing = True
        method = req.method
        parts = [status_line(status), "Content-Type: ", ctype, "\r\nContent-Length: ", str(len(body)), "\r\n",
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
            self._send(conn, head, body)
