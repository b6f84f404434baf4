"""Moving up from SQLite: copying a stopped server's embedded database into PostgreSQL.

`import_sqlite` migrates the target (as a server would, under the migration lock), refuses a
target that already holds jobs, queues, schedules or batches, then copies every table that
describes work in ONE transaction, checks the copy by counts before committing, and rolls
back on any difference, so the target ends up either a complete copy or as it was.

Copied, every column: queues, batches, jobs (ids and `seq` kept, so FIFO order is too),
job_errors, unique_locks, schedules, workers, queue_stats (the running totals, into one
slot), queue_keys (each key's turn), the throttle windows and the audit log. The live counters
(queue_counts, key_counts) are written by the jobs table's insert triggers as the jobs arrive;
failure_counts has no insert trigger (inserts never carry an error signature) and is filled
after the copy with the query its migration uses. Not copied: lifecycle events (streams start
afresh), per-minute history (queue_history, key_done: the charts start empty) and the records
of finished bulk operations.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from jobbie.store.postgres.database import CONNECT_TIMEOUT_S, migrate, safe_dsn
from jobbie.store.sqlite.source import columns, open_source

# Rows read from SQLite per fetch while a COPY streams them.
FETCH_ROWS = 5000
# A server still using the target holds its locks for milliseconds; wait no longer than this.
LOCK_TIMEOUT = "10s"
# PostgreSQL text cannot hold U+0000 (SQLite's can): such characters are stored as U+FFFD.
NUL, REPLACEMENT = "\x00", "\ufffd"


@dataclass(frozen=True, slots=True)
class Table:
    """A table copied as is. `identity`: its generated column, whose sequence is moved past
    the copied values; `slot`: a slotted counter table (the copy goes into slot 0);
    `skip`: source columns not copied (the target generates them)."""

    name: str
    order: str | None = None
    identity: str | None = None
    slot: bool = False
    skip: tuple[str, ...] = ()


# In copy order: a job's errors after the job (foreign key). queue_keys after the jobs, since
# the jobs' insert trigger writes a row per key it sees; the source's rows (with each key's
# turn) replace those.
TABLES = (
    Table("queues"),
    Table("batches"),
    Table("jobs", order="seq", identity="seq"),
    Table("job_errors", order="id", identity="id"),
    Table("unique_locks"),
    Table("schedules"),
    Table("workers"),
    Table("queue_stats", slot=True),
    Table("queue_keys"),
    Table("rate_limit_window", order="id", identity="id"),
    Table("key_rate_window", order="id", identity="id"),
    # The target may have entries of its own: new ids, in the source's order.
    Table("audit_log", order="id", skip=("id",)),
)
# A target holding rows in any of these is refused: it is not a new store.
MUST_BE_EMPTY = ("jobs", "queues", "schedules", "batches", "queue_stats", "unique_locks")

# failure_counts' fill, as in migration 007 (slot 0).
FILL_FAILURE_COUNTS = """
INSERT INTO failure_counts (signature, state, queue, slot, n)
    SELECT error_signature, state, queue, 0, count(*) FROM jobs
    WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')
    GROUP BY error_signature, state, queue
    ON CONFLICT (signature, state, queue, slot) DO UPDATE SET n = failure_counts.n + excluded.n
