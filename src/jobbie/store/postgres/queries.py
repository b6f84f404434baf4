"""Reads, each statement on its own (no transaction): rows become wire models through
`jobbie.store.records`."""

from __future__ import annotations

import time
from collections.abc import Sequence

from psycopg import errors as pg_errors

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
from jobbie.store.postgres.bulk import job_id_params, match_clause
from jobbie.store.postgres.search_sql import count_sql, page_sql
from jobbie.store.postgres.tx import Row, Tx
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


async def job_errors(tx: Tx, job_id: str) -> list[JobError]:
    rows = await tx.all(
        "SELECT attempt, error, backtrace, at FROM job_errors WHERE job_id = %s ORDER BY id",
        (job_id,),
    )
    return [job_error_from_record(r) for r in rows]


async def get_job(tx: Tx, job_id: str) -> JobDetail:
    """A job with its error history and event timeline (oldest first)."""
    row = await tx.one("SELECT * FROM jobs WHERE id = %s", (job_id,))
    if row is None:
        raise NotFound(f"job {job_id} not found")
    job = job_from_record(row, await job_errors(tx, job_id))
    events = await tx.all(
        "SELECT id, type, at, data FROM events WHERE job_id = %s ORDER BY id", (job_id,)
    )
    return job_detail(job, [job_event_from_record(r) for r in events])


async def get_queue(tx: Tx, name: str, now: int) -> Queue:
    """One queue, as listed."""
    for queue in await list_queues(tx, now, only=name):
        return queue
    raise NotFound(f"queue {name} not found")


async def list_queues(tx: Tx, now: int, only: str | None = None) -> list[Queue]:
    """Every known queue with its counts, totals, limits and oldest pending age.

    Counts and totals are the sums of their slots (see 001_initial.sql), so this never scans
    `jobs`; the oldest pending job is one index probe per queue (jobs_queue_state).
    """
    where, args = ("WHERE queue = %s", (only,)) if only is not None else ("", ())
    counts: dict[str, dict[str, int]] = {}
    for row in await tx.all(
        f"SELECT queue, state, sum(n)::bigint AS n FROM queue_counts {where} GROUP BY queue, state",
        args,
    ):
        counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
    totals = {
        row["queue"]: row
        for row in await tx.all(
            "SELECT queue, sum(enqueued)::bigint AS enqueued, sum(completed)::bigint AS completed,"
            " sum(failed)::bigint AS failed, sum(dead)::bigint AS dead"
            f" FROM queue_stats {where} GROUP BY queue",
            args,
        )
    }
    name_filter = "WHERE q.name = %s" if only is not None else ""
    rows = await tx.all(
        "SELECT q.*, (SELECT min(created_at) FROM jobs"
        "  WHERE jobs.queue = q.name AND jobs.state = 'pending') AS oldest_pending"
        f' FROM queues AS q {name_filter} ORDER BY q.name COLLATE "C"',
        args,
    )
    return [
        queue_from_records(
            row, counts.get(row["name"], {}), totals.get(row["name"]), row["oldest_pending"], now
        )
        for row in rows
    ]


async def ping(tx: Tx) -> None:
    await tx.one("SELECT 1")


async def get_batch(tx: Tx, batch_id: str) -> Batch:
    row = await tx.one("SELECT * FROM batches WHERE id = %s", (batch_id,))
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return batch_from_record(row)


async def list_workers(tx: Tx) -> list[WorkerInfo]:
    """Workers seen recently, with how many jobs each runs now."""
    active = {
        r["worker_id"]: r["n"]
        for r in await tx.all(
            "SELECT worker_id, count(*) AS n FROM jobs WHERE state = 'active' GROUP BY worker_id"
        )
    }
    rows = await tx.all("SELECT * FROM workers ORDER BY last_seen DESC")
    return [worker_from_record(row, active.get(row["id"], 0)) for row in rows]


async def get_bulk(tx: Tx, bulk_id: str) -> BulkStatus:
    row = await tx.one("SELECT * FROM bulk_operations WHERE id = %s", (bulk_id,))
    if row is None:
        raise NotFound(f"bulk operation {bulk_id} not found")
    return bulk_status_from_record(row)


