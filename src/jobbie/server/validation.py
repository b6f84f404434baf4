"""Turning decoded API requests into store parameters: defaults, bounds and size limits.

msgspec has already checked types and the simple bounds declared on the models; this module
adds what needs code (durations, exclusive options, sizes) and stays free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from msgspec import UNSET, UnsetType

from jobbie.errors import PayloadTooLarge, ValidationError
from jobbie.models import (
    AckBatchItem,
    AckRequest,
    BulkRequest,
    EnqueueBatchRequest,
    EnqueueRequest,
    FailRequest,
    FetchRequest,
    HeartbeatRequest,
    ReleaseRequest,
    ScheduleRequest,
)
from jobbie.store.cron import check_cron, zone
from jobbie.store.params import (
    AckParams,
    BatchSpec,
    BulkSpec,
    FailParams,
    Fence,
    FetchParams,
    HeartbeatJob,
    HeartbeatParams,
    NewJob,
    ReleaseParams,
    ScheduleSpec,
)
from jobbie.store.rules import (
    DEFAULT_LEASE_MS,
    DEFAULT_RETRY,
    DEFAULT_UNIQUE_PERIOD_MS,
    RetryPolicy,
)
from jobbie.store.search import search_filter
from jobbie.store.states import Backoff, Priority
from jobbie.timeutil import DAY_MS, SECOND_MS, datetime_to_ms, duration_ms

YEAR_MS = 365 * DAY_MS
DEFAULT_FETCH_TIMEOUT_MS = 30_000
MAX_FETCH_TIMEOUT_MS = 60_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits applied to JSON values inside requests."""

    max_payload_bytes: int = 1 << 20


def json_text(value: msgspec.Raw | UnsetType, field: str, limits: Limits) -> str:
    """Compact JSON text of a raw value (absent = null), refused when over the payload limit."""
    if value is UNSET:
        return "null"
    if len(value) > limits.max_payload_bytes:
        raise PayloadTooLarge(f"{field}: over the {limits.max_payload_bytes} byte limit")
    return msgspec.json.format(value, indent=-1).decode()


def text_field(value: str, field: str, limits: Limits) -> str:
    if len(value) > limits.max_payload_bytes:
        raise PayloadTooLarge(f"{field}: over the {limits.max_payload_bytes} byte limit")
    return value


def new_job(req: EnqueueRequest, limits: Limits) -> NewJob:
    """Validate an enqueue request and fill in the defaults."""
    if req.scheduled_at is not None and req.delay is not None:
        raise ValidationError("scheduled_at and delay are mutually exclusive")
    if req.unique_period is not None and req.unique_key is None:
        raise ValidationError("unique_period requires unique_key")
    unique_period_ms = None
    if req.unique_key is not None:
        unique_period_ms = (
            DEFAULT_UNIQUE_PERIOD_MS
            if req.unique_period is None
            else duration_ms(req.unique_period, "unique_period", SECOND_MS, YEAR_MS)
        )
    return NewJob(
        queue=req.queue,
        payload=json_text(req.payload, "payload", limits),
        priority=Priority.parse(req.priority if req.priority is not None else "normal").value,
        retry=retry_policy(req),
        unique_key=req.unique_key,
        unique_period_ms=unique_period_ms,
        scheduled_at=None if req.scheduled_at is None else datetime_to_ms(req.scheduled_at),
        delay_ms=None if req.delay is None else duration_ms(req.delay, "delay", 0, YEAR_MS),
        expire_after_ms=None
        if req.expire_after is None
        else duration_ms(req.expire_after, "expire_after", SECOND_MS, YEAR_MS),
        tags=msgspec.json.encode(req.tags or {}).decode(),
        key=req.key,
    )


def retry_policy(req: EnqueueRequest) -> RetryPolicy:
    d = DEFAULT_RETRY
    return RetryPolicy(
        max_retries=d.max_retries if req.max_retries is None else req.max_retries,
        backoff=d.backoff if req.retry_backoff is None else Backoff(req.retry_backoff),
        base_delay_ms=d.base_delay_ms
        if req.retry_base_delay is None
        else duration_ms(req.retry_base_delay, "retry_base_delay", 0, YEAR_MS),
        max_delay_ms=d.max_delay_ms
        if req.retry_max_delay is None
        else duration_ms(req.retry_max_delay, "retry_max_delay", 0, YEAR_MS),
    )


