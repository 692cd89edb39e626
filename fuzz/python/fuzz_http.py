#!/usr/bin/env python3
"""HTTP fuzzer for the amlc scoring server (stdlib only).

Starts the server (2 workers, auth keys, CORS, a 1 MB body limit) and sends it the seed corpus
(fuzz/python/corpus/*.http, raw requests whose file name starts with the expected status(es), e.g.
`400-empty-target.http`, `100-expect-continue-head-only.http`), alone and pipelined, then random cases:
mutated seeds (bytes; request line, header, Content-Length, Transfer-Encoding, chunked framing, obs-fold,
huge heads, many headers, splices), requests generated from scratch, well-formed requests pipelined 1-4
at a time whose statuses are known (some ask run() for big responses, up to 4 MB, also with
`Connection: close` or HTTP/1.0; some make run() call sys.exit() or raise KeyboardInterrupt: 500), and
2-12 concurrent connections with big bodies (the worker's body budget makes some wait). Cases are sent
in random pieces with small pauses (partial sends), sometimes truncated or followed by another request.
Some clients stop reading: for a while (then they must get every response whole), or for good (the
server must let them go, reset or closed, within its idle timeout). Deterministic for a seed; stops
after --seconds (or --cases).

Each case is sent on a fresh connection, then the client half-closes (or, for half of the well-formed
cases, keeps its side open until all the answers came). Checked after every case:
- everything the server sent is a sequence of complete, well-formed responses (status line, headers with
  a Content-Length, that many body bytes), with nothing after a `Connection: close` response;
- statuses are 1xx/2xx/4xx or the documented 5xx (501 unsupported Transfer-Encoding, 505 HTTP version,
  500 with `x-ms-run-function-failed: True` for a run() that failed);
- the server closes the connection cleanly (FIN, not a reset, not a hang) once the client is done;
- the server still answers `GET /` on a new connection, and logged no internal error or crash (nor any
  traceback but those of run() failures);
- corpus seeds and well-formed requests (alone or pipelined) get exactly their expected statuses.

Usage: fuzz_http.py [--seconds 60] [--seed 1] [--cases N] [--out DIR] [--replay FILE...] [--assets DIR] [-v]
Exit status 0 when every case passed; 1 with the failing cases written to --out (default: a temp dir),
each as the bytes sent plus a .json with how they were cut, what was expected and how the client read
(--replay sends them the same way: a concurrent case as its connections at once, a slow reader with its
pause, an abandoning client without reading).
Short mode for CI: fuzz_http.py --seconds 30 (about 600 cases).
"""

import sys
sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree

import argparse
import json
import os
import random
import re
import socket
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import _support  # noqa: E402
from _support import Server  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
KEY = "fuzz-key"
BODY_LIMIT = 1 << 20
ALLOWED_5XX = {501, 505}
SCRIPT = r'''
import sys

def init():
    pass

def run(data):
    if data.startswith("big:"):
        try:
            return "x" * min(int(data[4:12]), 4000000)
        except ValueError:
            pass
    if data == "exit":
        sys.exit(3)
    if data == "interrupt":
        raise KeyboardInterrupt()
    return {"len": len(data), "head": data[:16]}
'''
CASE_DEADLINE = 10.0  # seconds for the server to answer and close one case
KEEPALIVE_S = 5       # the server's AMLC_KEEPALIVE_S: also how long it waits for a client that stopped reading
CLIENT_RCVBUF = 65536  # a client that pauses reading has a small receive buffer: the server holds the rest

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [^\r\n]*\r\n")


class CaseFailure(Exception):
    pass


# ---- the oracle ------------------------------------------------------------------------------------

