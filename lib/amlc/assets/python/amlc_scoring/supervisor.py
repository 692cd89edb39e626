"""Worker supervision of the scoring server: the supervisor process forks WORKER_COUNT workers
(worker.worker_main in the child), restarts one that exits, replaces them all on SIGHUP (each drains
first), kills one stuck in run() past SCORING_TIMEOUT_MS + AMLC_TIMEOUT_GRACE_MS, and stops them on
SIGTERM/SIGINT. It holds a duplicate of every connection a worker accepted (sent over the worker's socket
pair), so it can answer the request a worker was running (recorded in its shared-memory slot) when that
worker died or had to be killed, instead of leaving the client with a reset. It exits 3 when a worker
fails to start (init() raised)."""

import os
import select
import signal
import socket
import sys
import time

from amlc_scoring.app import UNEXPECTED, log, log_err
from amlc_scoring.connection import LINGER_IDLE
from amlc_scoring.responses import RUN_FAILED, closing_json, message, timeout_message
from amlc_scoring.slots import Slots, receive
from amlc_scoring.worker import worker_main


class Supervisor:
    """Forks and watches the workers; holds a duplicate of each connection a worker accepted, so that it
    can answer the request a worker was running when that worker died or had to be killed."""

    def __init__(self, cfg, keys, lsock):
        self.cfg = cfg
        self.keys = keys
        self.lsock = lsock
        self.slots = Slots(cfg.workers)
        self.pids = {}  # pid -> slot
        self.slot_pids = [0] * cfg.workers
        self.chans = [None] * cfg.workers       # our end of each worker's socket pair
        self.held = [{} for _ in range(cfg.workers)]  # per slot: token -> fd of our duplicate
        self.killed = {}                        # pid -> the run() start it was killed for
        self.retiring = {}                      # pid -> when to kill it: told to drain (SIGHUP)
        self.lingering = []                     # [socket, deadline]: answered, draining before close
        self.all_ready = False
        self.wake_r = self.wake_w = -1

    def _spawn(self, slot):
        self.slots.clear(slot)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        # Our signal handlers must not run in the child: it resets them, then unblocks.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                for fd in (self.wake_r, self.wake_w):
                    if fd >= 0:
                        os.close(fd)
                ours.close()
                for c in self.chans:
                    if c is not None:
                        c.close()
                for held in self.held:
                    for fd in held.values():
                        os.close(fd)
                for s, _ in self.lingering:
                    s.close()
                theirs.setblocking(False)
            except BaseException:
                os._exit(3)
            worker_main(self.cfg, self.keys, self.slots, slot, self.lsock, theirs)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        theirs.close()
        ours.setblocking(False)
        self.chans[slot] = ours
        self.pids[pid] = slot
        self.slot_pids[slot] = pid
        return pid

    def run(self):
        cfg = self.cfg
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)  # none lost while the handlers are set up
        for sig in _WATCHED:
            signal.signal(sig, lambda signum, frame: None)  # the wakeup fd says which
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for slot in range(cfg.workers):
            self._spawn(slot)
        hard_limit = (cfg.timeout_ms + cfg.grace_ms) / 1000.0 if cfg.timeout_ms else 0
        drain_limit = (cfg.timeout_ms + cfg.grace_ms) / 1000.0
        while True:
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            for c in self.chans:
                if c is not None:
                    poller.register(c.fileno(), select.POLLIN)
            for s, _ in self.lingering:
                poller.register(s.fileno(), select.POLLIN)
            try:
                ready = poller.poll(200)
            except InterruptedError:
                ready = []
            signals = set()
            for fd, _ in ready:
                if fd == self.wake_r:
                    try:
                        signals.update(os.read(self.wake_r, 64))
                    except (BlockingIOError, InterruptedError):
                        pass
            if signal.SIGTERM in signals or signal.SIGINT in signals:
                sig = signal.SIGTERM if signal.SIGTERM in signals else signal.SIGINT
                log("received signal %d; stopping %d worker(s)" % (sig, len(self.pids)))
                return self._stop(0)
            if signal.SIGHUP in signals:
                log("SIGHUP: replacing the workers (each finishes the requests it has)")
                deadline = time.monotonic() + drain_limit
                for pid in list(self.pids):
                    _kill(pid, signal.SIGTERM)  # a ready worker drains; one still starting just stops
                    self.retiring.setdefault(pid, deadline)
            if self.retiring:
                now = time.monotonic()
                for pid, deadline in list(self.retiring.items()):
                    if now > deadline and pid in self.pids:
                        log_err("worker pid %d did not drain in %.0f ms; killing it" % (pid, drain_limit * 1000))
                        _kill(pid, signal.SIGKILL)
                        self.retiring[pid] = float("inf")
            for slot in range(cfg.workers):
                self._drain(slot)
            self._linger()
            code = self._reap()
            if code is not None:
                return code
            if not self.all_ready and all(self.slots.ready(s) for s in range(cfg.workers)):
                self.all_ready = True
                log("ready: http://%s:%d/score (%d worker(s), entry script %s)"
                    % (cfg.host, cfg.port, cfg.workers, cfg.entry_script))
            if hard_limit:
                now = time.monotonic()
                for slot, pid in enumerate(self.slot_pids):
                    started = self.slots.busy_since(slot)
                    if pid and started and now - started > hard_limit and pid not in self.killed:
                        log_err("worker %d (pid %d) is stuck in run() for %.0f ms; killing and replacing it"
                                % (slot, pid, (now - started) * 1000.0))
                        self.killed[pid] = started
                        _kill(pid, signal.SIGKILL)

    def _drain(self, slot):
        """Reads a worker's messages: connections it accepted (we keep a duplicate) and closed."""
        chan = self.chans[slot]
        if chan is None:
            return
        held = self.held[slot]
        while True:
            got = receive(chan)
            if got is None:
                return
            kind, tokens, fds = got
            if kind == b"A" and tokens and fds:
                old = held.get(tokens[0])
                if old is not None:
                    os.close(old)
                held[tokens[0]] = fds.pop(0)
            elif kind == b"C":
                for token in tokens:
                    fd = held.pop(token, None)
                    if fd is not None:
                        os.close(fd)
            for fd in fds:
                os.close(fd)

    def _answer(self, slot, pid):
        """A worker died: answer the request it was running, if any (and if we hold its connection)."""
        started = self.slots.busy_since(slot)
        killed_for = self.killed.pop(pid, None)
        if not started:
            return
        token, lines = self.slots.recorded_request(slot)
        fd = self.held[slot].pop(token, None)
        if fd is None:
            return
        if killed_for == started:
            body = timeout_message(self.cfg.timeout_ms)
        else:
            body = message(UNEXPECTED)
        data = closing_json(500, body, lines + ("%s: %s\r\n" % RUN_FAILED).encode("latin-1"))
        s = socket.socket(fileno=fd)
        try:
            s.setblocking(False)
            s.send(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            s.close()
            return
        self.lingering.append([s, time.monotonic() + LINGER_IDLE])

    def _linger(self):
        """Drains (and then closes) the connections we answered, so the client gets the answer, not a reset."""
        if not self.lingering:
            return
        now = time.monotonic()
        keep = []
        for item in self.lingering:
            s, deadline = item
            done = now > deadline
            while not done:
                try:
                    if not s.recv(65536):
                        done = True
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    done = True
            if done:
                s.close()
            else:
                keep.append(item)
        self.lingering = keep

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            slot = self.pids.pop(pid, None)
            if slot is None:
                continue  # an orphan we adopted (PID 1 in a container)
            self.slot_pids[slot] = 0
            self._drain(slot)
            self._answer(slot, pid)
            for fd in self.held[slot].values():
                os.close(fd)
            self.held[slot] = {}
            self.chans[slot].close()
            self.chans[slot] = None
            ready = self.slots.ready(slot)
            desc = ("exit code %d" % os.WEXITSTATUS(status)) if os.WIFEXITED(status) \
                else ("signal %d" % os.WTERMSIG(status))
            if self.retiring.pop(pid, None) is not None:
                # we stopped it ourselves (SIGHUP), ready or not
                log("worker %d (pid %d) replaced (%s); starting a new one" % (slot, pid, desc))
                self._spawn(slot)
                continue
            if not ready:
                log_err("worker %d (pid %d) failed to start (%s); stopping the server" % (slot, pid, desc))
                self._stop(None)
                return 3
            log_err("worker %d (pid %d) exited (%s); starting a new one" % (slot, pid, desc))
            self._spawn(slot)

    def _stop(self, code):
        for pid in list(self.pids):
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.02)
                continue
            self.pids.pop(pid, None)
        for pid in list(self.pids):
            _kill(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        return code


_WATCHED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
