"""Connecting to PostgreSQL with Jobbie's settings, applying numbered migrations once across
servers, and translating driver errors into the store's errors."""

from __future__ import annotations

import contextlib
import logging
import select
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from jobbie.errors import Unavailable, ValidationError

log = logging.getLogger("jobbie.store")

# pg_advisory_lock keys (one 64-bit namespace per database): any constant works as long as
# every Jobbie server uses the same one. 0x6A6F62 is "job".
MIGRATE_LOCK = 0x6A6F62_0001
EVENTS_LOCK = 0x6A6F62_0002  # also spelled out in jobbie_announce (001_initial.sql)
# A server that cannot get a connection or an answer within this long answers 503.
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How a server talks to PostgreSQL."""

    # Connections per server. Size: the servers' pools together (plus one LISTEN connection
    # each) must stay below the database's max_connections with room for operators.
    size: int = 10
    # Any statement running longer is cancelled and the request answers 503.
    statement_timeout_ms: int = 5000


def safe_dsn(url: str) -> str:
    """The URL with its password removed, for logs, errors and cluster status."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable URL)"
    params.pop("password", None)
    host = str(params.get("host", "localhost"))
    port = str(params.get("port", "5432"))
    user = str(params.get("user", ""))
    name = str(params.get("dbname", ""))
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{name}"


def conninfo(url: str, settings: PoolSettings) -> str:
    """The connection string with Jobbie's session settings added."""
    # libpq takes postgresql:// and postgres:// URLs alike.
    return make_conninfo(
        url,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="jobbie",
        options=f"-c statement_timeout={settings.statement_timeout_ms} -c TimeZone=UTC",
    )


async def open_pool(url: str, settings: PoolSettings) -> psycopg_pool.AsyncConnectionPool[Any]:
    """A pool of connections that hand out rows as dicts; waits for the first connection."""
    pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
        conninfo(url, settings),
        min_size=min(2, settings.size),
        max_size=settings.size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        timeout=CONNECT_TIMEOUT_S,
        # A connection broken by a database restart is found and replaced before it is used.
        check=_check,
        configure=_warm_up,
        open=False,
        name="jobbie",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close()
        raise Unavailable(f"cannot connect to {safe_dsn(url)}") from exc
    return pool


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    """Check a connection on its way out of the pool, with a round trip only when it may be
    broken. An idle connection's socket has nothing to read until the server ends it (a
    restart, a crash, a terminated backend: a message or end of file arrives), so a silent one
    is handed out as is: a round trip per request saved, on every request's critical path."""
    if conn.closed or conn.pgconn.status != pq.ConnStatus.OK or _readable(conn.pgconn.socket):
        await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True  # let the real check find out
    return bool(ready)


async def _warm_up(conn: psycopg.AsyncConnection[Any]) -> None:
    """Load the jobs table's catalog entries into a new connection's caches, so its first
    search is not cancelled by a short time limit while PostgreSQL reads them."""
    # Not migrated yet (the first server's first connection): nothing to warm.
    with contextlib.suppress(pg_errors.UndefinedTable):
        await conn.execute(
            "EXPLAIN SELECT * FROM jobs WHERE queue = '' AND state = ''"
            " ORDER BY created_at DESC, seq DESC LIMIT 1"
        )


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in the package, in order."""
    found = []
    for entry in resources.files("jobbie.store.postgres.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply the migrations not yet recorded, under a session advisory lock so that servers
    starting together migrate once; return the names applied here."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row["version"] for row in await cur.fetchall()}
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql.encode())  # a whole script: no parameters
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES (%s, %s, now())",
                    (version, name),
                )
            log.info("applied migration %s", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return applied


# Errors after which running the whole transaction again may succeed.
RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


@contextlib.asynccontextmanager
async def translating(what: str) -> AsyncIterator[None]:
    """Turn driver errors into `Unavailable` (503): the database failed, nothing was written."""
    try:
        yield
    except RETRYABLE:
        raise  # the transaction runner runs the operation again
    except pg_errors.QueryCanceled as exc:
        raise Unavailable(f"{what}: the database did not answer in time") from exc
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, OSError) as exc:
        raise Unavailable(f"{what}: the database is unavailable") from exc
    except psycopg.DataError as exc:
        if exc.sqlstate is None and "NUL" in str(exc):
            # Refused before sending: PostgreSQL text cannot hold U+0000, so no stored name
            # or id holds one either; the request is malformed (SQLite would find nothing).
            raise ValidationError(f"{what}: text must not contain the character U+0000") from exc
        log.exception("%s failed", what)
        raise Unavailable(f"{what} failed: {type(exc).__name__}") from exc
    except psycopg.Error as exc:
        # Not the database's health but our SQL: log it whole, answer 503 all the same.
        log.exception("%s failed", what)
        raise Unavailable(f"{what} failed: {type(exc).__name__}") from exc
