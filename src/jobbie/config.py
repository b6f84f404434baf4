"""Server settings: built once at start-up from flags, then `JOBBIE_*` environment variables,
then defaults. This is the only module that reads the environment."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobbie.keys import ApiKey, parse_keys
from jobbie.store.factory import check_database_url, is_postgres
from jobbie.store.params import Retention
from jobbie.timeutil import parse_duration_ms

DEFAULT_BIND = "127.0.0.1:8080"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything `jobbie server` is configured with."""

    host: str = "127.0.0.1"
    """Address to listen on: the host part of `--bind` / `JOBBIE_BIND` (0.0.0.0 exposes it)."""
    port: int = 8080
    """TCP port to listen on: the port part of `--bind` / `JOBBIE_BIND`."""
    data_dir: Path = Path("./data")
    """Directory of the SQLite database (`jobbie.db`), created if missing."""
    database: str | None = None
    """None or `sqlite:///DIR`: the embedded store; `postgresql://USER@HOST:PORT/DB`: a
    PostgreSQL database several servers may share (see jobbie.store.factory)."""
    log_level: str = "info"
    """debug, info, warning or error; logs are JSON lines on stderr."""
    durable: bool = True
    """`--durability full`: every acknowledged write is fsync-ed (SQLite synchronous=FULL);
    False is `--durability fast` (synchronous=NORMAL: a power loss may lose the last writes)."""
    api_keys: tuple[str, ...] = ()
    """Bearer keys every `/api/` route requires (none: no authentication); an entry may be
    named, `name=secret` (see `jobbie.keys`)."""
    read_only_api_keys: tuple[str, ...] = ()
    """Keys that may read (GET routes, job search, the whole web console) and nothing else."""
    session_ttl_s: int = 12 * 3600
    """How long a web console session lasts (`JOBBIE_SESSION_TTL`)."""
    audit_retention_ms: int = 90 * 86_400_000
    """How long the audit log keeps an entry (`JOBBIE_RETENTION_AUDIT`)."""
    scheduler_interval: float = 1.0
    """Seconds between scheduler passes (promotions, lease reclaims, expiry, cron, pruning)."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed by CORS (none: CORS is off)."""
    max_body_bytes: int = 16 << 20
    """Largest request body (16 MiB), refused with 413 before it is parsed."""
    max_payload_bytes: int = 1 << 20
    """Largest payload, result, checkpoint, progress, error or backtrace (1 MiB each): 413."""
    shutdown_grace: float = 10.0
    """Seconds in-flight requests get to finish after SIGTERM or SIGINT."""
    max_event_streams: int = 100
    """Concurrent SSE streams (`GET /api/v1/events`); more are refused with 503 and Retry-After."""
    retention: Retention = field(default_factory=Retention)
    """How long finished jobs, events and idle queues are kept before the scheduler prunes
    them: `JOBBIE_RETENTION_COMPLETED` (completed and cancelled jobs, 7d),
    `JOBBIE_RETENTION_DEAD` (dead jobs, 30d), `JOBBIE_RETENTION_EVENTS` (lifecycle events,
    24h), `JOBBIE_RETENTION_QUEUES` (empty queues with default settings, 7d); each a duration
    like 12h or 90d."""
    access_log: bool = True
    """One JSON access-log line per request, at info level."""
    test_clock: bool = False
    """Tests only (`--test-clock`, `JOBBIE_TEST_CLOCK`): `POST /_test/clock` may move the
    server's clock forward. Never enable it in production."""
    max_connections: int = 4096
    """Open connections, parked long-polls included, before new requests get 503. Each parked
    long-poll holds one: 4096 fits hundreds of workers with several fetches each and stays
    under a common 8192 file-descriptor limit (server/protocol.py)."""
    keep_alive: float = 5.0
    """Seconds an idle connection stays open between requests."""
    header_timeout: float = 10.0
    """Seconds to receive a request's line and headers (slow clients are disconnected)."""
    body_timeout: float = 60.0
    """Seconds to receive a request's body once its headers are in."""
    max_header_bytes: int = 64 << 10
    """Largest request line plus headers, in bytes (431 beyond)."""
    max_headers: int = 100
    """Most headers in one request (431 beyond)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names accepted besides loopback ones while bound to loopback (`*`: any); guards
    against DNS rebinding (server/sitecheck.py)."""
    protect_metrics: bool = False
    """`/metrics` and `/openapi.json` need an API key too."""
    search_timeout: float = 2.0
    """Seconds a job search (`POST /api/v1/jobs/search`, the console's jobs page) may read
    before it answers with the matches found so far and `timed_out` (`JOBBIE_SEARCH_TIMEOUT`).
    Payload and tag filters read every job the indexed filters leave; this bounds them."""
    max_response_bytes: int = 64 << 20
    """A fetch answer stops growing past this many bytes of payloads and checkpoints (it
    carries fewer jobs rather than failing)."""
    pool_size: int = 10
    """PostgreSQL only: connections this server keeps open. The servers sharing a database
    need, together, their pool sizes plus one each (for LISTEN) below its max_connections."""
    statement_timeout_ms: int = 5000
    """PostgreSQL only: a statement running longer is cancelled and its request answers 503."""
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """This server's name in `/api/v1/cluster/status`: hostname:pid."""

    @classmethod
    def build(cls, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
        """Merge flags (None = not given) over `JOBBIE_*` variables over defaults."""
        env = os.environ if environ is None else environ

        def pick(name: str) -> Any:
            value = flags.get(name)
            if value is None:
                value = env.get(f"JOBBIE_{name.upper()}")
            return value

        values: dict[str, Any] = {}
        bind = pick("bind") or DEFAULT_BIND
        host, _, port = str(bind).rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--bind must be HOST:PORT, got {bind!r}")
        values["host"], values["port"] = host.strip("[]"), int(port)
        if (data_dir := pick("data_dir")) is not None:
            values["data_dir"] = Path(data_dir)
        if (database := pick("database")) is not None:
            check_database_url(str(database))
            values["database"] = str(database)
        if (test_clock := pick("test_clock")) is not None:
            values["test_clock"] = str(test_clock).lower() in ("1", "true", "yes")
        if (log_level := pick("log_level")) is not None:
            values["log_level"] = str(log_level).lower()
        if (durability := pick("durability")) is not None:
            if durability not in ("full", "fast"):
                raise ValueError(f"--durability must be full or fast, got {durability!r}")
            values["durable"] = durability == "full"
        if (keys := pick("api_key")) is not None:
            values["api_keys"] = tuple(k.strip() for k in str(keys).split(",") if k.strip())
        if (keys := pick("read_only_api_key")) is not None:
            values["read_only_api_keys"] = tuple(
                k.strip() for k in str(keys).split(",") if k.strip()
            )
        if (audit := pick("retention_audit")) is not None:
            values["audit_retention_ms"] = parse_duration_ms(audit, "retention_audit")
        if (session_ttl := pick("session_ttl")) is not None:
            values["session_ttl_s"] = parse_duration_ms(session_ttl, "session_ttl") // 1000
        if (interval := pick("scheduler_interval")) is not None:
            values["scheduler_interval"] = float(interval)
            if values["scheduler_interval"] <= 0:
                raise ValueError("--scheduler-interval must be positive")
        if (streams := pick("max_event_streams")) is not None:
            values["max_event_streams"] = int(streams)
            if values["max_event_streams"] < 0:
                raise ValueError("--max-event-streams must be 0 or more")
        if (origins := pick("cors_origin")) is not None:
            values["cors_origins"] = tuple(o.strip() for o in str(origins).split(",") if o.strip())
        for name, kind in _NUMBERS.items():
            if (number := pick(name)) is not None:
                values[name] = _positive(name, number, kind)
        if (hosts := pick("allowed_host")) is not None:
            values["allowed_hosts"] = tuple(
                h.strip().lower() for h in str(hosts).split(",") if h.strip()
            )
        if (protect := pick("protect_metrics")) is not None:
            values["protect_metrics"] = str(protect).lower() in ("1", "true", "yes")
        retention: dict[str, int] = {}
        for name in ("completed", "dead", "events", "queues"):
            if (value := pick(f"retention_{name}")) is not None:
                retention[f"{name}_ms"] = parse_duration_ms(value, f"retention_{name}")
        if retention:
            values["retention"] = Retention(**retention)
        return cls(**values)

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """Every API key, full and read-only, with its name."""
        return parse_keys(self.api_keys, self.read_only_api_keys)

    @property
    def postgres(self) -> bool:
        """The database is PostgreSQL (`--data-dir` and `--durability` do not apply)."""
        return is_postgres(self.database)

    @property
    def bind(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Bound to a loopback address (reachable from this machine only)."""
        return is_loopback_host(self.host)


_NUMBERS: dict[str, type[int] | type[float]] = {
    "max_connections": int,
    "keep_alive": float,
    "header_timeout": float,
    "body_timeout": float,
    "max_header_bytes": int,
    "max_headers": int,
    "max_response_bytes": int,
    "pool_size": int,
    "statement_timeout_ms": int,
    "search_timeout": float,
}


def _positive(name: str, value: object, kind: type[int] | type[float]) -> int | float:
    flag = "--" + name.replace("_", "-")
    try:
        number = kind(str(value))
    except ValueError:
        raise ValueError(f"{flag} must be a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{flag} must be positive, got {value!r}")
    return number


def is_loopback_host(host: str) -> bool:
    """`localhost`, `*.localhost`, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
