"""What a worker shares with the supervisor of the scoring server: its record in shared memory (one
SLOT_SIZE slot per worker) and the messages it sends on its socket pair. Both sides read and write them
only through this layout."""

import struct

# Shared memory, one SLOT_SIZE record per worker slot:
#   BUSY   run() start (monotonic seconds; 0 = not in run())    READY  1.0 once listening
#   CONNS  open connections (for the fair share)                 TOKEN  the connection run() answers
#   EXTRA  length + the response header lines of that request (request ids, CORS) for an answer by the
#          supervisor
SLOT_SIZE = 1024
D = struct.Struct("d")
Q = struct.Struct("Q")
H = struct.Struct("H")
BUSY, READY, CONNS, TOKEN, EXTRA = 0, 8, 16, 24, 32
EXTRA_MAX = SLOT_SIZE - EXTRA - H.size
# Worker -> supervisor messages (SOCK_SEQPACKET): b"A" + token with the connection's fd; b"C" + tokens
# of connections the worker closed.
MSG_TOKENS = 512
