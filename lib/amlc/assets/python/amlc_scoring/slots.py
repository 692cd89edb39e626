"""What a worker shares with the supervisor of the scoring server: its record in shared memory (Slots, one
SLOT_SIZE slot per worker) and the messages it sends on its socket pair (send_accepted, send_closed,
receive). Both sides read and write them only through this module."""

import array
import mmap
import socket
import struct

# Shared memory, one SLOT_SIZE record per worker slot:
#   BUSY   run() start (monotonic seconds; 0 = not in run())    READY  1.0 once listening
#   CONNS  open connections (for the fair share)                 TOKEN  the connection run() answers
#   EXTRA  length + the response header lines of that request (request ids, CORS) for an answer by the
#          supervisor
SLOT_SIZE = 1024
_D = struct.Struct("d")
_Q = struct.Struct("Q")
_H = struct.Struct("H")
_BUSY, _READY, _CONNS, _TOKEN, _EXTRA = 0, 8, 16, 24, 32
_EXTRA_MAX = SLOT_SIZE - _EXTRA - _H.size
# Worker -> supervisor messages (SOCK_SEQPACKET): b"A" + token with the connection's fd; b"C" + tokens
# of connections the worker closed.
_MSG_TOKENS = 512
_FDS_SPACE = socket.CMSG_SPACE(array.array("i").itemsize * 4)


class Slots:
    """The workers' shared memory (made before the fork, so the workers and the supervisor share it)."""

    def __init__(self, nslots):
        self.mem = mmap.mmap(-1, SLOT_SIZE * nslots)
        self.nslots = nslots

    def clear(self, slot):
        """A new worker in this slot: not ready, not in run(), no connections."""
        self.mem[slot * SLOT_SIZE:(slot + 1) * SLOT_SIZE] = bytes(SLOT_SIZE)

    def ready(self, slot):
        return _D.unpack_from(self.mem, slot * SLOT_SIZE + _READY)[0] == 1.0

    def set_ready(self, slot):
        _D.pack_into(self.mem, slot * SLOT_SIZE + _READY, 1.0)

    def set_connections(self, slot, count):
        _D.pack_into(self.mem, slot * SLOT_SIZE + _CONNS, float(count))

    def ready_connections(self):
        """(how many workers are ready, the connections they hold in all)."""
        mem = self.mem
        total = 0.0
        alive = 0
        for i in range(self.nslots):
            base = i * SLOT_SIZE
            if _D.unpack_from(mem, base + _READY)[0] == 1.0:
                alive += 1
                total += _D.unpack_from(mem, base + _CONNS)[0]
        return alive, total

    def busy_since(self, slot):
        """When the worker entered run() (monotonic seconds); 0.0 when it is not in run()."""
        return _D.unpack_from(self.mem, slot * SLOT_SIZE + _BUSY)[0]

    def set_busy(self, slot, since):
        _D.pack_into(self.mem, slot * SLOT_SIZE + _BUSY, since)

    def record_request(self, slot, token, lines):
        """The request run() is about to answer: its connection's token (0: the supervisor does not hold it)
        and its response header lines (dropped when too long)."""
        mem = self.mem
        off = slot * SLOT_SIZE
        _Q.pack_into(mem, off + _TOKEN, token)
        if token:
            if len(lines) > _EXTRA_MAX:
                lines = b""
            _H.pack_into(mem, off + _EXTRA, len(lines))
            mem[off + _EXTRA + 2:off + _EXTRA + 2 + len(lines)] = lines

    def recorded_request(self, slot):
        """(token, response header lines) of the request last recorded in this slot."""
        mem = self.mem
        off = slot * SLOT_SIZE
        n = _H.unpack_from(mem, off + _EXTRA)[0]
        return _Q.unpack_from(mem, off + _TOKEN)[0], bytes(mem[off + _EXTRA + 2:off + _EXTRA + 2 + min(n, _EXTRA_MAX)])


def send_accepted(chan, token, fd):
    """Worker: hands the supervisor a duplicate of the connection fd it accepted, under token. Raises OSError."""
    chan.sendmsg([b"A" + _Q.pack(token)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def send_closed(chan, tokens):
    """Worker: tells the supervisor the connections of these tokens are closed; removes from the list
    what was sent (what the supervisor cannot take yet stays for the next call; all of it on an error)."""
    while tokens:
        part = tokens[:_MSG_TOKENS]
        try:
            chan.send(b"C" + struct.pack("%dQ" % len(part), *part))
        except (BlockingIOError, InterruptedError):
            return  # the supervisor is behind: next loop
        except OSError:
            tokens.clear()
            return
        del tokens[:len(part)]


def receive(chan):
    """Supervisor: the next message of a worker, (b"A", [token], fds) or (b"C", tokens, fds), where fds are
    the descriptors that came with it (the caller's to keep or close); None when there is none."""
    try:
        msg, anc, _, _ = chan.recvmsg(8 + 8 * _MSG_TOKENS, _FDS_SPACE)
    except OSError:  # (BlockingIOError, InterruptedError: nothing now)
        return None
    if not msg:
        return None
    fds = array.array("i")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    kind = msg[:1]
    if kind == b"A":
        tokens = [_Q.unpack_from(msg, 1)[0]] if len(msg) == 9 else []
    elif kind == b"C":
        tokens = [token for (token,) in struct.iter_unpack("Q", msg[1:len(msg) - (len(msg) - 1) % 8])]
    else:
        tokens = []
    return kind, tokens, list(fds)
