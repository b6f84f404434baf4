"""Reads on the read-only pool (rows become wire models through `jobbie.store.records`)."""

from __future__ import annotations

import sqlite3

import msgspec

from jobbie.errors import NotFound
from jobbie.models import (
    Batch,
    BulkStatus,
    EventMessage,
    JobDetail,
    JobError,
    Queue,
    Schedule,
    SearchResponse,
    WorkerInfo,
)
from jobbie.store.cursor import partial_page, split_page
from jobbie.store.params import BulkSpec
from jobbie.store.records import (
    batch_from_record,
    bulk_status_from_record,
    event_message_from_record,
    group_errors,
    job_detail,
    job_error_from_record,
    job_event_from_record,
    job_from_record,
    queue_from_records,
    schedule_from_record,
    worker_from_record,
)
from jobbie.store.search import TOTAL_CAP, SearchFilter
from jobbie.store.sqlite.bulk import match_clause
from jobbie.store.sqlite.reader import interrupted, time_limit
from jobbie.store.sqlite.search_sql import count_sql, page_sql


def job_errors(conn: sqlite3.Connection, job_id: str) -> list[JobError]:
    return [
        job_error_from_record(r)
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
    job = job_from_record(row, job_errors(conn, job_id))
    events = [
        job_event_from_record(r)
        for r in conn.execute(
            "SELECT id, type, at, data FROM events WHERE job_id = ? ORDER BY id", (job_id,)
        )
    ]
    return job_detail(job, events)


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
    totals = {row["queue"]: row for row in conn.execute(f"SELECT * FROM queue_stats {where}", args)}
    queues = []
    name_filter = "WHERE name = ?" if only is not None else ""
    for row in conn.execute(f"SELECT * FROM queues {name_filter} ORDER BY name", args):
        name = row["name"]
        oldest = conn.execute(
            "SELECT min(created_at) FROM jobs WHERE queue = ? AND state = 'pending'", (name,)
        ).fetchone()[0]
        queues.append(queue_from_records(row, counts.get(name, {}), totals.get(name), oldest, now))
    return queues


def ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def get_batch(conn: sqlite3.Connection, batch_id: str) -> Batch:
    row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return batch_from_record(row)


def list_workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    """Workers seen recently, with how many jobs each runs now."""
    active = dict(
        conn.execute(
            "SELECT worker_id, count(*) FROM jobs WHERE state = 'active' GROUP BY worker_id"
        ).fetchall()
    )
    return [
        worker_from_record(row, active.get(row["id"], 0))
        for row in conn.execute("SELECT * FROM workers ORDER BY last_seen DESC")
    ]


def get_bulk(conn: sqlite3.Connection, bulk_id: str) -> BulkStatus:
    row = conn.execute("SELECT * FROM bulk_operations WHERE id = ?", (bulk_id,)).fetchone()
    if row is None:
        raise NotFound(f"bulk operation {bulk_id} not found")
    return bulk_status_from_record(row)


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


def search(conn: sqlite3.Connection, f: SearchFilter) -> SearchResponse:
    """One page of matching jobs (with their errors), the capped total, and the next cursor,
    all within `f.time_limit_ms` (`duration_ms` is left to the caller)."""
    rows: list[sqlite3.Row] = []
    total, timed_out = 0, False
    with time_limit(conn, f.time_limit_ms):
        try:
            page = conn.execute(*page_sql(f))
            while batch := page.fetchmany(64):  # keeps what came before an interrupt
                rows += batch
            total = len(conn.execute(*count_sql(f)).fetchall())
        except sqlite3.OperationalError as exc:
            if not interrupted(exc):
                raise
            timed_out = True
    if timed_out:
        # Whatever the page query found; the count is at least that.
        shown, cursor = partial_page(f, rows)
        total = max(total, len(rows))
    else:
        shown, cursor = split_page(f, rows)
    errors: dict[str, list[JobError]] = {}
    if shown:
        ids = msgspec.json.encode([r["id"] for r in shown]).decode()
        errors = group_errors(
            conn.execute(
                "SELECT job_id, attempt, error, backtrace, at FROM job_errors"
                " WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (ids,),
            )
        )
    return SearchResponse(
        jobs=[job_from_record(r, errors.get(r["id"], [])) for r in shown],
        total=min(total, TOTAL_CAP),
        cursor=cursor,
        has_more=cursor is not None,
        duration_ms=0.0,
        total_capped=total > TOTAL_CAP,
        timed_out=timed_out,
    )


def get_schedule(conn: sqlite3.Connection, schedule_id: str) -> Schedule:
    row = conn.execute("SELECT * FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return schedule_from_record(row)


def list_schedules(conn: sqlite3.Connection) -> list[Schedule]:
    return [schedule_from_record(r) for r in conn.execute("SELECT * FROM schedules ORDER BY name")]


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
    return [event_message_from_record(r) for r in conn.execute(sql, params)]


def last_event_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
