"""Helpers for the Python asset tests: run the scoring server as a subprocess on 127.0.0.1."""

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.normpath(os.path.join(HERE, "..", "..", "lib", "amlc", "assets", "python"))


def python_env(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ASSETS + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for k in ("AMLC_METRICS_FILE", "AMLC_RUN_ID", "AMLC_EXPERIMENT", "AMLC_OUTPUTS_DIR", "AZUREML_MODEL_DIR",
              "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT", "AMLC_AUTH_KEYS_FILE", "WORKER_COUNT", "SCORING_TIMEOUT_MS",
              "AZUREML_LOG_LEVEL", "AML_CORS_ORIGINS", "AMLC_MAX_BODY_BYTES", "AMLC_TIMEOUT_GRACE_MS",
              "AMLC_KEEPALIVE_S", "AMLC_PORT", "AMLC_HOST", "AMLC_MAX_CONNECTIONS", "AMLC_ALLOWED_PEERS"):
        env.pop(k, None)
    if extra:
        env.update(extra)
    return env


def wait_for(cond, timeout=15.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def json(self):
        import json
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class Server:
    """A scoring server on 127.0.0.1:<free port> with an entry script written into a temp app root."""

    def __init__(self, script, files=None, env=None, workers=1, wait=True):
        self.root = tempfile.mkdtemp(prefix="amlc-scoring-test-")
        with open(os.path.join(self.root, "score.py"), "w") as f:
            f.write(textwrap.dedent(script))
        for rel, content in (files or {}).items():
            p = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb" if isinstance(content, bytes) else "w") as f:
                f.write(content)
        # Port 0: the server binds a free port itself and names it in its start-up line (a port picked
        # here and closed again could be taken by another process before the server binds it).
        self._port = None
        extra = {"AML_APP_ROOT": self.root, "AZUREML_ENTRY_SCRIPT": "score.py", "AMLC_PORT": "0",
                 "AMLC_HOST": "127.0.0.1", "WORKER_COUNT": str(workers)}
        extra.update(env or {})
        self.out_path = os.path.join(self.root, "stdout.log")
        self.err_path = os.path.join(self.root, "stderr.log")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "amlc_scoring.server"], cwd=self.root,
                                     env=python_env(extra), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        self.conn = None
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise

    @property
    def port(self):
        """The port the server bound (from its start-up line)."""
        if self._port is None:
            def started():
                m = re.search(r"amlc scoring server starting: .*, port (\d+),", self.logs()[0])
                if m:
                    return int(m.group(1))
                if self.proc.poll() is not None:
                    out, err = self.logs()
                    raise AssertionError("server exited with %s before binding its port\nstdout:\n%s\nstderr:\n%s"
                                         % (self.proc.returncode, out, err))
                return None
            self._port = wait_for(started, 60, what="the server's start-up line (its port)")
        return self._port

    def logs(self):
        with open(self.out_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        with open(self.err_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        return out, err

    def wait_ready(self, timeout=60.0):
        def ready():
            if self.proc.poll() is not None:
                out, err = self.logs()
                raise AssertionError("server exited with %s\nstdout:\n%s\nstderr:\n%s" % (self.proc.returncode, out, err))
            try:
                return self.request("GET", "/", fresh=True).status == 200
            except OSError:
                return False
        wait_for(ready, timeout, what="the scoring server to answer GET /")

    def request(self, method, path, body=None, headers=None, fresh=False, timeout=30.0):
        """One request; keeps a keep-alive connection unless fresh=True."""
        if fresh or self.conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            conn = self.conn
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            if not fresh:
                self.conn = None
            raise
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        if fresh:
            conn.close()
        else:
            self.conn = conn
        return resp

    def stop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def raw_exchange(port, data, read_until_close=False, timeout=30.0, expect_responses=1):
    """Sends raw bytes and returns what the server answered (until close or N complete responses)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            if not read_until_close and _complete_responses(buf) >= expect_responses:
                break
        return buf
    finally:
        s.close()


def _complete_responses(buf):
    n = 0
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = buf[pos:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if head.startswith("http/1.1 100"):
            pos = end + 4
            continue
        if len(buf) < end + 4 + length:
            return n
        n += 1
        pos = end + 4 + length


def read_response(sock, timeout=30.0):
    """Reads one HTTP response (skipping 100 Continue) from a socket: (status, headers, body, rest) or None
    when the server closed before a complete response."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if status == 100:
                buf = buf[end + 4:]
                continue
            length = int(headers.get("content-length", "0"))
            if len(buf) >= end + 4 + length:
                return status, headers, buf[end + 4:end + 4 + length], buf[end + 4 + length:]
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no complete response within %.1f s (got %r)" % (timeout, buf[:300]))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk


def stream_request(port, head, total, piece=b"x" * (1 << 20), timeout=60.0):
    """Sends a request head, then up to `total` body bytes (`piece` over and over) while watching for the
    answer, as a well-behaved client does. Returns (status or None when the connection was closed or reset
    without an answer, body bytes sent, response body)."""
    import select
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    chunk = len(piece)
    sent = 0
    buf = b""
    try:
        s.sendall(head)
        s.setblocking(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            want_w = [s] if sent < total else []
            r, w, _ = select.select([s], want_w, [], 1.0)
            if r:
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    return None, sent, b""
                if data == b"":
                    break
                if data:
                    buf += data
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0 and not buf.startswith(b"HTTP/1.1 100"):
                        length = 0
                        for line in buf[:end].decode("latin-1").split("\r\n")[1:]:
                            if line.lower().startswith("content-length:"):
                                length = int(line.split(":", 1)[1])
                        if len(buf) >= end + 4 + length:
                            return int(buf.split(b" ", 2)[1]), sent, buf[end + 4:end + 4 + length]
                    elif end >= 0:
                        buf = buf[end + 4:]
            if w:
                try:
                    off = sent % chunk
                    sent += s.send(piece[off:off + min(chunk - off, total - sent)])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    want_w = []
                    total = sent  # the server closed its side: read what it answered
        return None, sent, b""
    finally:
        s.close()


def children(pid):
    """Child process ids of pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return out


def vm_kb(pid, field):
    """A /proc/PID/status memory figure (VmRSS, VmHWM) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))
