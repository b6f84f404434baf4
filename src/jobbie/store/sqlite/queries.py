"""Reads on the read-only pool, and mapping rows to wire models."""

from __future__ import annotations

import sqlite3

import msgspec

from jobbie.errors import NotFound
from jobbie.models import (
    Batch,
    BulkStatus,
    EventMessage,
    Job,
    JobDetail,
    JobError,
    JobEvent,
    JobProgress,
    Queue,
    QueueCounts,
    QueueTotals,
    Schedule,
    Throttle,
    WorkerInfo,
    WorkerRef,
)
from jobbie.store.params import BulkSpec
from jobbie.store.search import SearchFilter
from jobbie.store.sqlite.bulk import match_clause
from jobbie.store.sqlite.search_sql import count_sql, page_sql, split_page
from jobbie.store.states import Priority
from jobbie.timeutil import ms_to_seconds, rfc3339

_PRIORITY_NAMES = {p.value: p.label for p in Priority}
_NULL = msgspec.Raw(b"null")


def _raw(text: str | None) -> msgspec.Raw:
    return _NULL if text is None else msgspec.Raw(text.encode())


def job_from_row(row: sqlite3.Row, errors: list[JobError]) -> Job:
    """Build a wire Job from a full `jobs` row."""
    progress = None
    if row["progress"] is not None:
        progress = msgspec.json.decode(row["progress"], type=JobProgress)
    worker = None
    if row["worker_id"] is not None:
        worker = WorkerRef(id=row["worker_id"], hostname=row["worker_hostname"])
    return Job(
        id=row["id"],
        queue=row["queue"],
        state=row["state"],
        payload=_raw(row["payload"]),
        priority=_PRIORITY_NAMES[row["priority"]],  # type: ignore[arg-type]
        attempt=row["attempt"],
        max_retries=row["max_retries"],
        retry_backoff=row["retry_backoff"],
        retry_base_delay=row["retry_base_delay_ms"] / 1000,
        retry_max_delay=row["retry_max_delay_ms"] / 1000,
        unique_key=row["unique_key"],
        unique_period=ms_to_seconds(row["unique_period_ms"]),
        batch_id=row["batch_id"],
        tags=msgspec.json.decode(row["tags"]),
        progress=progress,
        checkpoint=_raw(row["checkpoint"]),
        result=_raw(row["result"]),
        last_error=row["last_error"],
        worker=worker,
        created_at=rfc3339(row["created_at"]) or "",
        scheduled_at=rfc3339(row["scheduled_at"]),
        started_at=rfc3339(row["started_at"]),
        completed_at=rfc3339(row["completed_at"]),
        failed_at=rfc3339(row["failed_at"]),
        expire_at=rfc3339(row["expire_at"]),
        lease_expires_at=rfc3339(row["lease_expires_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        errors=errors,
    )


def _job_error(r: sqlite3.Row) -> JobError:
    return JobError(
        attempt=r["attempt"], error=r["error"], backtrace=r["backtrace"], at=rfc3339(r["at"]) or ""
    )


def job_errors(conn: sqlite3.Connection, job_id: str) -> list[JobError]:
    return [
        _job_error(r)
        for r in conn.execute(
            "SELECT attempt, error, backtrace, at FROM job_errors WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
    ]


def get_job(conn: sqlite3.Connection, job_id: str) -> JobDetail:
    """A job with its error history and event timeline (oldest first)."""
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    job = job_from_row(row, job_errors(conn, job_id))
    events = [
        JobEvent(
            id=r["id"],
            type=r["type"],
            at=rfc3339(r["at"]) or "",
            data=None if r["data"] is None else msgspec.json.decode(r["data"]),
        )
        for r in conn.execute(
            "SELECT id, type, at, data FROM events WHERE job_id = ? ORDER BY id", (job_id,)
        )
    ]
    return JobDetail(**{f: getattr(job, f) for f in job.__struct_fields__}, events=events)


def get_queue(conn: sqlite3.Connection, name: str, now: int) -> Queue:
    """One queue, as listed."""
    for queue in list_queues(conn, now, only=name):
        return queue
    raise NotFound(f"queue {name} not found")


def list_queues(conn: sqlite3.Connection, now: int, only: str | None = None) -> list[Queue]:
    """Every known queue with its counts, totals, limits and oldest pending age.

    Counts come from the trigger-maintained `queue_counts`, so this never scans `jobs`; the
    oldest pending job is one index probe per queue.
    """
    where, args = ("WHERE queue = ?", (only,)) if only is not None else ("", ())
    counts: dict[str, dict[str, int]] = {}
    for row in conn.execute(f"SELECT queue, state, n FROM queue_counts {where}", args):
        counts.setdefault(row[0], {})[row[1]] = row[2]
    totals = {
        row["queue"]: QueueTotals(
            enqueued=row["enqueued"],
            completed=row["completed"],
            failed=row["failed"],
            dead=row["dead"],
        )
        for row in conn.execute(f"SELECT * FROM queue_stats {where}", args)
    }
    queues = []
    name_filter = "WHERE name = ?" if only is not None else ""
    for row in conn.execute(f"SELECT * FROM queues {name_filter} ORDER BY name", args):
        name = row["name"]
        oldest = conn.execute(
            "SELECT min(created_at) FROM jobs WHERE queue = ? AND state = 'pending'", (name,)
        ).fetchone()[0]
        throttle = None
        if row["rate_limit"] is not None:
            throttle = Throttle(rate=row["rate_limit"], period=row["rate_window_ms"] / 1000)
        queues.append(
            Queue(
                name=name,
                paused=bool(row["paused"]),
                draining=bool(row["draining"]),
                max_concurrency=row["max_concurrency"],
                throttle=throttle,
                counts=QueueCounts(**counts.get(name, {})),
                totals=totals.get(name, QueueTotals()),
                oldest_pending_age=None if oldest is None else max(0, now - oldest) / 1000,
            )
        )
    return queues


def ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def get_batch(conn: sqlite3.Connection, batch_id: str) -> Batch:
    row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return Batch(
        id=row["id"],
        state="completed" if row["completed_at"] is not None else "running",
        total=row["total"],
        pending=row["pending"],
        succeeded=row["succeeded"],
        failed=row["failed"],
        callback_queue=row["callback_queue"],
        callback_payload=_raw(row["callback_payload"]),
        callback_job_id=row["callback_job_id"],
        created_at=rfc3339(row["created_at"]) or "",
        completed_at=rfc3339(row["completed_at"]),
    )


def list_workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    """Workers seen recently, with how many jobs each runs now."""
    active = dict(
        conn.execute(
            "SELECT worker_id, count(*) FROM jobs WHERE state = 'active' GROUP BY worker_id"
        ).fetchall()
    )
    return [
        WorkerInfo(
            id=row["id"],
            hostname=row["hostname"],
            queues=msgspec.json.decode(row["queues"]),
            active_jobs=active.get(row["id"], 0),
            last_seen=rfc3339(row["last_seen"]) or "",
            started_at=rfc3339(row["started_at"]) or "",
        )
        for row in conn.execute("SELECT * FROM workers ORDER BY last_seen DESC")
    ]


def get_bulk(conn: sqlite3.Connection, bulk_id: str) -> BulkStatus:
    row = conn.execute("SELECT * FROM bulk_operations WHERE id = ?", (bulk_id,)).fetchone()
    if row is None:
        raise NotFound(f"bulk operation {bulk_id} not found")
    return BulkStatus(
        id=row["id"],
        action=row["action"],
        status=row["status"],
        estimated_total=row["estimated_total"],
        affected=row["affected"],
        skipped=row["skipped"],
        errors=row["errors"],
        created_at=rfc3339(row["created_at"]) or "",
        finished_at=rfc3339(row["finished_at"]),
    )


def count_matches(conn: sqlite3.Connection, spec: BulkSpec) -> tuple[int, int]:
    """(matching jobs, unknown ids) for a bulk request."""
    if spec.job_ids is not None:
        found = conn.execute(
            "SELECT count(*) FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (msgspec.json.encode(sorted(set(spec.job_ids))).decode(),),
        ).fetchone()[0]
        return found, len(set(spec.job_ids)) - found
    sql, params = match_clause(spec)
    return conn.execute(f"SELECT count(*) FROM jobs WHERE {sql}", params).fetchone()[0], 0


def search(conn: sqlite3.Connection, f: SearchFilter) -> tuple[list[Job], int, str | None]:
    """One page of matching jobs (with their errors), the total, and the next cursor."""
    rows, cursor = split_page(f, conn.execute(*page_sql(f)).fetchall())
    total = conn.execute(*count_sql(f)).fetchone()[0]
    errors: dict[str, list[JobError]] = {}
    if rows:
        ids = msgspec.json.encode([r["id"] for r in rows]).decode()
        for r in conn.execute(
            "SELECT job_id, attempt, error, backtrace, at FROM job_errors"
            " WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (ids,),
        ):
            errors.setdefault(r["job_id"], []).append(_job_error(r))
    return [job_from_row(r, errors.get(r["id"], [])) for r in rows], total, cursor


def schedule_from_row(row: sqlite3.Row) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        queue=row["queue"],
        cron=row["cron"],
        timezone=row["timezone"],
        payload=_raw(row["payload"]),
        priority=_PRIORITY_NAMES[row["priority"]],  # type: ignore[arg-type]
        max_retries=row["max_retries"],
        tags=msgspec.json.decode(row["tags"]),
        paused=bool(row["paused"]),
        last_run=rfc3339(row["last_run"]),
        next_run=None if row["paused"] else rfc3339(row["next_run"]),
        created_at=rfc3339(row["created_at"]) or "",
    )


def get_schedule(conn: sqlite3.Connection, schedule_id: str) -> Schedule:
    row = conn.execute("SELECT * FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return schedule_from_row(row)


def list_schedules(conn: sqlite3.Connection) -> list[Schedule]:
    return [schedule_from_row(r) for r in conn.execute("SELECT * FROM schedules ORDER BY name")]


def read_events(
    conn: sqlite3.Connection,
    after_id: int,
    queues: tuple[str, ...],
    types: tuple[str, ...],
    limit: int,
) -> list[EventMessage]:
    """Events after `after_id`, oldest first, optionally only some queues and types."""
    sql = "SELECT id, type, job_id, queue, data, at FROM events WHERE id > ?"
    params: list[object] = [after_id]
    if queues:
        sql += " AND queue IN (SELECT value FROM json_each(?))"
        params.append(msgspec.json.encode(queues).decode())
    if types:
        sql += " AND type IN (SELECT value FROM json_each(?))"
        params.append(msgspec.json.encode(types).decode())
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [
        EventMessage(
            id=r["id"],
            type=r["type"],
            job_id=r["job_id"],
            queue=r["queue"],
            data=None if r["data"] is None else msgspec.json.decode(r["data"]),
            at=rfc3339(r["at"]) or "",
        )
        for r in conn.execute(sql, params)
    ]


def last_event_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
