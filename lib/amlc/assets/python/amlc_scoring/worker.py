"""A worker process of the scoring server: worker_main (the child side of the supervisor's fork: load
the entry script, run init() once, listen) and Worker, the single-threaded epoll loop that serves
HTTP/1.1 (keep-alive, pipelining) on the shared listening socket and calls run() in that thread, bounded by
SIGALRM."""

import array
import collections
import errno
import os
import select
import signal
import socket
import struct
import sys
import time
import uuid

from amlc_scoring.app import (FREE_INPUT, HEAD_BUDGET, MAX_HEAD, MAX_REQUEST_ID, MIN_BODY_BUDGET, REQUEST_IDLE_S,
                              SMALL_BODY, ConfigError, UserScript, log, log_err, print_exc)
from amlc_scoring.protocol import MAX_CHUNK_LINE, BadRequest, ChunkedBody, head_end, parse_head, skip_empty_lines
from amlc_scoring.responses import JSON, clean, message, status_line
from amlc_scoring.routes import Routes
from amlc_scoring.scoring import Scoring
from amlc_scoring.slots import CONNS, D, MSG_TOKENS, Q, READY, SLOT_SIZE

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_ERRMASK = select.EPOLLERR | select.EPOLLHUP
_RECV = 65536          # bytes read at once outside a body
_RECV_BODY = 1 << 18   # bytes read at once into a body (under the 1 MiB mmap threshold)
LINGER_IDLE = 2.0     # after our close: drain the client's unread data while it keeps coming ...
_LINGER_MAX = 10.0     # ... for at most this long
_HEAD_CACHE_SIZE = 256  # parsed request heads a worker keeps ...
_HEAD_CACHE_BYTES = 2048  # ... of at most this size
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection


class _Conn:
    __slots__ = ("sock", "fd", "token", "peer", "buf", "wbuf", "wlast", "closing", "linger", "linger_end", "last",
                 "started", "req", "body", "need", "dec", "discard", "hres", "bres", "want", "paused", "rid", "t0",
                 "ids")

    def __init__(self, sock, peer, token, now):
        self.sock = sock
        self.fd = sock.fileno()
        self.token = token       # the supervisor holds a duplicate of the socket under this (0: it does not)
        self.peer = peer
        self.buf = b""           # received bytes not consumed yet
        self.wbuf = None         # response bytes the socket did not take yet (a deque of memoryviews) ...
        self.wlast = 0.0         # ... and when it last took some
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
        self.hres = 0            # bytes of the worker's head budget this connection holds (0 or MAX_HEAD) ...
        self.bres = 0            # ... and of its body budget: it may hold FREE_INPUT + hres + bres request bytes
        self.want = 0            # bytes of a budget it waits for ...
        self.paused = None       # ... that budget (a _Budget) while it waits: not reading
        self.rid = None          # the current request's id (x-request-id or a new UUID) ...
        self.t0 = 0.0            # ... when its head was in ...
        self.ids = None          # ... and its request-id/CORS response header lines (made once)


class _Budget:
    """Request bytes a worker holds beyond each connection's FREE_INPUT, in one kind (heads or bodies).
    Each connection takes what it needs of a kind at once (it never waits while holding part of that
    kind), so waiters can always be served once the holders are done: no deadlock."""

    __slots__ = ("size", "used", "waiters", "name")

    def __init__(self, name, size):
        self.name = name
        self.size = size
        self.used = 0
        self.waiters = collections.deque()  # paused connections, first come first served


