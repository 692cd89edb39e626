"""Worker memory of the scoring server under concurrent clients sending big bodies, clients that stop
reading big responses, and many partial requests.

As a tool: `python3 tests/python/scoring_memory.py [--clients 6] [--mb 95] [--limit-mb 50] [--under-mb 45]
[--readers 5] [--response-mb 16] [--partial 1000] [--partial-kb 60]` starts a server per scenario (auth on,
one worker, AMLC_MAX_BODY_BYTES = the limit), runs it with N concurrent clients and prints the worker's
peak RSS (VmHWM) growth. Scenarios: bodies without a key, with a key past the limit (Content-Length,
chunked), with a key under the limit (scored); clients that ask for big responses and never read them
(RSS while they wait, and whether the server lets them go); connections that each send part of a big
request head and stop. test_scoring_memory.py asserts bounds with smaller figures.
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _support  # noqa: E402
from _support import Server, children, stream_request, vm_kb, wait_for  # noqa: E402

SCRIPT = ("def init():\n    pass\ndef run(data):\n    if data.startswith('big:'):\n        return 'x' * int(data[4:])\n"
          "    return len(data)\n")
KEY = "mem-key-1"


def start(limit_bytes, workers=1, env=None):
    keydir = tempfile.mkdtemp(prefix="amlc-mem-keys-")
    keys = os.path.join(keydir, "keys.json")
    with open(keys, "w") as f:
        json.dump({"primaryKey": KEY, "secondaryKey": "mem-key-2"}, f)
    srv = Server(SCRIPT, workers=workers, env=dict(env or {}, AMLC_AUTH_KEYS_FILE=keys,
                                                   AMLC_MAX_BODY_BYTES=str(limit_bytes)))
    pids = wait_for(lambda: len(children(srv.proc.pid)) == workers and children(srv.proc.pid), 60,
                    what="the worker processes")
    return srv, pids


def concurrent(port, n, head, total, piece=b"x" * (1 << 20)):
    """n clients at once, each sending head then `total` body bytes; returns their statuses."""
    results = [None] * n

    def one(i):
        results[i] = stream_request(port, head, total, piece, timeout=120)[0]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return results


MIB_CHUNK = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"  # one 1 MiB chunk of a chunked body


def scenarios(size):
    """(name, head, body bytes, repeated body piece) of the clients the server must not buffer for."""
    key = ("Authorization: Bearer %s\r\n" % KEY).encode()
    x = b"x" * (1 << 20)
    return [
        ("no key, Content-Length", b"POST /score HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size, size, x),
        ("key, Content-Length past the limit", b"POST /score HTTP/1.1\r\n" + key +
         b"Content-Length: %d\r\n\r\n" % size, size, x),
        ("key, chunked (1 MiB chunks) past the limit", b"POST /score HTTP/1.1\r\n" + key +
         b"Transfer-Encoding: chunked\r\n\r\n", size, MIB_CHUNK),
    ]


def under_limit(size):
    key = ("Authorization: Bearer %s\r\n" % KEY).encode()
    return ("key, Content-Length under the limit (scored)",
            b"POST /score HTTP/1.1\r\n" + key + b"Content-Length: %d\r\n\r\n" % size, size, b"x" * (1 << 20))


def hwm(pids):
    return max(vm_kb(p, "VmHWM") for p in pids)


def rss(pids):
    return sum(vm_kb(p, "VmRSS") for p in pids if os.path.exists("/proc/%d" % p))


TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8


def tcp_state(sock):
    """The kernel's TCP state of a client socket (1 established, 7 closed: reset, 8: the peer closed)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def unread_bytes(sock):
    import fcntl
    import termios
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little")


def non_reading_clients(port, n, size):
    """n clients that each ask for a `size`-character response and never read it (small receive
    buffers, so the server keeps most of it). Returns their sockets once the first bytes of every
    response arrived (run() has answered)."""
    socks = []
    body = b"big:%d" % size
    req = (b"POST /score HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
           % (KEY.encode(), len(body), body))
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        socks.append(s)
    wait_for(lambda: all(unread_bytes(s) > 0 for s in socks), 120, interval=0.05, what="the responses to start")
    return socks


def server_unread(port):
    """Bytes received on the server's side of its established connections on `port` that the server
    has not read yet (/proc/net/tcp*)."""
    total = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                total += int(fields[4].split(":")[1], 16)
    return total


