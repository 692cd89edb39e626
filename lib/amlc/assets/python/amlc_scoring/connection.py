"""A worker's connection state (Conn), the request-memory budgets connections take from (Budget), and how
the scoring server closes connections (the linger after its own close, the reset)."""

import collections
import select
import socket
import struct

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
LINGER_IDLE = 2.0     # after our close: drain the client's unread data while it keeps coming ...
LINGER_MAX = 10.0     # ... for at most this long
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection (reset_on_close)


class Conn:
    """One client connection of a worker: its socket, what was read and not consumed yet, the request in
    progress, the response the socket did not take yet, and what it holds of the budgets."""

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
        self.paused = None       # ... that budget (a Budget) while it waits: not reading
        self.rid = None          # the current request's id (x-request-id or a new UUID) ...
        self.t0 = 0.0            # ... when its head was in ...
        self.ids = None          # ... and its request-id/CORS response header lines (made once)

    def idle(self):
        """Between requests: nothing read or to send, no request in progress, not closing."""
        return (self.wbuf is None and self.req is None and not self.buf and not self.discard and not self.paused
                and not self.closing and not self.linger)

    def drop_request(self):
        """Forgets the request in progress and what was read after it (the connection is closing)."""
        self.buf = b""
        self.req = self.body = self.dec = None
        self.need = self.discard = 0


class Budget:
    """Request bytes a worker holds beyond each connection's FREE_INPUT, in one kind (heads or bodies).
    Each connection takes what it needs of a kind at once (it never waits while holding part of that
    kind), so waiters can always be served once the holders are done: no deadlock."""

    __slots__ = ("size", "used", "waiters", "name", "held")

    def __init__(self, name, size, held):
        self.name = name
        self.size = size
        self.used = 0
        self.waiters = collections.deque()  # paused connections, first come first served
        self.held = held  # the Conn attribute that says how much of this budget a connection holds

    def take(self, conn, amount):
        """Takes `amount` bytes (at most the whole budget) for conn, which holds none of them; else queues
        conn (paused: first come, first served) and returns False."""
        amount = min(amount, self.size)
        if not self.waiters and self.used + amount <= self.size:
            self.used += amount
            setattr(conn, self.held, amount)
            return True
        conn.want = amount
        conn.paused = self
        self.waiters.append(conn)
        return False

    def give_back(self, amount):
        """Takes back `amount` bytes; the waiting connections that fit now get what they wait for: they are
        returned, no longer paused."""
        self.used -= amount
        waiters = self.waiters
        granted = []
        while waiters and self.used + waiters[0].want <= self.size:
            c = waiters.popleft()
            self.used += c.want
            setattr(c, self.held, c.want)
            c.want = 0
            c.paused = None
            granted.append(c)
        return granted


def reset_on_close(sock):
    """Makes close() reset the connection: what the client did not read is dropped at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
