"""Run helper for training scripts: metrics and tags recorded for amlc runs and sweeps.

    from amlc import run
    run.log("accuracy", 0.91)
    run.log_list("losses", [0.5, 0.3])
    run.log_row("roc", fpr=0.1, tpr=0.8)
    run.tag("framework", "sklearn")
    run.get_metrics()            # {"accuracy": 0.91, "losses": [0.5, 0.3], "roc": {"fpr": 0.1, "tpr": 0.8}}
    run.id, run.experiment, run.outputs_dir

Under amlc (AMLC_METRICS_FILE set) every call appends one JSON line to that file (O_APPEND, one write
per line, so concurrent writers never interleave):
    {"name": str, "value": number|string|list|object, "kind": "scalar"|"list"|"row", "time": unix float}
    {"kind": "tag", "name": key, "value": str, "time": unix float}
Offline (no AMLC_METRICS_FILE) values are printed as `name=value` and kept in memory.
NaN and infinities are recorded as the strings "NaN", "Infinity", "-Infinity" (the file is strict JSON).
"""

import json
import math
import os
import sys
import threading
import time
import uuid

__all__ = ["log", "log_list", "log_row", "log_table", "tag", "set_tags", "get_tags", "get_metrics",
           "id", "experiment", "outputs_dir"]

_lock = threading.Lock()
_fd = None
_fd_path = None
_fd_pid = None
_memory = []          # offline records
_offline_id = None


def _metrics_path():
    return os.environ.get("AMLC_METRICS_FILE") or None


def __getattr__(attr):  # module attributes read from the environment at access time
    if attr == "id":
        return _run_id()
    if attr == "experiment":
        return os.environ.get("AMLC_EXPERIMENT") or "offline"
    if attr == "outputs_dir":
        return os.environ.get("AMLC_OUTPUTS_DIR") or "outputs"
    raise AttributeError("module 'amlc.run' has no attribute %r" % attr)


def _run_id():
    global _offline_id
    rid = os.environ.get("AMLC_RUN_ID")
    if rid:
        return rid
    if _offline_id is None:
        _offline_id = "OfflineRun_" + str(uuid.uuid4())
    return _offline_id


def _plain(value):
    """A JSON-friendly copy: numpy-like values via tolist()/item(), NaN/inf as strings."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    for conv in ("tolist", "item"):
        f = getattr(value, conv, None)
        if callable(f):
            return _plain(f())
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return _plain(float(value))
    except (TypeError, ValueError):
        return str(value)


def _check_name(name, what="name"):
    if not isinstance(name, str) or not name:
        raise ValueError("metric %s must be a non-empty string, got %r" % (what, name))


def _record(kind, name, value):
    rec = {"name": name, "value": value, "kind": kind, "time": time.time()}
    path = _metrics_path()
    if path is None:
        with _lock:
            _memory.append(rec)
        if kind == "tag":
            shown = value
        elif kind == "scalar" and not isinstance(value, (dict, list)):
            shown = value
        else:
            shown = json.dumps(value)
        sys.stdout.write("%s%s=%s\n" % ("tag:" if kind == "tag" else "", name, shown))
        sys.stdout.flush()
        return
    if kind == "tag":
        rec = {"kind": "tag", "name": name, "value": value, "time": rec["time"]}
    line = (json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
    _write(path, line)


def _write(path, data):
    global _fd, _fd_path, _fd_pid
    with _lock:
        if _fd is None or _fd_path != path or _fd_pid != os.getpid():
            if _fd is not None and _fd_pid == os.getpid():
                try:
                    os.close(_fd)
                except OSError:
                    pass
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            _fd_path = path
            _fd_pid = os.getpid()
        fd = _fd
    view = memoryview(data)
    while view:  # one write for any sane line; loop only on a short write
        n = os.write(fd, view)
        view = view[n:]


def log(name, value, description=""):
    """Logs a scalar (number, string or bool); several calls with one name make a series."""
    _check_name(name)
    _record("scalar", name, _plain(value))


def log_list(name, value, description=""):
    """Logs a list of values."""
    _check_name(name)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError("log_list(%r): value must be a list of values, got %s" % (name, type(value).__name__))
    _record("list", name, _plain(list(value)))


def log_row(name, description=None, **kwargs):
    """Logs one row of a table: log_row("roc", fpr=0.1, tpr=0.8)."""
    _check_name(name)
    _record("row", name, _plain(dict(kwargs)))


def log_table(name, value, description=""):
    """Logs a table given as {column: [values]}: one row record per row."""
    _check_name(name)
    if not isinstance(value, dict):
        raise ValueError("log_table(%r): value must be a dict of column -> list of values" % name)
    cols = {str(k): list(v) for k, v in value.items()}
    n = max((len(v) for v in cols.values()), default=0)
    for i in range(n):
        _record("row", name, _plain({k: v[i] for k, v in cols.items() if i < len(v)}))


def tag(key, value=None):
    """Sets a tag (value stored as a string; None -> "")."""
    _check_name(key, "tag key")
    _record("tag", key, "" if value is None else str(value))


def set_tags(tags):
    for k, v in dict(tags).items():
        tag(k, v)


def _records():
    path = _metrics_path()
    if path is None:
        with _lock:
            return list(_memory)
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(rec, dict) and isinstance(rec.get("name"), str):
            out.append(rec)
    return out


def get_metrics(name=None):
    """{name: value} for metrics logged once, {name: [values]} for series and lists, and for rows
    {column: value} (one row) or {column: [values]} (several rows)."""
    values = {}
    acc = {}       # name -> every value, lists flattened
    scalars = {}   # name -> number of scalar records (a single scalar is returned as is)
    rows = {}
    for rec in _records():
        kind = rec.get("kind")
        n = rec["name"]
        if kind == "tag" or (name is not None and n != name):
            continue
        v = rec.get("value")
        values.setdefault(n, None)  # keeps first-logged order
        if kind == "row":
            rows.setdefault(n, []).append(v if isinstance(v, dict) else {"value": v})
        elif kind == "list":
            acc.setdefault(n, []).extend(v if isinstance(v, list) else [v])
            scalars[n] = 2
        else:
            acc.setdefault(n, []).append(v)
            scalars[n] = scalars.get(n, 0) + 1
    for n, vs in acc.items():
        values[n] = vs[0] if scalars.get(n) == 1 else vs
    for n, rs in rows.items():
        if len(rs) == 1:
            values[n] = rs[0]
        else:
            cols = []
            for r in rs:
                for k in r:
                    if k not in cols:
                        cols.append(k)
            values[n] = {k: [r.get(k) for r in rs] for k in cols}
    return values


def get_tags():
    tags = {}
    for rec in _records():
        if rec.get("kind") == "tag":
            tags[rec["name"]] = rec.get("value")
    return tags


def _reset_offline():
    """For tests: forget in-memory records and the cached file descriptor."""
    global _fd, _fd_path, _fd_pid, _offline_id
    with _lock:
        _memory.clear()
        if _fd is not None and _fd_pid == os.getpid():
            try:
                os.close(_fd)
            except OSError:
                pass
        _fd = _fd_path = _fd_pid = None
        _offline_id = None
