"""Turning a backend's rows into wire models, for every backend.

A backend hands these mappers a `Record`: anything indexable by column name (`sqlite3.Row`,
psycopg's `dict_row`, a dict) in the neutral column shape every backend stores:
- times are integer epoch milliseconds (UTC) or None;
- JSON columns (`payload`, `result`, `checkpoint`, `progress`, `tags`, `data`,
  `callback_payload`, `queues`) are JSON text, passed through to the wire unparsed where the
  wire type is `msgspec.Raw`;
- `priority` is the stored number (0 critical, 1 high, 2 normal);
- flags (`cancel_requested`, `paused`, `draining`) are booleans or 0/1;
- durations are integer milliseconds (`*_ms` columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import msgspec

from jobbie.models import (
    Batch,
    BulkStatus,
    EventMessage,
    FetchedJob,
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
from jobbie.store.states import Priority
from jobbie.timeutil import ms_to_seconds, rfc3339

__all__ = [
    "Record",
    "batch_from_record",
    "bulk_status_from_record",
    "event_message_from_record",
    "fetched_job_from_record",
    "job_detail",
    "job_error_from_record",
    "job_event_from_record",
    "job_from_record",
    "queue_from_records",
    "schedule_from_record",
    "worker_from_record",
]

_PRIORITY_NAMES = {p.value: p.label for p in Priority}
_NULL = msgspec.Raw(b"null")


class Record(Protocol):
    """One row, readable by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def raw_json(text: str | None) -> msgspec.Raw:
    """A JSON text column as it goes on the wire (SQL NULL reads as JSON null)."""
    return _NULL if text is None else msgspec.Raw(text.encode())