def new_jobs(req: EnqueueBatchRequest, limits: Limits) -> tuple[list[NewJob], BatchSpec | None]:
    """Validate every job of a batch; an error names the job's index."""
    jobs = []
    for index, item in enumerate(req.jobs):
        try:
            jobs.append(new_job(item, limits))
        except (ValidationError, PayloadTooLarge) as exc:
            raise type(exc)(f"jobs[{index}]: {exc.message}") from None
    batch = None
    if req.batch is not None:
        batch = BatchSpec(
            callback_queue=req.batch.callback_queue,
            callback_payload=json_text(req.batch.callback_payload, "callback_payload", limits),
        )
    return jobs, batch


def bulk_spec(req: BulkRequest) -> BulkSpec:
    """Validate a bulk request: job ids or a filter (not both), and the action's options."""
    if (req.job_ids is None) == (req.filter is None):
        raise ValidationError("give either job_ids or filter")
    if req.action == "move" and req.move_to_queue is None:
        raise ValidationError("action move needs move_to_queue")
    if req.action == "change_priority" and req.priority is None:
        raise ValidationError("action change_priority needs priority")
    return BulkSpec(
        action=req.action,
        job_ids=None if req.job_ids is None else tuple(req.job_ids),
        filter=None if req.filter is None else search_filter(req.filter),
        move_to_queue=req.move_to_queue,
        priority=None if req.priority is None else Priority.parse(req.priority).value,
    )


def fetch_params(req: FetchRequest, max_bytes: int | None = None) -> tuple[FetchParams, float]:
    """Fetch parameters and the long-poll timeout in seconds."""
    timeout_ms = (
        DEFAULT_FETCH_TIMEOUT_MS
        if req.timeout is None
        else duration_ms(req.timeout, "timeout", 0, MAX_FETCH_TIMEOUT_MS)
    )
    lease_ms = (
        DEFAULT_LEASE_MS
        if req.lease_duration is None
        else duration_ms(req.lease_duration, "lease_duration", SECOND_MS, DAY_MS)
    )
    params = FetchParams(
        queues=tuple(dict.fromkeys(req.queues)),
        worker_id=req.worker_id,
        hostname=req.hostname,
        lease_ms=lease_ms,
        count=req.count or 1,
        max_bytes=max_bytes,
    )
    return params, timeout_ms / 1000


def ack_params(job_id: str, req: AckRequest | AckBatchItem, limits: Limits) -> AckParams:
    return AckParams(
        job_id=job_id,
        result=json_text(req.result, "result", limits),
        fence=Fence(worker_id=req.worker_id, attempt=req.attempt),
    )


def fail_params(job_id: str, req: FailRequest, limits: Limits) -> FailParams:
    return FailParams(
        job_id=job_id,
        error=text_field(req.error, "error", limits),
        backtrace=None if req.backtrace is None else text_field(req.backtrace, "backtrace", limits),
        fence=Fence(worker_id=req.worker_id, attempt=req.attempt),
    )


def release_params(job_id: str, req: ReleaseRequest, limits: Limits) -> ReleaseParams:
    return ReleaseParams(
        job_id=job_id,
        checkpoint=None
        if req.checkpoint is UNSET
        else json_text(req.checkpoint, "checkpoint", limits),
        fence=Fence(worker_id=req.worker_id, attempt=req.attempt),
    )


def heartbeat_params(req: HeartbeatRequest, limits: Limits) -> HeartbeatParams:
    jobs = []
    for job_id, entry in req.jobs.items():
        progress = None
        if entry.progress is not None:
            progress = json_text(
                msgspec.Raw(msgspec.json.encode(entry.progress)), "progress", limits
            )
        checkpoint = None
        if entry.checkpoint is not UNSET:
            checkpoint = json_text(entry.checkpoint, f"jobs.{job_id}.checkpoint", limits)
        jobs.append(
            HeartbeatJob(
                job_id=job_id, progress=progress, checkpoint=checkpoint, attempt=entry.attempt
            )
        )
    return HeartbeatParams(worker_id=req.worker_id, jobs=tuple(jobs))


def schedule_spec(req: ScheduleRequest, limits: Limits) -> ScheduleSpec:
    """Validate a schedule: the cron expression and the IANA time zone."""
    zone(req.timezone)
    return ScheduleSpec(
        name=req.name,
        queue=req.queue,
        cron=check_cron(req.cron, req.timezone),
        timezone=req.timezone,
        payload=json_text(req.payload, "payload", limits),
        priority=Priority.parse(req.priority if req.priority is not None else "normal").value,
        max_retries=DEFAULT_RETRY.max_retries if req.max_retries is None else req.max_retries,
        tags=msgspec.json.encode(req.tags or {}).decode(),
        key=req.key,
        paused=req.paused,
    )