class Worker(Scoring):
    """One worker process: the user's script plus an epoll HTTP loop.

    Memory: a worker holds at most max_connections connections; each may hold FREE_INPUT bytes of
    request (head and body) on its own; a head past that takes MAX_HEAD of the head budget, a body past
    it its size of the body budget; a connection holds at most one response that the client has not
    taken yet (its next request is read after that), for at most the idle timeout without progress."""

    def __init__(self, cfg, script, keys, slot_mem, slot, lsock, chan):
        self.cfg = cfg
        self.script = script
        self.routes = Routes(cfg, keys, script)
        self.mem = slot_mem
        self.slot_off = slot * SLOT_SIZE
        self.nworkers = cfg.workers
        self.limit = 1 << 30  # connections above this (fair share + 1) are closed after their response
        self.nresp = 0
        self.nlinger = 0
        self.conns = {}
        self.ep = None
        self.lsock = lsock
        self.chan = chan
        self.next_token = 1
        self.closed_tokens = []
        self.in_run = False
        self.timeout_s = cfg.timeout_ms / 1000.0
        self.timeout_msg = message("Scoring timeout after %d ms" % cfg.timeout_ms)
        self.max_body = cfg.max_body
        self.too_large = "Request body is larger than %d bytes" % cfg.max_body
        self.head_budget = _Budget("head", HEAD_BUDGET)
        # a chunked body takes this at once (the body, its trailers, a chunk line); a Content-Length one
        # its size (and its head past FREE_INPUT, unless the head budget holds that)
        self.chunked_need = cfg.max_body + MAX_HEAD + MAX_CHUNK_LINE
        self.body_budget = _Budget("body", max(cfg.max_body, MIN_BODY_BUDGET) + MAX_HEAD + MAX_CHUNK_LINE)
        self.resumed = []
        self.max_conns = cfg.max_connections
        self.listening = False
        self.accept_poll = None   # tells whether a connection waits while this worker does not accept
        self.full_logged = 0.0
        self.peers = cfg.allowed_peers  # None: every peer may connect
        self.refused = set()            # peer addresses refused (and logged) lately ...
        self.refused_logs = 0           # ... log lines in this minute ...
        self.refused_quiet = 0          # ... and refusals not logged for that
        self.refused_minute = 0.0
        self.drain_asked = False  # SIGTERM: finish the requests in progress, accept no more, exit
        self.draining = False
        self.wake_w = -1
        self.request_idle = min(REQUEST_IDLE_S, cfg.keepalive_s)
        self.scratch = bytearray(_RECV)
        self.heads = {}  # request head bytes -> Request: clients tend to repeat theirs
        self.ppid = os.getppid()

    # ---- setup -------------------------------------------------------------------------------------

    def listen(self):
        # The supervisor bound the socket; listening on it is idempotent, so the first worker that is
        # ready opens the port (before that, connections are refused: readiness = GET / answers).
        self.lsock.listen(1024)
        self.ep = select.epoll()
        self.ep.register(self.lsock.fileno(), _EPOLLIN | select.EPOLLEXCLUSIVE)
        self.listening = True
        self.accept_poll = select.poll()
        self.accept_poll.register(self.lsock.fileno(), select.POLLIN)

    def _stop_accepting(self):
        if self.listening:
            self.listening = False
            self.ep.unregister(self.lsock.fileno())

    def _start_accepting(self):
        if not self.listening:
            self.listening = True
            self.ep.register(self.lsock.fileno(), _EPOLLIN | select.EPOLLEXCLUSIVE)

    def _evict_idle(self):
        """Makes room for a new connection: closes one already answered and closed on our side (draining
        what its client still sends), else the keep-alive connection idle the longest. False if none."""
        victim = None
        for conn in self.conns.values():
            if conn.linger:
                victim = conn
                break
            if (conn.wbuf is None and conn.req is None and not conn.buf and not conn.discard and not conn.paused
                    and not conn.closing and (victim is None or conn.last < victim.last)):
                victim = conn
        if victim is None:
            return False
        self._close(victim)
        return True

    def _on_term(self, signum, frame):
        self.drain_asked = True  # (in run() too: the request finishes, its answer closes the connection)
        try:
            os.write(self.wake_w, b"t")
        except OSError:
            pass

    def _start_drain(self):
        """Stops accepting and closes the idle keep-alive connections; the others are closed after
        their answer. The worker exits once it has no connection left."""
        self.draining = True
        self._stop_accepting()
        for conn in list(self.conns.values()):
            if (conn.wbuf is None and conn.req is None and not conn.buf and not conn.discard and not conn.paused
                    and not conn.closing and not conn.linger):
                try:
                    if conn.sock.recv(1, socket.MSG_PEEK):
                        continue  # a request is coming in: it is answered first
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass
                self._close(conn)

    # ---- loop --------------------------------------------------------------------------------------

    def serve_forever(self):
        """Serves until told to drain (SIGTERM) and drained."""
        if self.timeout_s > 0:
            signal.signal(signal.SIGALRM, self._on_alarm)
        wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.ep.register(wake_r, _EPOLLIN)
        signal.signal(signal.SIGTERM, self._on_term)
        lfd = self.lsock.fileno()
        conns = self.conns
        poll = self.ep.poll
        next_sweep = time.monotonic() + 1.0
        while True:
            if self.drain_asked:
                if not self.draining:
                    self._start_drain()
                if not conns:
                    return
            try:
                events = poll(0.05 if self.closed_tokens else 1.0)
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == lfd:
                    self._accept()
                    continue
                if fd == wake_r:
                    try:
                        os.read(wake_r, 64)
                    except OSError:
                        pass
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
                if conn.fd in conns and conns[conn.fd] is conn and not conn.paused:
                    try:
                        self._process(conn)
                    except Exception:
                        print_exc("amlc-scoring: internal error on a connection (closed):")
                        self._close(conn)
            if self.closed_tokens:
                self._send_closed()
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                self._sweep(now)

    def _sweep(self, now):
        if os.getppid() != self.ppid:
            log_err("supervisor is gone; worker exits")
            os._exit(0)
        if self.refused_quiet and now - self.refused_minute > 60:
            self._refused_summary()
        if not self.listening and not self.draining:
            # At the connection limit: a keep-alive connection idle the longest makes room for a waiting one.
            if len(self.conns) < self.max_conns:
                self._start_accepting()  # (after accept failed for want of file descriptors)
            elif self.accept_poll.poll(0):
                self._evict_idle()
        idle = self.cfg.keepalive_s
        for conn in list(self.conns.values()):
            if conn.linger:
                if now > conn.linger:
                    self._close(conn)
            elif conn.paused:
                continue
            elif conn.wbuf is not None:
                # A client that stopped reading its response: let it go (and the response with it).
                if now - conn.wlast > self.request_idle:
                    if self.cfg.debug:
                        log("closing a connection from %s that read nothing for %d s" % (conn.peer[0] if conn.peer
                                                                                        else "?", self.request_idle))
                    self._abort(conn)
            elif conn.req is not None or conn.discard or conn.buf:
                # inside a request: it must keep coming, and a head must be complete in time
                if now - conn.last > self.request_idle or (conn.started and now - conn.started > self.request_idle):
                    self._error_close(conn, 408, "Request not received in time")
            elif now - conn.last > idle:
                self._close(conn)

    def _accept(self):
        if len(self.conns) >= self.max_conns and not self._evict_idle():
            # Every connection is busy: new ones wait in the listen queue (or go to another worker).
            self._stop_accepting()
            now = time.monotonic()
            if now - self.full_logged > 60:
                self.full_logged = now
                log_err("worker holds AMLC_MAX_CONNECTIONS=%d busy connections; new connections wait"
                        % self.max_conns)
            return
        try:
            sock, peer = self.lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log_err("accept failed: %s" % e)
                self._stop_accepting()  # until a connection closes (or the next sweep): no busy loop
            return
        if self.peers is not None and not self.peers.allows(peer[0]):
            self._refuse(sock, peer[0])
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.nworkers > 1 and self.listening:
            # Back to the end of the socket's wait queue: the kernel wakes the first waiting worker in
            # it, so this makes idle workers take new connections in turn (keep-alive connections stay
            # spread, which the fair-share close relies on).
            lfd = self.lsock.fileno()
            self.ep.unregister(lfd)
            self.ep.register(lfd, _EPOLLIN | select.EPOLLEXCLUSIVE)
        token = self.next_token
        self.next_token += 1
        try:
            self.chan.sendmsg([b"A" + Q.pack(token)],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))])
        except OSError:
            token = 0  # the supervisor cannot answer for this connection if this worker dies in run()
        conn = _Conn(sock, peer, token, time.monotonic())
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, _EPOLLIN)
        self._publish()

    def _refuse(self, sock, host):
        """A peer not in AMLC_ALLOWED_PEERS: reset at once, nothing read or answered. Logged once per
        address (while fewer than 1024 were refused lately), at most 10 lines a minute."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        sock.close()
        if host in self.refused:
            return
        if len(self.refused) >= 1024:
            self.refused.clear()
        self.refused.add(host)
        now = time.monotonic()
        if now - self.refused_minute > 60:
            self._refused_summary()
            self.refused_minute = now
            self.refused_logs = 0
        if self.refused_logs < 10:
            self.refused_logs += 1
            log_err("refused a connection from %s: not in AMLC_ALLOWED_PEERS" % host)
        else:
            self.refused_quiet += 1

    def _refused_summary(self):
        if self.refused_quiet:
            log_err("refused connections from %d more address(es) not in AMLC_ALLOWED_PEERS" % self.refused_quiet)
            self.refused_quiet = 0

    def _send_closed(self):
        tokens = self.closed_tokens
        while tokens:
            part = tokens[:MSG_TOKENS]
            try:
                self.chan.send(b"C" + struct.pack("%dQ" % len(part), *part))
            except (BlockingIOError, InterruptedError):
                return  # the supervisor is behind: next loop
            except OSError:
                tokens.clear()
                return
            del tokens[:len(part)]

    def _publish(self):
        """Shares this worker's count of active connections and refreshes the fair-share limit."""
        if self.nworkers > 1:
            D.pack_into(self.mem, self.slot_off + CONNS, float(len(self.conns) - self.nlinger))
            self._update_limit()

    def _update_limit(self):
        mem = self.mem
        total = 0.0
        alive = 0
        for i in range(self.nworkers):
            base = i * SLOT_SIZE
            if D.unpack_from(mem, base + READY)[0] == 1.0:
                alive += 1
                total += D.unpack_from(mem, base + CONNS)[0]
        self.limit = int(-(-total // alive)) + 1 if alive > 1 else 1 << 30

    def _close(self, conn):
        if self.conns.pop(conn.fd, None) is None:
            return
        if conn.linger:
            self.nlinger -= 1
        self._release(conn)
        self._publish()
        if not self.listening and not self.draining and len(self.conns) < self.max_conns:
            self._start_accepting()
        try:
            self.ep.unregister(conn.fd)
        except OSError:
            pass
        if conn.token:
            # The supervisor's duplicate keeps the socket open: shut it down so the client sees the close.
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.closed_tokens.append(conn.token)
        try:
            conn.sock.close()
        except OSError:
            pass
        conn.req = conn.body = conn.dec = conn.wbuf = None
        conn.buf = b""

    def _abort(self, conn):
        """Closes conn with a reset: what the client did not read is dropped at once (after a plain close
        the kernel would keep trying to deliver it)."""
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
        self._close(conn)

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
        conn.linger = now + LINGER_IDLE
        conn.linger_end = now + _LINGER_MAX
        self.nlinger += 1
        self._release(conn)
        self._publish()
        conn.buf = b""
        conn.req = conn.body = conn.dec = None
        conn.discard = 0

    # ---- request memory ----------------------------------------------------------------------------

    def _reserve(self, conn, budget, amount):
        """Takes `amount` bytes of `budget` for conn (which holds none of it), or pauses reading conn until
        they are free (first come, first served). True when taken."""
        amount = min(amount, budget.size)
        if not budget.waiters and budget.used + amount <= budget.size:
            budget.used += amount
            if budget is self.body_budget:
                conn.bres = amount
            else:
                conn.hres = amount
            return True
        conn.want = amount
        conn.paused = budget
        budget.waiters.append(conn)
        self.ep.modify(conn.fd, 0)
        return False

    def _give_back(self, budget, amount):
        budget.used -= amount
        waiters = budget.waiters
        while waiters and budget.used + waiters[0].want <= budget.size:
            c = waiters.popleft()
            budget.used += c.want
            if budget is self.body_budget:
                c.bres = c.want
            else:
                c.hres = c.want
            c.want = 0
            c.paused = None
            c.last = time.monotonic()
            if c.started:
                c.started = c.last  # the time it waited for us does not count against its head
            self.ep.modify(c.fd, _EPOLLIN)
            if c.req is not None and c.req.expect and not c.body and c.dec is None:
                self._send(c, b"HTTP/1.1 100 Continue\r\n\r\n")
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
        if conn.bres:
            amount, conn.bres = conn.bres, 0
            self._give_back(self.body_budget, amount)
        if conn.hres:
            amount, conn.hres = conn.hres, 0
            self._give_back(self.head_budget, amount)

    def _settle(self, conn):
        """A request was answered: its body budget goes back; its head budget too unless what follows it
        (pipelined) is more than FREE_INPUT."""
        if conn.bres:
            amount, conn.bres = conn.bres, 0
            self._give_back(self.body_budget, amount)
        if conn.hres and len(conn.buf) <= FREE_INPUT:
            amount, conn.hres = conn.hres, 0
            self._give_back(self.head_budget, amount)

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
            size = min(size + conn.discard, _RECV)
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
        self.ep.modify(conn.fd, 0 if conn.paused else _EPOLLIN)
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
            self.ep.modify(conn.fd, _EPOLLOUT)
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
        want = need + (head_len if not conn.hres else 0) - FREE_INPUT  # (the parsed head stays meanwhile)
        if want > 0 and not self._reserve(conn, self.body_budget, want):
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
            self._settle(conn)

    def _error_close(self, conn, status, text):
        conn.closing = True
        conn.buf = b""
        conn.req = conn.body = conn.dec = None
        conn.need = conn.discard = 0
        body = message(text)
        self._send(conn, ("%sContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % (status_line(status), len(body))).encode("latin-1") + body)

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


# ---- process management ----------------------------------------------------------------------------

def worker_main(cfg, keys, mem, slot, lsock, chan):
    """Runs in the forked child; never returns."""
    code = 0
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])  # the supervisor forked us with them blocked
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
        w = Worker(cfg, script, keys, mem, slot, lsock, chan)
        try:
            w.listen()
        except OSError as e:
            log_err("cannot listen on %s:%d: %s" % (cfg.host, cfg.port, e))
            os._exit(4)
        D.pack_into(mem, slot * SLOT_SIZE + READY, 1.0)
        w.serve_forever()
        log("worker %d drained; exiting" % slot)
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