def _json(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def _stamp(ms: int | None) -> str:
    return rfc3339(ms) or ""


def job_from_record(row: Record, errors: list[JobError]) -> Job:
    """A wire Job from a full `jobs` row and its error history."""
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
        payload=raw_json(row["payload"]),
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
        key=row["key"],
        progress=progress,
        checkpoint=raw_json(row["checkpoint"]),
        result=raw_json(row["result"]),
        last_error=row["last_error"],
        worker=worker,
        created_at=_stamp(row["created_at"]),
        scheduled_at=rfc3339(row["scheduled_at"]),
        started_at=rfc3339(row["started_at"]),
        completed_at=rfc3339(row["completed_at"]),
        failed_at=rfc3339(row["failed_at"]),
        expire_at=rfc3339(row["expire_at"]),
        lease_expires_at=rfc3339(row["lease_expires_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        errors=errors,
    )


def fetched_job_from_record(row: Record, lease_ms: int) -> FetchedJob:
    """What a worker receives for a job it just leased for `lease_ms`."""
    return FetchedJob(
        job_id=row["id"],
        queue=row["queue"],
        payload=raw_json(row["payload"]),
        attempt=row["attempt"],
        max_retries=row["max_retries"],
        lease_duration=lease_ms / 1000,
        checkpoint=raw_json(row["checkpoint"]),
        tags=msgspec.json.decode(row["tags"]),
        priority=_PRIORITY_NAMES[row["priority"]],  # type: ignore[arg-type]
        created_at=_stamp(row["created_at"]),
        key=row["key"],
    )


def job_detail(job: Job, events: list[JobEvent]) -> JobDetail:
    """A job with its event timeline."""
    return JobDetail(**{f: getattr(job, f) for f in job.__struct_fields__}, events=events)


def job_error_from_record(row: Record) -> JobError:
    """One failed attempt from a `job_errors` row."""
    return JobError(
        attempt=row["attempt"], error=row["error"], backtrace=row["backtrace"], at=_stamp(row["at"])
    )


def job_event_from_record(row: Record) -> JobEvent:
    """One entry of a job's timeline from an `events` row."""
    return JobEvent(id=row["id"], type=row["type"], at=_stamp(row["at"]), data=_json(row["data"]))


def event_message_from_record(row: Record) -> EventMessage:
    """One event of the lifecycle stream from an `events` row."""
    return EventMessage(
        id=row["id"],
        type=row["type"],
        job_id=row["job_id"],
        queue=row["queue"],
        data=_json(row["data"]),
        at=_stamp(row["at"]),
    )


def queue_from_records(
    row: Record,
    counts: Mapping[str, int],
    totals: Record | None,
    oldest_pending_ms: int | None,
    now: int,
) -> Queue:
    """A queue from its `queues` row, its counts by state, its totals row and the creation
    time of its oldest pending job."""
    throttle = None
    if row["rate_limit"] is not None:
        throttle = Throttle(rate=row["rate_limit"], period=row["rate_window_ms"] / 1000)
    key_throttle = None
    if row["key_rate_limit"] is not None:
        key_throttle = Throttle(rate=row["key_rate_limit"], period=row["key_rate_window_ms"] / 1000)
    return Queue(
        name=row["name"],
        paused=bool(row["paused"]),
        draining=bool(row["draining"]),
        max_concurrency=row["max_concurrency"],
        throttle=throttle,
        fairness=row["fairness"],
        key_concurrency=row["key_concurrency"],
        key_throttle=key_throttle,
        counts=QueueCounts(**counts),
        totals=QueueTotals()
        if totals is None
        else QueueTotals(
            enqueued=totals["enqueued"],
            completed=totals["completed"],
            failed=totals["failed"],
            dead=totals["dead"],
        ),
        oldest_pending_age=None
        if oldest_pending_ms is None
        else max(0, now - oldest_pending_ms) / 1000,
    )


def batch_from_record(row: Record) -> Batch:
    """A batch's counters and callback from its `batches` row."""
    return Batch(
        id=row["id"],
        state="completed" if row["completed_at"] is not None else "running",
        total=row["total"],
        pending=row["pending"],
        succeeded=row["succeeded"],
        failed=row["failed"],
        callback_queue=row["callback_queue"],
        callback_payload=raw_json(row["callback_payload"]),
        callback_job_id=row["callback_job_id"],
        created_at=_stamp(row["created_at"]),
        completed_at=rfc3339(row["completed_at"]),
    )


def worker_from_record(row: Record, active_jobs: int) -> WorkerInfo:
    """A worker from its `workers` row and how many jobs it runs now."""
    return WorkerInfo(
        id=row["id"],
        hostname=row["hostname"],
        queues=msgspec.json.decode(row["queues"]),
        active_jobs=active_jobs,
        last_seen=_stamp(row["last_seen"]),
        started_at=_stamp(row["started_at"]),
    )


def bulk_status_from_record(row: Record) -> BulkStatus:
    """A background bulk operation's progress from its `bulk_operations` row."""
    return BulkStatus(
        id=row["id"],
        action=row["action"],
        status=row["status"],
        estimated_total=row["estimated_total"],
        affected=row["affected"],
        skipped=row["skipped"],
        errors=row["errors"],
        created_at=_stamp(row["created_at"]),
        finished_at=rfc3339(row["finished_at"]),
    )


def schedule_from_record(row: Record) -> Schedule:
    """A cron schedule from its `schedules` row (a paused schedule shows no next run)."""
    return Schedule(
        id=row["id"],
        name=row["name"],
        queue=row["queue"],
        cron=row["cron"],
        timezone=row["timezone"],
        payload=raw_json(row["payload"]),
        priority=_PRIORITY_NAMES[row["priority"]],  # type: ignore[arg-type]
        max_retries=row["max_retries"],
        tags=msgspec.json.decode(row["tags"]),
        key=row["key"],
        paused=bool(row["paused"]),
        last_run=rfc3339(row["last_run"]),
        next_run=None if row["paused"] else rfc3339(row["next_run"]),
        created_at=_stamp(row["created_at"]),
    )


def group_errors(rows: Iterable[Record]) -> dict[str, list[JobError]]:
    """Error histories by job id from `job_errors` rows that carry `job_id`, in row order."""
    errors: dict[str, list[JobError]] = {}
    for row in rows:
        errors.setdefault(row["job_id"], []).append(job_error_from_record(row))
    return errors