def parse_responses(data, request):
    """Splits what the server sent into responses; raises CaseFailure on anything malformed.
    Returns [(status, headers)]."""
    out = []
    pos = 0
    heads_allowed = b"HEAD" in request
    closed = False
    while pos < len(data):
        if closed:
            raise CaseFailure("bytes after a Connection: close response: %r" % data[pos:pos + 80])
        m = _STATUS_LINE.match(data, pos)
        if m is None:
            raise CaseFailure("malformed status line at %d: %r" % (pos, data[pos:pos + 80]))
        end = data.find(b"\r\n\r\n", m.start())
        if end < 0:
            raise CaseFailure("incomplete response head: %r" % data[pos:pos + 200])
        status = int(m.group(1))
        headers = {}
        for line in data[m.end():end].split(b"\r\n") if end > m.end() - 2 else []:
            if not line:
                continue
            k, sep, v = line.partition(b":")
            if not sep or not k or k != k.strip() or b" " in k:
                raise CaseFailure("malformed response header %r" % line)
            headers[k.decode("latin-1").lower()] = v.strip().decode("latin-1")
        pos = end + 4
        if status < 200:
            out.append((status, headers))
            continue
        if "content-length" not in headers or not headers["content-length"].isdigit():
            raise CaseFailure("response without a valid Content-Length: %r" % data[m.start():end])
        n = int(headers["content-length"])
        rest = data[pos:]
        if heads_allowed and n and (not rest or rest.startswith(b"HTTP/1.1 ")):
            pass  # the answer to a HEAD request: no body
        elif len(rest) < n:
            raise CaseFailure("response body shorter than Content-Length %d: %r" % (n, rest[:80]))
        else:
            pos += n
        if headers.get("connection", "").lower() == "close":
            closed = True
        out.append((status, headers))
    return out


def check_statuses(responses):
    for status, headers in responses:
        if status == 500 and headers.get("x-ms-run-function-failed") == "True":
            continue  # run() failed (sys.exit(), KeyboardInterrupt)
        if status >= 500 and status not in ALLOWED_5XX:
            raise CaseFailure("undocumented server error %d" % status)
        if status not in (100, 200, 400, 401, 404, 405, 408, 413, 415, 431, 501, 505):
            raise CaseFailure("unexpected status %d" % status)


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(CASE_DEADLINE)
    s.connect(("127.0.0.1", port))
    return s


def exchange(port, pieces, rng, until=None, read_delay=0.0):
    """Sends the pieces (with small pauses between them), then half-closes and reads until the server
    closes; or, with `until` (a test on the bytes received), keeps the connection open and reads until
    the test passes (then "fin") or the server closes. With read_delay, the client (with a small receive
    buffer) reads nothing for that long after sending. Returns (bytes received, how the connection ended)."""
    s = connect(port, CLIENT_RCVBUF if read_delay else None)
    got = []
    ended = "fin"
    try:
        try:
            for i, p in enumerate(pieces):
                if i and rng.random() < 0.5:
                    time.sleep(rng.choice((0.0, 0.001, 0.005, 0.02)))
                s.sendall(p)
            if until is None:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early (e.g. 431, 413): read what it said
        if read_delay:
            time.sleep(read_delay)  # the client's behaviour under test: not reading
        deadline = time.monotonic() + CASE_DEADLINE
        while until is None or not until(b"".join(got)):
            left = deadline - time.monotonic()
            if left <= 0:
                ended = "hang"
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                ended = "hang"
                break
            except ConnectionResetError:
                ended = "reset"
                break
            if not chunk:
                break
            got.append(chunk)
    finally:
        s.close()
    return b"".join(got), ended