async def count_matches(tx: Tx, spec: BulkSpec) -> tuple[int, int]:
    """(matching jobs, unknown ids) for a bulk request."""
    if spec.job_ids is not None:
        wanted = job_id_params(sorted(set(spec.job_ids)))
        row = await tx.one("SELECT count(*) AS n FROM jobs WHERE id = ANY(%s::text[])", (wanted,))
        found = row["n"] if row else 0
        return found, len(wanted) - found
    sql, params = match_clause(spec)
    row = await tx.one(f"SELECT count(*) AS n FROM jobs WHERE {sql}", params)
    return (row["n"] if row else 0), 0


# The least time a search statement gets, however little of the limit is left: PostgreSQL's
# timer counts planning and a busy machine's scheduling delays too, and a table whose
# statistics are not yet up to date may be sorted for a page (tens of ms at 20,000 jobs), so
# a smaller one would cancel searches an operator expects to be quick.
_MIN_STATEMENT_MS = 25


async def search(tx: Tx, f: SearchFilter) -> SearchResponse:
    """One page of matching jobs (with their errors), the capped total, and the next cursor,
    within `f.time_limit_ms` (`duration_ms` is left to the caller). The page is read through
    a cursor a few rows at a time, each statement limited to the time left, so a search cut
    short keeps the rows it found (as on SQLite); a count cut short is at least the page."""
    rows: list[Row] = []
    total, timed_out = 0, False
    deadline = None if f.time_limit_ms is None else time.monotonic() + f.time_limit_ms / 1000

    async def limited(sql: str, params: Sequence[object] = (), *, rows: bool = True) -> list[Row]:
        if deadline is not None:
            left_ms = max(_MIN_STATEMENT_MS, round((deadline - time.monotonic()) * 1000))
            await tx.execute(f"SET LOCAL statement_timeout = {left_ms}")
        if not rows:
            await tx.execute(sql, params)
            return []
        return await tx.all(sql, params)

    async with tx.conn.transaction():
        try:
            async with tx.conn.transaction():  # a savepoint: a cancelled statement ends here
                for sql, params in page_sql(f):  # the second only when the first fell short
                    await limited(f"DECLARE page NO SCROLL CURSOR FOR {sql}", params, rows=False)
                    while batch := await limited("FETCH 64 FROM page"):
                        rows += batch
                    await tx.execute("CLOSE page")
                    if len(rows) > f.limit:
                        break
                rows = rows[: f.limit + 1]
                counted = await limited(*count_sql(f))
                total = int(counted[0]["n"]) if counted else 0
        except pg_errors.QueryCanceled:
            if deadline is None:
                raise
            timed_out = True
    if timed_out:
        shown, cursor = partial_page(f, rows)
        total = max(total, len(rows))
    else:
        shown, cursor = split_page(f, rows)
    errors: dict[str, list[JobError]] = {}
    if shown:
        errors = group_errors(
            await tx.all(
                "SELECT job_id, attempt, error, backtrace, at FROM job_errors"
                " WHERE job_id = ANY(%s::text[]) ORDER BY id",
                ([r["id"] for r in shown],),
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


async def get_schedule(tx: Tx, schedule_id: str) -> Schedule:
    row = await tx.one("SELECT * FROM schedules WHERE id = %s", (schedule_id,))
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return schedule_from_record(row)


async def list_schedules(tx: Tx) -> list[Schedule]:
    rows = await tx.all('SELECT * FROM schedules ORDER BY name COLLATE "C"')
    return [schedule_from_record(r) for r in rows]


async def read_events(
    tx: Tx, after_id: int, queues: tuple[str, ...], types: tuple[str, ...], limit: int
) -> list[EventMessage]:
    """Events after `after_id`, oldest first, optionally only some queues and types."""
    # Streams go by `pos`, the commit-ordered position (see 001_initial.sql), never by `id`.
    sql = "SELECT pos AS id, type, job_id, queue, data, at FROM events WHERE pos > %s"
    params: list[object] = [after_id]
    if queues:
        sql += " AND queue = ANY(%s::text[])"
        params.append(list(queues))
    if types:
        sql += " AND type = ANY(%s::text[])"
        params.append(list(types))
    sql += " ORDER BY pos LIMIT %s"
    params.append(limit)
    return [event_message_from_record(r) for r in await tx.all(sql, params)]


async def last_event_id(tx: Tx) -> int:
    row = await tx.one("SELECT coalesce(max(pos), 0) AS id FROM events")
    return int(row["id"]) if row else 0