"""

# Counts compared between the source and the target: (what, source query, target query).
# Each returns rows whose last column is a count; the others name what was counted. The
# target's counters (written by its triggers and the fill above) must match the source's jobs
# themselves, whatever the source's own counters say.
BY_QUEUE_STATE = (
    "jobs per queue and state",
    "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state",
    "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state",
)
COUNTERS = (
    (
        "queue counters",
        BY_QUEUE_STATE[1],
        "SELECT queue, state, sum(n) FROM queue_counts GROUP BY queue, state HAVING sum(n) <> 0",
    ),
    (
        "key counters",
        "SELECT queue, key, state, count(*) FROM jobs WHERE key IS NOT NULL"
        " GROUP BY queue, key, state",
        "SELECT queue, key, state, sum(n) FROM key_counts GROUP BY queue, key, state"
        " HAVING sum(n) <> 0",
    ),
    (
        "failure counters",
        "SELECT error_signature, state, queue, count(*) FROM jobs"
        " WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')"
        " GROUP BY error_signature, state, queue",
        "SELECT signature, state, queue, sum(n) FROM failure_counts"
        " GROUP BY signature, state, queue HAVING sum(n) <> 0",
    ),
)


class ImportRefused(Exception):
    """Nothing was copied; the message says why, for an operator."""


class ImportFailed(Exception):
    """The copy was made but did not check out (or the database failed): it was rolled back."""


class TargetUnavailable(Exception):
    """The target database could not be reached."""


@dataclass(slots=True)
class ImportResult:
    """What `import_sqlite` copied."""

    target: str  # the URL without its password
    rows: dict[str, int] = field(default_factory=dict)
    nul_replaced: int = 0  # text values whose U+0000 characters became U+FFFD
    seconds: float = 0.0

    @property
    def jobs(self) -> int:
        return self.rows.get("jobs", 0)


async def import_sqlite(data_dir: Path, url: str) -> ImportResult:
    """Copy the SQLite store of `data_dir` (no server running on it) into the PostgreSQL
    database `url`. Raises ImportRefused (or SourceRefused) before writing anything but the
    target's migrations, ImportFailed after rolling the copy back."""
    started = time.perf_counter()
    result = ImportResult(target=safe_dsn(url))
    # The source first: a refusal there leaves the target untouched, not even migrated.
    source = open_source(data_dir)
    try:
        async with await _connect(url) as conn:
            step = "migrating the target"
            try:
                await migrate(conn)
                await conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                async with conn.transaction():
                    await _check_empty(conn)
                    for table in TABLES:
                        step = f"copying {table.name}"
                        await _copy(source, conn, table, result)
                    step = "counting failures"
                    await conn.execute(FILL_FAILURE_COUNTS)
                    step = "checking the copy"
                    await _verify(source, conn, result)
            except psycopg.Error as exc:
                raise ImportFailed(
                    f"{step} into {result.target} failed, nothing was kept: {_scrub(exc, url)}"
                ) from exc
            # Statistics now, not when autovacuum gets round to it: without them the planner
            # may read a queue's keys through the wrong index for a minute. (Committed already,
            # so a failure here costs only that.)
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ANALYZE")
    finally:
        source.close()
    result.seconds = time.perf_counter() - started
    return result


async def _connect(url: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="jobbie migrate-store",
            # No time limit: a large copy is one long transaction.
            options="-c statement_timeout=0 -c TimeZone=UTC",
        )
    except psycopg.Error as exc:
        raise TargetUnavailable(f"cannot connect to {safe_dsn(url)}: {_scrub(exc, url)}") from exc


def _scrub(exc: BaseException, url: str) -> str:
    """The error's first line, without the URL's password should a message ever quote it."""
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return message
    return message.replace(str(password), "***") if password else message