def server_side_state(server_port, client_port):
    """The TCP state (hex, as in /proc/net/tcp: 01 established) of the server's side of the connection
    from client_port, or None when the server has no socket for it any more."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (int(fields[1].rsplit(":", 1)[1], 16) == server_port and
                    int(fields[2].rsplit(":", 1)[1], 16) == client_port):
                return fields[3]
    return None


class Fuzzer:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.seeds = load_corpus(args.corpus)
        self.keydir = tempfile.mkdtemp(prefix="amlc-fuzz-keys-")
        self.keys = os.path.join(self.keydir, "keys.json")
        with open(self.keys, "w") as f:
            json.dump({"primaryKey": KEY, "secondaryKey": "fuzz-key-2"}, f)
        self.srv = None
        self.log_pos = 0
        self.cases = 0
        self.abandoned = []  # (socket, when, name, data): clients that stopped reading for good

    def start(self):
        self.srv = Server(SCRIPT, workers=2, env={"AMLC_AUTH_KEYS_FILE": self.keys, "AML_CORS_ORIGINS": "http://o.example",
                                                  "AMLC_MAX_BODY_BYTES": str(BODY_LIMIT), "SCORING_TIMEOUT_MS": "5000",
                                                  "AMLC_KEEPALIVE_S": str(KEEPALIVE_S)})

    def stop(self):
        if self.srv is not None:
            self.stop_server()
        import shutil
        shutil.rmtree(self.keydir, ignore_errors=True)

    def run_case(self, name, data, pieces=None, expect=None, keep_open=False, read_delay=0.0):
        self.cases += 1
        pieces = pieces or [data]
        until = None
        if keep_open and expect:
            # The answers must come without the client closing its side first.
            def until(got):
                try:
                    return len([r for r in parse_responses(got, data) if r[0] >= 200]) >= len(expect)
                except CaseFailure:
                    return False
        got, ended = exchange(self.srv.port, pieces, self.rng, until, read_delay)
        try:
            if ended != "fin":
                raise CaseFailure("connection ended by %s" % ended)
            responses = parse_responses(got, data)
            check_statuses(responses)
            if expect is not None:
                statuses = [s for s, _ in responses]
                if statuses != expect:
                    raise CaseFailure("statuses %s, expected %s" % (statuses, expect))
            self.check_server()
        except CaseFailure as e:
            raise CaseFailure("%s: %s\n  request: %r\n  answer: %r" % (name, e, data[:600], got[:600])) from None
        if self.args.verbose:
            print("ok %s (%d bytes, %d pieces): %s" % (name, len(data), len(pieces),
                                                        [s for s, _ in responses]))

    def check_server(self):
        if self.srv.proc.poll() is not None:
            raise CaseFailure("the server exited with %s" % self.srv.proc.returncode)
        try:
            r = self.srv.request("GET", "/", fresh=True, timeout=CASE_DEADLINE)
        except OSError as e:
            raise CaseFailure("health check failed: %s" % e) from None
        if r.status != 200:
            raise CaseFailure("health check answered %d" % r.status)
        _, err = self.srv.logs()
        new = err[self.log_pos:]
        self.log_pos = len(err)
        lines = new.splitlines()
        for i, line in enumerate(lines):
            # the traceback of a run() failure is expected (and says so just before)
            if "Traceback" in line and not (i and lines[i - 1].startswith("Encountered Exception in run()")):
                raise CaseFailure("server log: %s" % new[-2000:])
        for bad in ("internal error", "worker crashed", "exited (", "stuck in run()"):
            if bad in new:
                raise CaseFailure("server log: %s" % new[-2000:])

    # ---- the cases ---------------------------------------------------------------------------------

    def corpus_cases(self):
        for name, data, expect in self.seeds:
            yield "corpus/" + name, data, None, expect
        # every valid seed pipelined behind a keep-alive one
        plain = [(n, d, e) for n, d, e in self.seeds if e and e[-1] < 300 and 100 not in e
                 and b"Connection: close" not in d and b"HTTP/1.0" not in d]
        for name, data, expect in self.seeds:
            if plain:
                first = plain[len(name) % len(plain)]
                yield "pipelined/%s+%s" % (first[0], name), first[1] + data, None, first[2] + expect

    def valid_case(self):
        """1-4 well-formed requests pipelined (sent in random pieces): exactly their statuses, in order,
        up to the one after which the server closes (what follows it gets no answer)."""
        rng = self.rng
        data = b""
        expect = []
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            req, status, close = generate_valid(rng)
            data += req
            expect.append(status)
            if close:
                if rng.random() < 0.5:
                    data += generate_valid(rng)[0]
                break
        return "valid", data, split(rng, data), expect

    def concurrent_reqs(self):
        """2-12 well-formed requests, most with big bodies (so that some wait for the worker's body
        budget): [(data, pieces, [status])]."""
        rng = self.rng
        reqs = []
        n = rng.randint(2, 12)
        while len(reqs) < n:
            data, status, _ = generate_valid(rng)
            if rng.random() < 0.7 and len(data) < 100000:
                continue
            reqs.append((data, split(rng, data), [status]))
        return reqs

    def concurrent_case(self, reqs):
        """The requests on as many connections at once: each gets exactly its status."""
        results = [None] * len(reqs)
        rngs = [random.Random(self.rng.random()) for _ in reqs]

        def one(i):
            data, pieces, expect = reqs[i]
            r = rngs[i]
            try:
                got, ended = exchange(self.srv.port, pieces, r)
                if ended != "fin":
                    raise CaseFailure("connection ended by %s" % ended)
                statuses = [st for st, _ in parse_responses(got, data)]
                if statuses != expect:
                    raise CaseFailure("statuses %s, expected %s" % (statuses, expect))
            except CaseFailure as e:
                results[i] = "%s\n  request: %r" % (e, data[:300])
            except Exception as e:
                results[i] = "%r\n  request: %r" % (e, data[:300])
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CASE_DEADLINE * 3)
        self.cases += 1
        errors = [r for r in results if r]
        if errors:
            raise CaseFailure("concurrent: %d of %d connections failed: %s" % (len(errors), len(reqs), errors[0]))
        self.check_server()
        if self.args.verbose:
            print("ok concurrent (%d connections): %s" % (len(reqs), [r[2][0] for r in reqs]))

    def big_response_reqs(self, size=None):
        """1-3 well-formed requests pipelined, the first asking for a big response (of `size`, else a
        random one): (data, statuses)."""
        rng = self.rng
        while True:
            data, status, close = generate_valid(rng, big=size or True)
            if status == 200:
                break
        expect = [status]
        n = rng.randint(1, 3)
        while not close and len(expect) < n:
            more, status, close = generate_valid(rng)
            data += more
            expect.append(status)
        return data, expect

    def slow_reader_case(self):
        """A client that reads nothing for up to 1.5 s (well within the server's idle timeout), then
        everything: its responses must come whole."""
        data, expect = self.big_response_reqs()
        return "slow-reader", data, split(self.rng, data), expect, self.rng.choice((0.2, 0.5, 1.0, 1.5))

    def abandon(self, name, data):
        """A client that asks for a big response and never reads it (checked by check_abandoned)."""
        self.cases += 1
        s = connect(self.srv.port, CLIENT_RCVBUF)
        s.sendall(data)
        self.abandoned.append((s, time.monotonic(), name, data))
        if self.args.verbose:
            print("ok abandon (%d bytes): checked later" % len(data))

    def check_abandoned(self, everything=False):
        """The server let go of the clients that stopped reading, within its idle timeout and a margin:
        its side of their connection is no longer established (reset, or closed with what did not fit
        in the client's buffer left to the kernel). Checks those old enough, or all (waiting for them)."""
        keep = []
        failed = None
        for item in self.abandoned:
            s, when, name, data = item
            due = when + KEEPALIVE_S + 1 + CASE_DEADLINE
            while failed is None:
                state = server_side_state(self.srv.port, s.getsockname()[1])
                if state != "01":  # TCP_ESTABLISHED
                    s.close()
                    break
                if time.monotonic() > due:
                    failed = CaseFailure("%s: the server kept a client that stopped reading for %.0f s\n"
                                         "  request: %r" % (name, time.monotonic() - when, data[:300]))
                    failed.case = (name, data)
                    s.close()
                    break
                if not everything:
                    keep.append(item)
                    break
                time.sleep(0.05)
            else:
                s.close()
        self.abandoned = keep
        if failed is not None:
            raise failed

    def random_case(self):
        rng = self.rng
        if rng.random() < 0.3:
            return self.valid_case()
        kind = rng.random()
        name, data, _ = rng.choice(self.seeds)
        if kind < 0.35:
            data = mutate_bytes(rng, data)
            label = "bytes"
        elif kind < 0.7:
            data = mutate_structure(rng, data, self.seeds)
            label = "structure"
        else:
            data = generate(rng)
            label = "generated"
        if rng.random() < 0.2:
            data = data + rng.choice(self.seeds)[1]  # pipelined
        if rng.random() < 0.1:
            data = data[:rng.randrange(len(data) + 1)]  # truncated
        return "%s/%s" % (label, name), data, split(rng, data), None

    def run(self):
        """Returns the failures: (name, data, message, meta for the replay)."""
        deadline = time.monotonic() + self.args.seconds
        fails = []
        cases = list(self.corpus_cases())
        i = 0
        while time.monotonic() < deadline and (not self.args.cases or self.cases < self.args.cases):
            keep_open = False
            read_delay = 0.0
            meta = {}
            if i < len(cases):
                case = cases[i]
            else:
                kind = self.rng.random()
                if kind < 0.03:
                    reqs = self.concurrent_reqs()
                    case = ("concurrent", b"".join(r[0] for r in reqs), None, None)
                    meta["connections"] = [{"pieces": [len(p) for p in r[1]], "expect": r[2]} for r in reqs]
                elif kind < 0.05:
                    name, data, pieces, expect, read_delay = self.slow_reader_case()
                    case = (name, data, pieces, expect)
                    meta["read_delay"] = read_delay
                elif kind < 0.06 and len(self.abandoned) < 3:
                    # the biggest response: more than the kernel's buffers take, so the server holds some
                    data = self.big_response_reqs(BIG_SIZES[-1])[0]
                    case = ("abandon", data, None, None)
                    meta["abandon"] = True
                else:
                    case = self.random_case()
                    keep_open = case[0] == "valid" and self.rng.random() < 0.5
            i += 1
            name, data, pieces, expect = case
            meta.update(case=name, pieces=[len(p) for p in pieces or [data]], expect=expect)
            try:
                if "connections" in meta:
                    self.concurrent_case(reqs)
                elif "abandon" in meta:
                    self.abandon(name, data)
                else:
                    self.run_case(name, data, pieces, expect, keep_open, read_delay)
                self.check_abandoned()
            except CaseFailure as e:
                case = getattr(e, "case", None)
                if case is not None:  # an abandoned client from before: that is the case to replay
                    name, data = case
                    meta = {"case": name, "pieces": [len(data)], "expect": None, "abandon": True}
                fails.append((name, data, str(e), meta))
                if not self.restart(fails):
                    break
        try:
            self.check_abandoned(everything=True)
        except CaseFailure as e:
            fails.append((e.case[0], e.case[1], str(e), {"case": e.case[0], "pieces": [len(e.case[1])],
                                                          "expect": None, "abandon": True}))
        return fails

    def restart(self, fails):
        """A fresh server for the next cases (the failure is reported); False after 5 failures."""
        self.stop_server()
        self.start()
        self.log_pos = 0
        return len(fails) < 5

    def stop_server(self):
        for s, _, _, _ in self.abandoned:
            s.close()
        self.abandoned = []
        self.srv.stop()

    def replay(self, path):
        """Sends a failure file as it was sent; raises CaseFailure."""
        with open(path, "rb") as f:
            data = f.read()
        meta = {}
        if os.path.exists(path + ".json"):  # how it was sent, what was expected
            with open(path + ".json") as f:
                meta = json.load(f)
        if "connections" in meta:
            reqs = []
            pos = 0
            for c in meta["connections"]:
                pieces = []
                for n in c["pieces"]:
                    pieces.append(data[pos:pos + n])
                    pos += n
                reqs.append((b"".join(pieces), pieces, c["expect"]))
            self.concurrent_case(reqs)
            return
        if meta.get("abandon"):
            self.abandon(path, data)
            self.check_abandoned(everything=True)
            return
        pieces = None
        if "pieces" in meta:
            pieces = []
            pos = 0
            for n in meta["pieces"]:
                pieces.append(data[pos:pos + n])
                pos += n
        self.run_case(path, data, pieces, meta.get("expect"), read_delay=meta.get("read_delay", 0.0))


# ---- mutation and generation -------------------------------------------------------------------------

def load_corpus(directory):
    seeds = []
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".http"):
            continue
        with open(os.path.join(directory, fn), "rb") as f:
            data = f.read()
        prefix = fn.split("-", 1)[0]
        expect = [int(s) for s in prefix.split("+")] if re.fullmatch(r"[0-9]{3}(\+[0-9]{3})*", prefix) else None
        seeds.append((fn, data, expect))
    if not seeds:
        raise SystemExit("no .http seeds in %s" % directory)
    return seeds


INTERESTING = [b"", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b"\x7f", b"\xff", b":", b";",
               b",", b"0", b"-1", b"+1", b"0x10", b"1_0", b"99999999999999999999", b"\xc3\xa9", b"%00",
               b"chunked", b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1", b"/",
               b"?", b"#", b"*", b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Host: a\r\n"]


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:                      # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:                             # insert something interesting
            data[pos:pos] = rng.choice(INTERESTING)
        elif op == 2 and data:                    # delete a range
            data[pos:pos + rng.randint(1, 8)] = b""
        elif op == 3 and data:                    # duplicate a range
            n = rng.randint(1, 32)
            data[pos:pos] = data[pos:pos + n]
        elif op == 4:                             # insert random bytes
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 5 and data:                    # replace CRLF with LF or CR
            i = data.find(b"\r\n", pos)
            if i >= 0:
                data[i:i + 2] = rng.choice((b"\n", b"\r", b"\r\r\n", b"\n\r"))
    return bytes(data)


def mutate_structure(rng, data, seeds):
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    op = rng.randrange(10)
    if op == 0 and lines:                         # request line pieces
        parts = lines[0].split(b" ")
        i = rng.randrange(len(parts))
        parts[i] = rng.choice([b"", b"GET", b"POST", b"HEAD", b"OPTIONS", b"PUT", b"get", b"G\x00T", b"/",
                               b"/score", b"*", b"http://h/score?a=1", b"https://", b"score", b"/swagger.json",
                               b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/1.9", b"HTTP/0.9", b"HTTP/1",
                               b"http/1.1", b"/%00", b"/score?" + b"a" * rng.randint(1, 3000)])
        lines[0] = b" ".join(parts) if rng.random() < 0.8 else b"  ".join(parts)
    elif op == 1:                                 # a header added
        lines.insert(rng.randint(1, len(lines)), rng.choice(HEADERS)(rng))
    elif op == 2 and len(lines) > 1:              # a header removed or duplicated
        i = rng.randrange(1, len(lines))
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
    elif op == 3:                                 # Content-Length variants
        lines = [l for l in lines if not l.lower().startswith(b"content-length")]
        lines.append(b"Content-Length: " + rng.choice(CL_VALUES)(rng, len(body)))
    elif op == 4:                                 # a chunked body
        lines = [l for l in lines if not l.lower().startswith((b"content-length", b"transfer-encoding"))]
        lines.append(b"Transfer-Encoding: " + rng.choice([b"chunked", b"chunked", b"Chunked", b" chunked",
                                                          b"gzip, chunked", b"chunked, gzip", b"identity"]))
        body = chunked(rng, body)
    elif op == 5:                                 # obs-fold / bad white space
        i = rng.randint(1, len(lines))
        lines.insert(i, rng.choice([b" folded", b"\tfolded", b"X-A : b", b"X-A\t: b", b" X-A: b", b"X-A:b\x0b"]))
    elif op == 6:                                 # a huge head
        lines.insert(1, b"X-Big: " + b"v" * rng.choice([60000, 65600, 70000, 200000]))
    elif op == 7:                                 # many headers
        lines[1:1] = [b"X-H%d: %d" % (i, i) for i in range(rng.choice([99, 101, 500]))]
    elif op == 8:                                 # splice another seed's body or head
        other = rng.choice(seeds)[1]
        ohead, _, obody = other.partition(b"\r\n\r\n")
        if rng.random() < 0.5:
            body = obody
        else:
            lines = lines[:1] + ohead.split(b"\r\n")[1:]
    else:                                         # Expect / Connection / Authorization variants
        lines.insert(1, rng.choice([b"Expect: 100-continue", b"Expect: 100-Continue", b"Expect: 200-ok",
                                    b"Connection: close", b"Connection: keep-alive", b"Connection: close, te",
                                    b"Authorization: Bearer " + KEY.encode(), b"Authorization: Bearer",
                                    b"Authorization: Basic eDp5", b"x-request-id: " + b"r" * rng.choice([100, 101]),
                                    b"Origin: http://o.example", b"Host: a", b"Host:"]))
    return b"\r\n".join(lines) + (sep or b"\r\n\r\n") + body


def _hdr(name, values):
    return lambda rng: name + b": " + rng.choice(values)


HEADERS = [
    _hdr(b"Content-Length", [b"0", b"5", b"-1", b"abc", b"1 2", b"5, 5", b"5, 6", b"", b"00000000000000000005"]),
    _hdr(b"Transfer-Encoding", [b"chunked", b"gzip", b"", b"chunked, chunked"]),
    _hdr(b"Host", [b"a", b"", b"a:1", b"[::1]:5001"]),
    _hdr(b"X-Ctl", [b"a\x00b", b"a\x01", b"\x7f", b"\xff\xfe"]),
    _hdr(b"Expect", [b"100-continue"]),
    _hdr(b"Authorization", [b"Bearer " + KEY.encode(), b"Bearer wrong", b"bearer " + KEY.encode()]),
    _hdr(b"Content-Type", [b"application/json", b"text/plain", b""]),
    lambda rng: bytes(rng.choice(b"abcXYZ-_!#$%&'*+.^`|~ @()[]{}/") for _ in range(rng.randint(1, 12))) + b": v",
]

CL_VALUES = [
    lambda rng, n: b"%d" % n,
    lambda rng, n: b"%d" % max(0, n - rng.randint(1, 5)),
    lambda rng, n: b"%d" % (n + rng.randint(1, 5)),
    lambda rng, n: b"%d" % (BODY_LIMIT + 1),
    lambda rng, n: b"%d" % (1 << 62),
    lambda rng, n: b"-%d" % n,
    lambda rng, n: b"+%d" % n,
    lambda rng, n: b"0x%x" % n,
    lambda rng, n: b" %d " % n,
    lambda rng, n: b"%d, %d" % (n, n),
    lambda rng, n: b"%d,%d" % (n, n + 1),
    lambda rng, n: b"1_%d" % n,
    lambda rng, n: b"\xd9\xa1",
]


def chunked(rng, body):
    out = []
    pos = 0
    while pos < len(body):
        n = rng.randint(1, max(1, len(body) - pos))
        ext = rng.choice([b"", b"", b";x=y", b";x", b" ;a=b", b";" + b"e" * 5000])
        size = b"%x" % n
        size = rng.choice([size, size, size.upper(), b"0" + size, b" " + size, size + b" ", b"0x" + size,
                           b"-" + size, b"1" * 17, b""]) if rng.random() < 0.2 else size
        out.append(size + ext + b"\r\n" + body[pos:pos + n] + rng.choice([b"\r\n"] * 8 + [b"", b"\n", b"X\r\n"]))
        pos += n
    out.append(rng.choice([b"0\r\n\r\n", b"0\r\n\r\n", b"0\r\nTrailer: t\r\n\r\n", b"0\r\nbad trailer\r\n\r\n",
                           b"0\r\n", b"0\n\n", b"00000\r\n\r\n", b"0;ext\r\n\r\n"]))
    return b"".join(out)


def generate(rng):
    """A request built from scratch (valid-ish), sometimes large."""
    method = rng.choice([b"GET", b"POST", b"POST", b"HEAD", b"OPTIONS", b"DELETE"])
    target = rng.choice([b"/", b"/score", b"/score?x=1&y=%20", b"/swagger.json", b"/swagger.json?version=3",
                         b"/nope", b"http://localhost:5001/score"])
    lines = [method + b" " + target + b" " + rng.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])]
    if rng.random() < 0.8:
        lines.append(b"Authorization: Bearer " + KEY.encode())
    body = bytes(rng.randrange(32, 127) for _ in range(rng.choice([0, 1, 10, 1000]))) * rng.choice([1, 1, 100, 2000])
    if body and rng.random() < 0.3:
        lines.append(b"Transfer-Encoding: chunked")
        body = chunked(rng, body)
    elif body or rng.random() < 0.5:
        lines.append(b"Content-Length: %d" % len(body))
    for _ in range(rng.randint(0, 4)):
        lines.append(rng.choice(HEADERS)(rng))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


