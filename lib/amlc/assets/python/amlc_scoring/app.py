"""Configuration of the amlc scoring server (the environment, AMLC_ALLOWED_PEERS), the auth keys file, the
entry script (loading it, how run() wants to be called), logging, and the request size limits."""

import hmac
import importlib.util
import inspect
import ipaddress
import json
import os
import sys
import time
import traceback

DEFAULT_MAX_BODY = 100 * 1024 * 1024  # AMLC_MAX_BODY_BYTES when unset (Azure ML's 100 MB payload limit)
MAX_HEAD = 64 * 1024
MAX_REQUEST_ID = 100
# The body of a refused request (401, 404, 405) up to this size is read and dropped (the connection stays
# open); a larger one closes the connection after the answer.
SMALL_BODY = 64 * 1024
# What a worker holds of the requests it reads (see httpio.HttpIO): each connection up to FREE_INPUT
# bytes (head and body) on its own, so that ordinary requests never wait; a head past that takes
# MAX_HEAD from the worker's head budget, a body past it takes its size from the body budget (at least
# the body limit, so any allowed body fits). A connection whose request does not fit waits, unread (its
# client is throttled by TCP), until the requests before it were answered.
FREE_INPUT = 8 * 1024
HEAD_BUDGET = 2 * 1024 * 1024
MIN_BODY_BUDGET = 8 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 1024  # AMLC_MAX_CONNECTIONS (per worker) when unset
# A request must make progress (head or body bytes) at least this often, and its head must be complete
# this long after its first byte: else 408 and close (bounded by AMLC_KEEPALIVE_S).
REQUEST_IDLE_S = 30

UNEXPECTED = "An unexpected error occurred in scoring script. Check the logs for more info."


class ConfigError(Exception):
    """Bad server configuration (environment); the server prints it and exits 2."""


def _env_int(env, name, default, minimum):
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError("%s must be an integer, got %r" % (name, raw)) from None
    if value < minimum:
        raise ConfigError("%s must be >= %d, got %d" % (name, minimum, value))
    return value


