"""amlc scoring server: `python3 -m amlc_scoring.server` (configured by environment variables, see
README.md). This module is the entry point: it reads the configuration, binds the port and hands over to
the supervisor.

Process model: a supervisor process binds the listening socket and forks WORKER_COUNT workers. Each
worker loads the entry script, calls init() once, then listens on the shared socket and serves HTTP/1.1
(keep-alive, pipelining) from a single-threaded epoll loop; run() executes in that thread, bounded by
SIGALRM. The workers wait for connections with EPOLLEXCLUSIVE, so the kernel wakes one worker that is
waiting in epoll, never one busy in run(): a slow or stuck run() does not hold up new connections while
another worker is idle. A worker that accepted goes to the end of the queue: idle workers take turns.

Each worker hands the supervisor a duplicate of every connection it accepts (SCM_RIGHTS over a socket
pair) and tells it which connection and request it is running (shared memory). When a worker stays in
run() past SCORING_TIMEOUT_MS + AMLC_TIMEOUT_GRACE_MS (stuck in C code that never returns to Python's
signal handlers) the supervisor kills it, answers that request itself (500 "Scoring timeout after N ms",
as the SIGALRM path does; 500 with the usual message when a worker dies in run()), and starts a new
worker. The supervisor exits non-zero when a worker fails to start (init() raised).

Modules: app (configuration, keys, entry script, logging), protocol (request parsing), supervisor (the
workers' life cycle), slots (what a worker shares with the supervisor), worker (a worker's event loop and
its connections), connection (a connection's state, request-memory budgets), httpio (HTTP on a
connection), routes (what is answered from the request head), scoring (calling run()), responses (status
lines, error bodies).
"""

import os
import socket
import sys

from amlc_scoring.app import Config, ConfigError, Keys, log, log_err
from amlc_scoring.supervisor import Supervisor


def _bind(cfg):
    """The listening socket, bound (not listening yet: the first ready worker listens); resolves port 0."""
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cfg.host, cfg.port))
        s.setblocking(False)
        cfg.port = s.getsockname()[1]
    except BaseException:
        s.close()
        raise
    return s


def _tune_malloc():
    """Request bodies are big, short-lived buffers: have glibc map anything from 1 MiB up separately
    (and unmap it when freed) instead of raising its mmap threshold after the first big free, after which
    freed bodies of up to 32 MiB stay in the heap and count in the worker's RSS."""
    try:
        import ctypes
        ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (a fixed one also fixes the trim threshold)
    except (OSError, AttributeError):
        pass


def _raise_fd_limit(cfg):
    """The supervisor holds a descriptor per open connection of every worker (a worker one per
    connection): raise the soft limit to what AMLC_MAX_CONNECTIONS per worker needs, no further."""
    need = cfg.workers * (cfg.max_connections + 32) + 256
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < need:
            log_err("the open-file limit (%d) is below what %d worker(s) x AMLC_MAX_CONNECTIONS=%d need (%d): "
                    "connections past it wait" % (hard, cfg.workers, cfg.max_connections, need))
            need = hard
        if soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ImportError, ValueError, OSError):
        pass


def main():
    try:
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    try:
        cfg = Config()
        keys = Keys(cfg.keys_file) if cfg.keys_file else None
        if cfg.model_dir:
            os.environ["AZUREML_MODEL_DIR"] = cfg.model_dir
        os.environ["AML_APP_ROOT"] = cfg.app_root
        if os.path.isdir(cfg.app_root):
            os.chdir(cfg.app_root)
            if cfg.app_root not in sys.path:
                sys.path.insert(0, cfg.app_root)
        try:
            lsock = _bind(cfg)
        except OSError as e:
            raise ConfigError("cannot listen on %s:%d: %s" % (cfg.host, cfg.port, e)) from None
    except ConfigError as e:
        log_err("error: %s" % e)
        return 2
    _raise_fd_limit(cfg)
    _tune_malloc()
    log("amlc scoring server starting: entry script %s, %d worker(s), port %d, scoring timeout %d ms, auth %s, "
        "body limit %d bytes, peers %s" % (cfg.entry_script, cfg.workers, cfg.port, cfg.timeout_ms,
                                           "on" if keys else "off", cfg.max_body,
                                           cfg.allowed_peers.describe() if cfg.allowed_peers else "any"))
    return Supervisor(cfg, keys, lsock).run()


if __name__ == "__main__":
    sys.exit(main())
