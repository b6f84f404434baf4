"""Validated, normalised inputs to store operations (durations in ms, JSON as compact text)."""

from __future__ import annotations

from dataclasses import dataclass

from jobbie.store.rules import RetryPolicy
from jobbie.store.search import SearchFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """One job to insert."""

    queue: str
    payload: str  # compact JSON text
    priority: int
    retry: RetryPolicy
    unique_key: str | None = None
    unique_period_ms: int | None = None
    scheduled_at: int | None = None  # absolute epoch ms
    delay_ms: int | None = None  # relative to the moment the store runs the insert
    expire_after_ms: int | None = None
    tags: str = "{}"  # JSON object text
    key: str | None = None  # fairness key


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSpec:
    """The optional batch row of a batch enqueue."""

    callback_queue: str | None
    callback_payload: str  # JSON text


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """The caller's claim on a lease; either part may be absent."""

    worker_id: str | None = None
    attempt: int | None = None

    @property
    def given(self) -> bool:
        return self.worker_id is not None or self.attempt is not None


NO_FENCE = Fence()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchParams:
    queues: tuple[str, ...]
    worker_id: str
    hostname: str | None
    lease_ms: int
    count: int  # how many jobs at most (1 for a single fetch)
    # Stop adding jobs once their payloads and checkpoints pass this many bytes (one job is
    # always handed out, however large).
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AckParams:
    job_id: str
    result: str  # JSON text
    fence: Fence = NO_FENCE


@dataclass(frozen=True, slots=True, kw_only=True)
class FailParams:
    job_id: str
    error: str
    backtrace: str | None = None
    fence: Fence = NO_FENCE


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseParams:
    job_id: str
    checkpoint: str | None = None  # JSON text replacing the stored checkpoint
    fence: Fence = NO_FENCE


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatJob:
    job_id: str
    progress: str | None = None  # JSON text
    checkpoint: str | None = None  # JSON text
    attempt: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatParams:
    worker_id: str | None
    jobs: tuple[HeartbeatJob, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How long finished jobs and events are kept."""

    completed_ms: int = 7 * 86_400_000
    dead_ms: int = 30 * 86_400_000
    events_ms: int = 86_400_000
    workers_ms: int = 86_400_000
    # An empty queue with its default configuration, unused this long, is forgotten.
    queues_ms: int = 7 * 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkSpec:
    """A validated bulk action over explicit job ids or a search filter's matches."""

    action: str
    job_ids: tuple[str, ...] | None = None
    filter: SearchFilter | None = None
    move_to_queue: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSpec:
    """A validated cron schedule."""

    name: str
    queue: str
    cron: str
    timezone: str
    payload: str  # JSON text
    priority: int
    max_retries: int
    tags: str  # JSON object text
    paused: bool
    key: str | None = None