class Config:
    """The server settings, read from the environment (see README.md)."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.app_root = os.path.abspath(env.get("AML_APP_ROOT") or "/var/azureml-app")
        self.port = _env_int(env, "AMLC_PORT", 5001, 0)
        if self.port > 65535:
            raise ConfigError("AMLC_PORT must be <= 65535, got %d" % self.port)
        self.host = env.get("AMLC_HOST") or "0.0.0.0"
        self.workers = _env_int(env, "WORKER_COUNT", 1, 1)
        self.timeout_ms = _env_int(env, "SCORING_TIMEOUT_MS", 60000, 0)
        # Extra time a worker stuck in run() (e.g. in C code that never checks signals) gets after the
        # timeout before the supervisor kills and replaces it.
        self.grace_ms = _env_int(env, "AMLC_TIMEOUT_GRACE_MS", 5000, 0)
        self.keepalive_s = _env_int(env, "AMLC_KEEPALIVE_S", 65, 1)
        self.max_body = _env_int(env, "AMLC_MAX_BODY_BYTES", DEFAULT_MAX_BODY, 1)
        self.max_connections = _env_int(env, "AMLC_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1)
        self.allowed_peers = parse_allowed_peers(env.get("AMLC_ALLOWED_PEERS"))
        self.keys_file = env.get("AMLC_AUTH_KEYS_FILE") or None
        origins = env.get("AML_CORS_ORIGINS") or ""
        self.cors_origins = [o.strip() for o in origins.split(",") if o.strip()]
        level = (env.get("AZUREML_LOG_LEVEL") or "INFO").strip().upper()
        self.debug = level == "DEBUG"
        self.entry_script = self._resolve_entry(env.get("AZUREML_ENTRY_SCRIPT") or "")
        model_dir = env.get("AZUREML_MODEL_DIR")
        self.model_dir = None
        if model_dir:
            self.model_dir = model_dir if os.path.isabs(model_dir) else os.path.join(self.app_root, model_dir)

    def _resolve_entry(self, entry):
        if not entry:
            candidates = [os.path.join(self.app_root, "main.py")]
        elif os.path.isabs(entry):
            candidates = [entry]
        else:
            candidates = [os.path.join(self.app_root, entry), os.path.abspath(entry)]
        for c in candidates:
            if os.path.isfile(c):
                return c
        what = "AZUREML_ENTRY_SCRIPT=%s" % entry if entry else "main.py (AZUREML_ENTRY_SCRIPT is not set)"
        raise ConfigError("entry script not found: %s; looked at %s" % (what, ", ".join(candidates)))

    def cors_allow(self, origin):
        if not origin or not self.cors_origins:
            return None
        if "*" in self.cors_origins:
            return "*"
        return origin if origin in self.cors_origins else None


ROUTE_FILE = "/proc/net/route"
ROUTE6_FILE = "/proc/net/ipv6_route"
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def parse_allowed_peers(value, route_file=ROUTE_FILE, route6_file=ROUTE6_FILE):
    """AMLC_ALLOWED_PEERS: None (every peer) when unset or blank, else the AllowedPeers of a
    comma-separated list of IP addresses, CIDRs (IPv4 or IPv6) and the word `gateway` (the loopback
    networks and the default gateways of route_file/route6_file). Raises ConfigError."""
    value = (value or "").strip()
    if not value:
        return None
    nets = []
    for item in value.split(","):
        item = item.strip()
        try:
            if not item:
                raise ValueError("an empty item")
            if item.lower() == "gateway":
                nets.extend(_LOOPBACK)
                nets.extend(ipaddress.ip_network(a) for a in default_gateways(route_file, route6_file))
                continue
            if "%" in item:
                raise ValueError("%r: a scope id is not allowed" % item)
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError as e:
            raise ConfigError("AMLC_ALLOWED_PEERS must be `gateway` or a comma-separated list of IP addresses and "
                              "CIDRs, got %r (%s)" % (value, e)) from None
    unique = []
    for n in nets:
        if n not in unique:
            unique.append(n)
    return AllowedPeers(unique)


def default_gateways(route_file=ROUTE_FILE, route6_file=ROUTE6_FILE):
    """The gateways of the default routes (IPv4, then IPv6) in the kernel's routing tables
    (/proc/net/route, /proc/net/ipv6_route); a missing or unreadable file has none."""
    out = []
    for line in _lines(route_file)[1:]:
        # Iface Destination Gateway Flags RefCnt Use Metric Mask ...: hex, the addresses in host byte order
        f = line.split()
        try:
            dest, gw, flags, mask = int(f[1], 16), int(f[2], 16), int(f[3], 16), int(f[7], 16)
        except (IndexError, ValueError):
            continue
        if dest == 0 and mask == 0 and gw and flags & 3 == 3:  # RTF_UP | RTF_GATEWAY
            out.append(ipaddress.IPv4Address(gw.to_bytes(4, sys.byteorder)))
    for line in _lines(route6_file):
        # destination prefix-length source prefix-length next-hop metric refcnt use flags iface
        f = line.split()
        try:
            dest, plen, hop, flags = int(f[0], 16), int(f[1], 16), int(f[4], 16), int(f[8], 16)
        except (IndexError, ValueError):
            continue
        if dest == 0 and plen == 0 and hop and flags & 3 == 3:
            out.append(ipaddress.IPv6Address(hop))
    return out


def _lines(path):
    try:
        with open(path) as f:
            return f.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError):
        return []


class AllowedPeers:
    """The networks a peer address must be in (an IPv4-mapped IPv6 address counts as IPv4)."""

    def __init__(self, nets):
        self.nets = tuple(nets)
        self.cache = {}

    def describe(self):
        return ", ".join(str(n) for n in self.nets)

    def allows(self, host):
        ok = self.cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                ok = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = any(ip in n for n in self.nets)
            if len(self.cache) >= 4096:
                self.cache.clear()
            self.cache[host] = ok
        return ok


class Keys:
    """The auth keys file ({"primaryKey", "secondaryKey"}), re-read every RELOAD_SECONDS (at the first
    authenticated request after that), so `amlc service regen-key` needs no restart: it rewrites the file in
    place (the file is bind-mounted, so the inode must stay) and waits RELOAD_SECONDS before it returns.
    The file's content is compared, not its mtime (coarse-grained: two quick rewrites may share one). A
    half-written file keeps the previous keys until the next reload."""

    RELOAD_SECONDS = 0.2  # amlc's regen-key waits a little longer than this (deploy.cpp, kKeysReloadWait)

    def __init__(self, path):
        self.path = path
        self.keys = ()
        self.raw = None
        self.bad = None
        self.checked = 0.0
        self.load(strict=True)

    def load(self, strict=False):
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            if raw == self.raw or raw == self.bad:
                return
            self.bad = raw  # until it parses: said once, not at every reload
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("expected a JSON object with primaryKey and secondaryKey")
            keys = []
            for name in ("primaryKey", "secondaryKey"):
                v = doc.get(name)
                if v is not None and not isinstance(v, str):
                    raise ValueError("%s must be a string" % name)
                if v:
                    keys.append(v.encode("utf-8"))
            if not keys:
                raise ValueError("no non-empty primaryKey or secondaryKey")
            self.keys = tuple(keys)
            self.raw = raw
            self.bad = None
        except (OSError, ValueError) as e:
            if strict:
                raise ConfigError("AMLC_AUTH_KEYS_FILE %s: %s" % (self.path, e)) from None
            log_err("cannot reload auth keys from %s (keeping the previous keys): %s" % (self.path, e))

    def check(self, header, now):
        if now - self.checked > self.RELOAD_SECONDS:
            self.checked = now
            self.load()
        if not header or not header[:7].lower() == "bearer ":
            return False
        given = header[7:].strip().encode("utf-8", "surrogateescape")
        ok = False
        for k in self.keys:  # compare with every key: no early exit
            ok |= hmac.compare_digest(given, k)
        return ok


def log(msg):
    _write_log(sys.stdout, msg)


def log_err(msg):
    _write_log(sys.stderr, msg)


def _write_log(stream, msg):
    stream.write("%s amlc-scoring[%d]: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), os.getpid(), msg))
    stream.flush()


class ScoringTimeout(BaseException):
    """Raised in the worker by SIGALRM when run() takes longer than SCORING_TIMEOUT_MS. A BaseException
    so that `except Exception` in user code does not swallow it."""


class UserScript:
    """The loaded entry script: init() and how run() wants to be called."""

    def __init__(self, path):
        self.path = path
        script_dir = os.path.dirname(path)
        if script_dir not in sys.path:
            sys.path.insert(0, script_dir)  # sibling modules of the entry script import as in Azure ML
        name = os.path.splitext(os.path.basename(path))[0] or "main"
        if name in sys.modules or not name.isidentifier():
            name = "amlc_entry_script"  # never shadow an already imported module (e.g. json.py)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        self.module = module
        self.init = getattr(module, "init", None)
        run = getattr(module, "run", None)
        if not callable(run):
            raise ConfigError("entry script %s does not define run()" % path)
        if self.init is not None and not callable(self.init):
            raise ConfigError("entry script %s: init is not callable" % path)
        self.run = run
        self.rawhttp = bool(getattr(run, "_aml_rawhttp", False) or getattr(run, "_rawhttp", False))
        self.wants_headers = False
        self.takes_data = True
        try:
            params = inspect.signature(run).parameters
        except (TypeError, ValueError):
            params = None
        if params is not None:
            self.wants_headers = "request_headers" in params
            positional = [p for n, p in params.items() if n != "request_headers"
                          and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
            self.takes_data = bool(positional)
            if self.rawhttp and not positional:
                raise ConfigError("entry script %s: @rawhttp run() must take the request argument" % path)
        # @input_schema (the inference-schema package, if the environment has it): the body must be a JSON
        # object whose keys are run()'s parameters.
        self.schema = False
        self.input_schema = self.output_schema = None
        if "inference_schema" in sys.modules:
            try:
                from inference_schema.schema_util import get_input_schema, get_output_schema, is_schema_decorated
                if is_schema_decorated(run):
                    self.input_schema = get_input_schema(run) or None
                    self.output_schema = get_output_schema(run) or None
                    self.schema = self.input_schema is not None
            except Exception:
                self.schema = False
        if self.schema and self.rawhttp:
            raise ConfigError("entry script %s: run() cannot be both @rawhttp and @input_schema" % path)


def json_default(o):
    """json.dumps fallback for numpy-like values (tolist/item) and bytes."""
    tolist = getattr(o, "tolist", None)
    if tolist is not None:
        return tolist()
    item = getattr(o, "item", None)
    if item is not None:
        return item()
    if isinstance(o, (bytes, bytearray)):
        return bytes(o).decode("utf-8", "replace")
    if isinstance(o, (set, frozenset)):
        return list(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


def print_exc(prefix):
    sys.stderr.write(prefix + "\n" + traceback.format_exc())
    sys.stderr.flush()
