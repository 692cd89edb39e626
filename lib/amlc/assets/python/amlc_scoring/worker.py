"""A worker process of the scoring server: worker_main (the child side of the supervisor's fork: load
the entry script, run init() once, listen) and Worker, the single-threaded epoll loop on the shared
listening socket. This module holds the loop and the connections' life: accepting (peers, the connection
limit, taking turns with the other workers), the fair share, timeouts, draining on SIGTERM, closing. What
happens on a connection is HTTP (httpio.py), the routes (routes.py) and the run() call (scoring.py)."""

import errno
import os
import select
import signal
import socket
import sys
import time

from amlc_scoring.app import (HEAD_BUDGET, MAX_HEAD, MIN_BODY_BUDGET, REQUEST_IDLE_S, ConfigError, UserScript, log,
                              log_err, print_exc)
from amlc_scoring.connection import EPOLLIN, EPOLLOUT, LINGER_IDLE, LINGER_MAX, Budget, Conn, reset_on_close
from amlc_scoring.httpio import RECV, HttpIO
from amlc_scoring.protocol import MAX_CHUNK_LINE
from amlc_scoring.responses import timeout_message
from amlc_scoring.routes import Routes
from amlc_scoring.scoring import Scoring
from amlc_scoring.slots import send_accepted, send_closed

_ERRMASK = select.EPOLLERR | select.EPOLLHUP
_ACCEPT = EPOLLIN | select.EPOLLEXCLUSIVE  # the listening socket: one waiting worker woken per connection


class Worker(HttpIO, Scoring):
    """One worker process: the user's script plus an epoll HTTP loop.

    Memory: a worker holds at most max_connections connections, each with what HttpIO lets it hold of
    its request and at most one response that the client has not taken yet, for at most the idle timeout
    without progress."""

    def __init__(self, cfg, script, keys, slots, slot, lsock, chan):
        self.cfg = cfg
        self.script = script
        self.routes = Routes(cfg, keys, script)
        self.slots = slots  # the shared memory, this worker's slot in it
        self.slot = slot
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
        self.timeout_msg = timeout_message(cfg.timeout_ms)
        self.max_body = cfg.max_body
        self.too_large = "Request body is larger than %d bytes" % cfg.max_body
        self.head_budget = Budget("head", HEAD_BUDGET, "hres")
        # a chunked body takes this at once (the body, its trailers, a chunk line); a Content-Length one
        # its size (and its head past FREE_INPUT, unless the head budget holds that)
        self.chunked_need = cfg.max_body + MAX_HEAD + MAX_CHUNK_LINE
        self.body_budget = Budget("body", max(cfg.max_body, MIN_BODY_BUDGET) + MAX_HEAD + MAX_CHUNK_LINE,
                                  "bres")
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
        self.scratch = bytearray(RECV)
        self.heads = {}  # request head bytes -> Request: clients tend to repeat theirs
        self.ppid = os.getppid()

    # ---- setup -------------------------------------------------------------------------------------

    def listen(self):
        # The supervisor bound the socket; listening on it is idempotent, so the first worker that is
        # ready opens the port (before that, connections are refused: readiness = GET / answers).
        self.lsock.listen(1024)
        self.ep = select.epoll()
        self._start_accepting()
        self.accept_poll = select.poll()
        self.accept_poll.register(self.lsock.fileno(), select.POLLIN)

    def _stop_accepting(self):
        if self.listening:
            self.listening = False
            self.ep.unregister(self.lsock.fileno())

    def _start_accepting(self):
        if not self.listening:
            self.listening = True
            self.ep.register(self.lsock.fileno(), _ACCEPT)

    def _evict_idle(self):
        """Makes room for a new connection: closes one already answered and closed on our side (draining
        what its client still sends), else the keep-alive connection idle the longest. False if none."""
        victim = None
        for conn in self.conns.values():
            if conn.linger:
                victim = conn
                break
            if conn.idle() and (victim is None or conn.last < victim.last):
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
            if conn.idle():
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
        self.ep.register(wake_r, EPOLLIN)
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
                    elif ev & EPOLLOUT:
                        self._on_writable(conn)
                    elif ev & (EPOLLIN | _ERRMASK):
                        self._on_readable(conn)
                except Exception:
                    self._internal_error(conn)
            while self.resumed:
                conn = self.resumed.pop()
                if conn.fd in conns and conns[conn.fd] is conn and not conn.paused:
                    try:
                        self._process(conn)
                    except Exception:
                        self._internal_error(conn)
            if self.closed_tokens:
                send_closed(self.chan, self.closed_tokens)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 1.0
                self._sweep(now)

    def _internal_error(self, conn):
        """A bug met on conn: its traceback is logged and the connection closed; the worker goes on."""
        print_exc("amlc-scoring: internal error on a connection (closed):")
        self._close(conn)

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
            self.ep.register(lfd, _ACCEPT)
        token = self.next_token
        self.next_token += 1
        try:
            send_accepted(self.chan, token, sock.fileno())
        except OSError:
            token = 0  # the supervisor cannot answer for this connection if this worker dies in run()
        conn = Conn(sock, peer, token, time.monotonic())
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, EPOLLIN)
        self._publish()

    def _refuse(self, sock, host):
        """A peer not in AMLC_ALLOWED_PEERS: reset at once, nothing read or answered. Logged once per
        address (while fewer than 1024 were refused lately), at most 10 lines a minute."""
        reset_on_close(sock)
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

    def _publish(self):
        """Shares this worker's count of active connections and refreshes the fair-share limit."""
        if self.nworkers > 1:
            self.slots.set_connections(self.slot, len(self.conns) - self.nlinger)
            self._update_limit()

    def _update_limit(self):
        alive, total = self.slots.ready_connections()
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
        conn.drop_request()
        conn.wbuf = None

    def _abort(self, conn):
        """Closes conn with a reset: what the client did not read is dropped at once (after a plain close
        the kernel would keep trying to deliver it)."""
        reset_on_close(conn.sock)
        self._close(conn)

    def _finish_close(self, conn):
        """Server-side close after the response went out: half-close and drain what the client still
        sends (while it keeps coming, up to LINGER_MAX), so that unread request data does not turn into
        a reset that loses the response."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        now = time.monotonic()
        conn.linger = now + LINGER_IDLE
        conn.linger_end = now + LINGER_MAX
        self.nlinger += 1
        self._release(conn)
        self._publish()
        conn.drop_request()


def worker_main(cfg, keys, slots, slot, lsock, chan):
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
        w = Worker(cfg, script, keys, slots, slot, lsock, chan)
        try:
            w.listen()
        except OSError as e:
            log_err("cannot listen on %s:%d: %s" % (cfg.host, cfg.port, e))
            os._exit(4)
        slots.set_ready(slot)
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
