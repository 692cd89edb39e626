"""Worker memory of the scoring server under concurrent clients sending big bodies.

As a tool: `python3 tests/python/scoring_memory.py [--clients 6] [--mb 95] [--limit-mb 50] [--under-mb 45]`
starts a server per scenario (auth on, one worker, AMLC_MAX_BODY_BYTES = the limit), runs it with N
concurrent clients and prints the worker's peak RSS (VmHWM) growth. Scenarios: bodies without a key, with
a key past the limit (Content-Length, chunked), with a key under the limit (scored).
test_scoring_memory.py asserts bounds with smaller figures.
"""

import argparse
import json
import os
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _support  # noqa: E402
from _support import Server, children, stream_request, vm_kb, wait_for  # noqa: E402

SCRIPT = "def init():\n    pass\ndef run(data):\n    return len(data)\n"
KEY = "mem-key-1"


def start(limit_bytes, workers=1):
    keydir = tempfile.mkdtemp(prefix="amlc-mem-keys-")
    keys = os.path.join(keydir, "keys.json")
    with open(keys, "w") as f:
        json.dump({"primaryKey": KEY, "secondaryKey": "mem-key-2"}, f)
    srv = Server(SCRIPT, workers=workers, env={"AMLC_AUTH_KEYS_FILE": keys, "AMLC_MAX_BODY_BYTES": str(limit_bytes)})
    pids = wait_for(lambda: len(children(srv.proc.pid)) == workers and children(srv.proc.pid), 10,
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--mb", type=int, default=95, help="body size per client (MB)")
    ap.add_argument("--limit-mb", type=int, default=50, help="AMLC_MAX_BODY_BYTES in MB")
    ap.add_argument("--under-mb", type=int, default=45, help="body size under the limit (MB; 0: skip)")
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
    for name, head, total, piece in runs:
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


if __name__ == "__main__":
    main()