async def _check_empty(conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
    # Held until commit: a server started on the target meanwhile cannot add work under us.
    names = sql.SQL(", ").join(sql.Identifier(name) for name in MUST_BE_EMPTY)
    try:
        await conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
    except psycopg.errors.LockNotAvailable as exc:
        raise ImportRefused(
            f"the target database is in use (no lock within {LOCK_TIMEOUT}): stop its servers"
        ) from exc
    held = []
    for name in MUST_BE_EMPTY:
        query = sql.SQL("SELECT EXISTS (SELECT FROM {}) AS any").format(sql.Identifier(name))
        row = await (await conn.execute(query)).fetchone()
        if row and row["any"]:
            held.append(name)
    if held:
        raise ImportRefused(
            f"the target database is not empty (it holds {', '.join(held)}): migrate-store"
            " copies into a new database only; nothing was copied"
        )


async def _copy(
    source: sqlite3.Connection,
    conn: psycopg.AsyncConnection[dict[str, Any]],
    table: Table,
    result: ImportResult,
) -> None:
    names = [name for name in columns(source, table.name) if name not in table.skip]
    await _check_columns(conn, table.name, names)
    if table.name == "queue_keys":
        await conn.execute("DELETE FROM queue_keys")
    target = [*names, "slot"] if table.slot else names
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in target)
    )
    select = f"SELECT {', '.join(_quote(n) for n in names)} FROM {table.name}"
    if table.order:
        select += f" ORDER BY {table.order}"
    copied = 0
    async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in _rows(source, select, result):
            await copy.write_row((*row, 0) if table.slot else row)
            copied += 1
    result.rows[table.name] = copied
    if table.identity and copied:
        await conn.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), max({})) FROM {}").format(
                sql.Literal(table.name),
                sql.Literal(table.identity),
                sql.Identifier(table.identity),
                sql.Identifier(table.name),
            )
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(
    source: sqlite3.Connection, select: str, result: ImportResult
) -> Iterator[tuple[Any, ...]]:
    cursor = source.execute(select)
    while batch := cursor.fetchmany(FETCH_ROWS):
        for row in batch:
            if any(type(value) is str and NUL in value for value in row):
                result.nul_replaced += sum(
                    1 for value in row if type(value) is str and NUL in value
                )
                row = tuple(
                    value.replace(NUL, REPLACEMENT) if type(value) is str else value
                    for value in row
                )
            yield row


async def _check_columns(
    conn: psycopg.AsyncConnection[dict[str, Any]], table: str, names: list[str]
) -> None:
    cur = await conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    present = {row["column_name"] for row in await cur.fetchall()}
    missing = [name for name in names if name not in present]
    if missing:
        # The two schemas drifted apart: a bug in this Jobbie, not the operator's doing.
        raise ImportFailed(f"the PostgreSQL table {table} has no column {', '.join(missing)}")


async def _verify(
    source: sqlite3.Connection,
    conn: psycopg.AsyncConnection[dict[str, Any]],
    result: ImportResult,
) -> None:
    """Compare counts between the source and the uncommitted copy; raise on any difference."""
    problems = []
    for table in TABLES:
        want = source.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
        query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table.name))
        row = await (await conn.execute(query)).fetchone()
        got = row["n"] if row else 0
        # The audit log may have had entries of its own.
        if got != want and not (table.name == "audit_log" and got > want):
            problems.append(f"{table.name}: {want} rows in SQLite, {got} copied")
    for what, source_sql, target_sql in (BY_QUEUE_STATE, *COUNTERS):
        want_counts = _counts(source.execute(source_sql).fetchall())
        cur = await conn.execute(target_sql)
        got_counts = _counts([tuple(row.values()) for row in await cur.fetchall()])
        for key in sorted(want_counts.keys() | got_counts.keys(), key=repr):
            if want_counts.get(key, 0) != got_counts.get(key, 0):
                problems.append(
                    f"{what} {'/'.join(map(str, key))}: {want_counts.get(key, 0)} in SQLite,"
                    f" {got_counts.get(key, 0)} copied"
                )
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ImportFailed(f"the copy does not match its source, nothing was kept: {shown}{more}")


def _counts(rows: list[tuple[Any, ...]] | list[Any]) -> dict[tuple[Any, ...], int]:
    counts: dict[tuple[Any, ...], int] = {}
    for row in rows:
        *key, n = tuple(row)
        # U+0000 in a name became U+FFFD in the copy.
        name = tuple(k.replace(NUL, REPLACEMENT) if isinstance(k, str) else k for k in key)
        counts[name] = counts.get(name, 0) + int(n)
    return counts