def partial_heads(srv, n, size):
    """n connections that each send the first `size` bytes of a request head, and stop. Returns their
    sockets once the server has read all it will read of them (the unread bytes on its side stopped
    changing between two answered requests)."""
    socks = []
    part = b"GET / HTTP/1.1\r\nX-Pad: " + b"p" * max(0, size - 24)
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        s.sendall(part)
        socks.append(s)
    seen = []

    def settled():
        assert srv.request("GET", "/", fresh=True, timeout=60).status == 200
        seen.append(server_unread(srv.port))
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]
    wait_for(settled, 120, interval=0.1, what="the server to read the partial requests")
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=6, help="clients sending big bodies at once (0: skip)")
    ap.add_argument("--mb", type=int, default=95, help="body size per client (MB)")
    ap.add_argument("--limit-mb", type=int, default=50, help="AMLC_MAX_BODY_BYTES in MB")
    ap.add_argument("--under-mb", type=int, default=45, help="body size under the limit (MB; 0: skip)")
    ap.add_argument("--readers", type=int, default=5, help="clients that never read their response (0: skip)")
    ap.add_argument("--response-mb", type=int, default=16, help="response size for them (MB)")
    ap.add_argument("--keepalive", type=int, default=5, help="AMLC_KEEPALIVE_S for that scenario")
    ap.add_argument("--partial", type=int, default=1000, help="connections sending a partial head (0: skip)")
    ap.add_argument("--partial-kb", type=int, default=60, help="bytes of head each sends (KB)")
    ap.add_argument("--assets", help="the Python assets directory to run (default: this checkout's)")
    args = ap.parse_args()
    if args.assets:
        _support.ASSETS = os.path.abspath(args.assets)
    mb = 1000 * 1000
    limit = args.limit_mb * mb
    if args.mb <= args.limit_mb:
        ap.error("--mb must be past --limit-mb")
    runs = scenarios(args.mb * mb)
    if args.under_mb:
        runs.append(under_limit(args.under_mb * mb))
    print("%d client(s) at once per scenario, limit %d MB; worker peak RSS (VmHWM) growth:" % (args.clients,
                                                                                               args.limit_mb))
    for name, head, total, piece in runs if args.clients else []:
        srv, pids = start(limit)  # a fresh server per scenario: VmHWM only grows
        try:
            base = hwm(pids)
            statuses = concurrent(srv.port, args.clients, head, total, piece)
            alive = [p for p in pids if os.path.exists("/proc/%d" % p)]
            peak = hwm(alive) if alive else -1
            print("  %-45s statuses %s: %s" % (name, statuses, ("+%d MB (base %d MB)" % ((peak - base) // 1024,
                                                                                         base // 1024))
                                                  if alive else "worker died"))
        finally:
            srv.stop()
    if args.readers:
        non_reading(args.readers, args.response_mb * mb, args.keepalive, limit)
    if args.partial:
        srv, pids = start(limit)
        socks = []
        try:
            base = hwm(pids)
            socks = partial_heads(srv, args.partial, args.partial_kb * 1000)
            print("  %-45s +%d MB (base %d MB)" % ("%d partial heads of %d KB" % (args.partial, args.partial_kb),
                                                  (hwm(pids) - base) // 1024, base // 1024))
        finally:
            for s in socks:
                s.close()
            srv.stop()


def non_reading(n, size, keepalive, limit):
    srv, pids = start(limit, env={"AMLC_KEEPALIVE_S": str(keepalive)})
    socks = []
    try:
        base = rss(pids)
        socks = non_reading_clients(srv.port, n, size)
        t0 = time.monotonic()
        held = rss(pids)
        try:
            wait_for(lambda: all(tcp_state(s) == TCP_CLOSE for s in socks), 2 * keepalive + 10, interval=0.1)
            after = "reset after %.1f s, worker RSS then +%d MB" % (time.monotonic() - t0, (rss(pids) - base) // 1024)
        except AssertionError:
            after = "still open after %.0f s, worker RSS +%d MB" % (time.monotonic() - t0, (rss(pids) - base) // 1024)
        print("  %-45s +%d MB while they wait; %s" % ("%d clients not reading %d MB responses" % (n, size // 1000000),
                                                      (held - base) // 1024, after))
    finally:
        for s in socks:
            s.close()
        srv.stop()


if __name__ == "__main__":
    main()