SMALL_BODY = 64 * 1024  # bodies of refused requests up to this are skipped (keep-alive), larger ones close


BIG_SIZES = [65534, 65536, 200000, 1 << 20, 4000000]


def generate_valid(rng, big=False):
    """A well-formed request and the status the server must answer, and whether it then closes. With
    big, one that asks run() for a big response (of that size if big is a number; often on a connection
    that closes after it)."""
    path = "/score" if big else rng.choice(["/", "/score", "/swagger.json", "/nope"])
    method = "POST" if big else rng.choice({"/": ["GET", "HEAD", "OPTIONS", "POST"],
                                            "/score": ["POST", "POST", "GET", "OPTIONS", "PUT"],
                                            "/swagger.json": ["GET", "HEAD", "POST"], "/nope": ["GET", "POST"]}[path])
    target = path + rng.choice(["", "", "?a=1", "?version=3"])
    if rng.random() < 0.1:
        target = "http://localhost:5001" + target
    version = "HTTP/1.0" if rng.random() < (0.3 if big else 0.1) else "HTTP/1.1"
    lines = ["%s %s %s" % (method, target, version), "Host: localhost:5001"]
    key = big or rng.random() < 0.8
    if key:
        lines.append("Authorization: Bearer " + KEY)
    close = version == "HTTP/1.0"
    if version == "HTTP/1.0" and rng.random() < 0.5:
        lines.append("Connection: keep-alive")
        close = False
    elif rng.random() < (0.3 if big else 0.05):
        lines.append("Connection: close")
        close = True
    if rng.random() < 0.3:
        lines.append("x-request-id: gen-%d" % rng.randrange(1000))
    reads_body = path == "/score" and method in ("GET", "POST") and key
    size = rng.choice([0, 0, 1, 100, 5000, SMALL_BODY, SMALL_BODY + 1, 300000, BODY_LIMIT, BODY_LIMIT + 1])
    if not reads_body:
        size = min(size, SMALL_BODY)
    unit = b"%d," % rng.randrange(10 ** 6)
    body = (unit * (size // len(unit) + 1))[:size]
    failing = False
    if reads_body and method == "POST" and (big or rng.random() < 0.15):
        # run() answers big (also on connections that close after it), or fails (sys.exit, KeyboardInterrupt)
        if big or rng.random() < 0.7:
            body = b"big:%d" % (big if big is not True else rng.choice(BIG_SIZES))
        else:
            body = rng.choice([b"exit", b"interrupt"])
            failing = True
        size = len(body)
    chunk = version == "HTTP/1.1" and size and rng.random() < 0.3 and (reads_body or rng.random() < 0.2)
    if chunk:
        lines.append("Transfer-Encoding: chunked")
        payload = chunked_valid(rng, body)
    elif size or method == "POST":
        lines.append("Content-Length: %d" % size)
        payload = body
    else:
        payload = b""
    if path == "/":
        status = 200 if method != "POST" else 405
    elif path == "/score":
        status = (200 if key else 401) if method in ("GET", "POST") else (200 if method == "OPTIONS" else 405)
    elif path == "/swagger.json":
        status = (200 if key else 401) if method in ("GET", "HEAD") else 405
    else:
        status = 404
    if failing:
        status = 500
    if reads_body and size > BODY_LIMIT:
        status, close = 413, True
    elif chunk and not reads_body:
        close = True  # a refused request's chunked body is not read: the connection closes
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    return data, status, close


def chunked_valid(rng, body):
    out = []
    pos = 0
    while pos < len(body):
        n = rng.randint(1, max(1, min(len(body) - pos, rng.choice([1, 10, 1000, 1 << 20]))))
        out.append(b"%x%s\r\n" % (n, rng.choice([b"", b";ext=1"])) + body[pos:pos + n] + b"\r\n")
        pos += n
    out.append(rng.choice([b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n"]))
    return b"".join(out)


def split(rng, data):
    """The data cut into 1..8 pieces (partial sends), sometimes one byte at a time for a short request."""
    if len(data) <= 200 and rng.random() < 0.05:
        return [data[i:i + 1] for i in range(len(data))]
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(0, 7)))
    pieces = []
    prev = 0
    for c in cuts + [len(data)]:
        if c > prev:
            pieces.append(data[prev:c])
            prev = c
    return pieces or [data]


# ---- main ------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--cases", type=int, default=0, help="stop after this many cases (default: no limit)")
    ap.add_argument("--corpus", default=CORPUS, help="seed directory (default fuzz/python/corpus)")
    ap.add_argument("--out", help="where failing inputs are written (default: a new temp directory)")
    ap.add_argument("--replay", nargs="*", help="send these files (each one case) instead of fuzzing")
    ap.add_argument("--assets", help="the Python assets directory to run (default: this checkout's)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.assets:
        _support.ASSETS = os.path.abspath(args.assets)
    fz = Fuzzer(args)
    t0 = time.monotonic()
    try:
        fz.start()
        if args.replay:
            fails = []
            for path in args.replay:
                try:
                    fz.replay(path)
                except CaseFailure as e:
                    with open(path, "rb") as f:
                        data = f.read()
                    meta = {}
                    if os.path.exists(path + ".json"):
                        with open(path + ".json") as f:
                            meta = json.load(f)
                    fails.append((path, data, str(e), meta))
        else:
            fails = fz.run()
    finally:
        fz.stop()
    print("fuzz_http: %d case(s) in %.1f s, seed %d: %d failure(s)" % (fz.cases, time.monotonic() - t0, args.seed,
                                                                      len(fails)))
    if fails:
        out = args.out or tempfile.mkdtemp(prefix="amlc-fuzz-")
        for (name, _, msg, _), path in zip(fails, write_failures(out, fails)):
            print("FAIL %s\n%s\n  input: %s (replay: %s --replay %s)" % (name, msg, path, sys.argv[0], path))
        return 1
    return 0


def write_failures(out, fails):
    """Writes each failure as FILE (the bytes sent, a concurrent case's connections one after the other)
    and FILE.json (how: the pieces, the expected statuses, the connections, read_delay, abandon) for
    --replay; returns the FILEs."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for i, (_, data, _, meta) in enumerate(fails):
        path = os.path.join(out, "failure-%d.http" % i)
        with open(path, "wb") as f:
            f.write(data)
        with open(path + ".json", "w") as f:
            json.dump(meta, f)
        paths.append(path)
    return paths


if __name__ == "__main__":
    sys.exit(main())
