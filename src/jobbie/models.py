"""Wire types of the HTTP API, shared by server and client.

Requests carry their bounds as `msgspec.Meta` so that decoding validates them and the OpenAPI
document shows them. Responses always carry every documented field (null when unset).
Timestamps on the wire are RFC 3339 strings; durations in responses are seconds.

Every model has a docstring and every field an attribute docstring (the string literal under
it); both go into the OpenAPI document (server/fielddocs.py), and a test fails without them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType, field

from jobbie.wirenum import (
    DURATION_PATTERN,
    MAX_DURATION_S,
    PriorityValue,
    WholeNumber,
    plain_fields,
    whole,
)

# The lookahead stops `$` from accepting a trailing newline.
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9._:-]{1,200}$(?!\n)"
CRON_PATTERN = r"^\s*(@[a-z]+|\S+(\s+\S+){4})\s*$(?!\n)"

QueueName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=QUEUE_NAME_PATTERN,
        description="1-200 characters of [A-Za-z0-9._:-]",
    ),
]
PriorityName = Literal["critical", "high", "normal"]
BackoffName = Literal["none", "fixed", "linear", "exponential"]
BackendName = Literal["sqlite", "postgres"]
StateName = Literal["scheduled", "pending", "active", "completed", "retrying", "dead", "cancelled"]
Duration = (
    Annotated[float, Meta(ge=0, le=MAX_DURATION_S, description="seconds")]
    | Annotated[
        str,
        Meta(
            min_length=1,
            max_length=32,
            pattern=DURATION_PATTERN,
            description="a number with a unit: ms, s (the default), m, h, d; e.g. 500ms, 1.5s, 2d",
        ),
    ]
)
Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 with a time zone")]
WorkerId = Annotated[str, Meta(min_length=1, max_length=200)]
# A job's fairness key: the tenant (customer, account...) its queue serves fairly and limits.
JobKey = Annotated[str, Meta(min_length=1, max_length=200, description="1-200 characters")]
FairnessMode = Literal["fifo", "round_robin"]
# Integer fields: bounded, and a whole-number float such as 3.0 counts (jobbie.wirenum).
# Type checkers see plain ints; the running code decodes through the bounded types.
if TYPE_CHECKING:
    PriorityIn = PriorityName | int
    Attempt = int
    MaxRetries = int
    FetchCount = int
    Concurrency = int
    Rate = int
    AttemptFilter = int
    PageLimit = int
else:
    PriorityIn = PriorityValue
    Attempt = whole(1, 1_000_000)
    MaxRetries = whole(0, 1000)
    FetchCount = whole(1, 1000)
    Concurrency = whole(1, 1_000_000)
    Rate = whole(1, 1_000_000_000)
    AttemptFilter = whole(0, 1_000_000)
    PageLimit = whole(1, 1000)
# Progress counters: any JSON number a float holds exactly as an integer.
ProgressNumber = (
    Annotated[int, Meta(ge=-(2**53), le=2**53)] | Annotated[float, Meta(ge=-(2.0**53), le=2.0**53)]
)
Tags = Annotated[
    dict[
        Annotated[str, Meta(min_length=1, max_length=128)],
        Annotated[str, Meta(max_length=1024)],
    ],
    Meta(max_length=64, description="string -> string, at most 64 entries"),
]


class _Request(Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Requests reject unknown fields, so a misspelt option is an error, not ignored."""

    def __post_init__(self) -> None:
        # Bounded numbers and priorities decode as subclasses of int and str (wirenum.py);
        # the rest of the server gets plain values, which msgspec and SQLite take as they are.
        for name in plain_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, WholeNumber):
                setattr(self, name, int(value))
            elif isinstance(value, PriorityValue):
                setattr(self, name, str(value))


class _Response(Struct, kw_only=True):
    """Responses encode every field, null included."""


# --- worker protocol: requests ---------------------------------------------------------------


class EnqueueRequest(_Request):
    """A job to enqueue: its queue, payload and options (`POST /api/v1/enqueue`)."""

    queue: QueueName
    """The queue to put the job on; created on first use."""
    payload: Raw | UnsetType = UNSET
    """Any JSON value handed to the worker (at most 1 MiB); null when absent."""
    priority: PriorityIn | None = None
    """critical, high or normal (the default); higher priorities are fetched first."""
    unique_key: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    """Only one unfinished job per queue and key: a duplicate answers 200 with the existing job."""
    unique_period: Duration | None = None
    """How long the unique key is held, at most (default 1 h); needs `unique_key`."""
    max_retries: MaxRetries | None = None
    """How many times a failed job is retried (default 3); it runs at most max_retries + 1 times."""
    retry_backoff: BackoffName | None = None
    """Delay between retries: none, fixed, linear or exponential (the default)."""
    retry_base_delay: Duration | None = None
    """Base of the backoff (default 5 s)."""
    retry_max_delay: Duration | None = None
    """Cap of the backoff (default 10 min)."""
    scheduled_at: Timestamp | None = None
    """Run no earlier than this time (the job is scheduled until then); not with `delay`."""
    delay: Duration | None = None
    """Run no earlier than this long from now; not with `scheduled_at`."""
    expire_after: Duration | None = None
    """Dead with error `expired` if not started within this long of its creation."""
    tags: Tags | None = None
    """Labels to find the job by (search `tags`)."""
    key: JobKey | None = None
    """Its fairness key (a tenant): round-robin queues serve keys in turn; per-key limits apply."""


class BatchOptions(_Request):
    """Makes the jobs of a batch enqueue a tracked batch, with an optional callback job."""

    callback_queue: QueueName | None = None
    """Queue of the callback job enqueued once every job of the batch has finished; none without
    it."""
    callback_payload: Raw | UnsetType = UNSET
    """Any JSON value passed to the callback job as `callback_payload`."""


class EnqueueBatchRequest(_Request):
    """Jobs to insert atomically, optionally tracked as a batch (`POST /api/v1/enqueue/batch`)."""

    jobs: Annotated[list[EnqueueRequest], Meta(min_length=1, max_length=10_000)]
    """The jobs; if any is invalid the answer is 400 naming its index and nothing is inserted."""
    batch: BatchOptions | None = None
    """Track the jobs as a batch, with an optional callback."""


class FetchRequest(_Request):
    """A worker asking for work (`POST /api/v1/fetch`); long-polls up to `timeout`."""

    queues: Annotated[list[QueueName], Meta(min_length=1, max_length=100)]
    """Queues to take a job from: highest priority first across them, then oldest."""
    worker_id: WorkerId
    """The caller's name, stable for its lifetime; sent back with every ack, fail, release and
    heartbeat."""
    hostname: Annotated[str, Meta(max_length=255)] | None = None
    """The caller's host, shown in the worker list."""
    timeout: Duration | None = None
    """How long to wait for a job (0-60 s, default 30); 204 when none arrived."""
    lease_duration: Duration | None = None
    """How long the job is the caller's without a heartbeat (1 s to 1 day, default 60 s)."""
    count: FetchCount | None = None
    """Ask for up to this many jobs; the answer is then `{"jobs": [...]}`."""


class FetchNext(_Request):
    """Ack-and-fetch-next: lease up to `count` more jobs in the ack's transaction (no wait)."""

    queues: Annotated[list[QueueName], Meta(min_length=1, max_length=100)]
    """Queues to lease the next jobs from, as for a fetch."""
    count: Annotated[int, Meta(ge=1, le=1000)] = 1
    """Lease up to this many more jobs (default 1)."""
    lease_duration: Duration | None = None
    """Lease of the new jobs (default 60 s)."""
    hostname: Annotated[str, Meta(max_length=255)] | None = None
    """The worker's host, as for a fetch."""


class AckRequest(_Request):
    """Completes an attempt (`POST /api/v1/ack/{job_id}`)."""

    result: Raw | UnsetType = UNSET
    """Any JSON value stored as the job's result (at most 1 MiB)."""
    worker_id: WorkerId | None = None
    """The worker id the fetch was made with; see `attempt`."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; with `worker_id`, the call applies only while the job is
    active under both (else 409 LEASE_LOST)."""
    next: FetchNext | None = None
    """Also lease more jobs to `worker_id` in the same transaction (never waits)."""


class AckBatchItem(_Request):
    """One ack of an ack batch."""

    job_id: Annotated[str, Meta(min_length=1, max_length=100)]
    """The job to complete."""
    result: Raw | UnsetType = UNSET
    """Any JSON value stored as the job's result (at most 1 MiB)."""
    worker_id: WorkerId | None = None
    """The worker id the fetch was made with; see `attempt`."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; with `worker_id`, the call applies only while the job is
    active under both (else 409 LEASE_LOST)."""


class AckBatchRequest(_Request):
    """Several acks in one call (`POST /api/v1/ack/batch`); each succeeds or fails on its own."""

    acks: Annotated[list[AckBatchItem], Meta(min_length=1, max_length=1000)]
    """The acks, 1 to 1000."""
    worker_id: WorkerId | None = None  # needed with `next`: the owner of the new leases
    """The worker the `next` jobs are leased to (needed with `next`)."""
    next: FetchNext | None = None
    """Also lease more jobs to `worker_id` in the same transaction (never waits)."""


class FailRequest(_Request):
    """Fails an attempt (`POST /api/v1/fail/{job_id}`): the job retries with backoff or dies."""

    error: str
    """What went wrong, one line; kept in the job's errors and `last_error`."""
    backtrace: str | None = None
    """A stack trace or other detail (at most 1 MiB)."""
    worker_id: WorkerId | None = None
    """The worker id the fetch was made with; see `attempt`."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; with `worker_id`, the call applies only while the job is
    active under both (else 409 LEASE_LOST)."""


class FailBatchItem(_Request):
    """One fail of a fail batch."""

    job_id: Annotated[str, Meta(min_length=1, max_length=100)]
    """The job to fail."""
    error: str
    """What went wrong, one line."""
    backtrace: str | None = None
    """A stack trace or other detail."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; with the batch's `worker_id`, the fence of this fail."""


class FailBatchRequest(_Request):
    """Several fails in one call (`POST /api/v1/fail/batch`); each succeeds or fails on its own."""

    fails: Annotated[list[FailBatchItem], Meta(min_length=1, max_length=1000)]
    """The fails, 1 to 1000."""
    worker_id: WorkerId | None = None
    """The worker id the fetches were made with; fences every entry."""


class Progress(_Request):
    """How far a running job has got, as reported by its worker."""

    current: ProgressNumber | None = None
    """Work done so far, in the job's own unit."""
    total: ProgressNumber | None = None
    """Work to do in all, in the same unit."""
    message: Annotated[str, Meta(max_length=10_000)] | None = None
    """What the job is doing now."""


class HeartbeatEntry(_Request):
    """What a heartbeat reports for one running job."""

    progress: Progress | None = None
    """The job's progress, shown on the job."""
    checkpoint: Raw | UnsetType = UNSET
    """Any JSON value saved on the job and handed to its next attempt (at most 1 MiB)."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; a different one answers `lost`."""


class HeartbeatRequest(_Request):
    """Extends the leases of running jobs, with their progress and checkpoints (`POST
    /api/v1/heartbeat`)."""

    jobs: Annotated[dict[str, HeartbeatEntry], Meta(max_length=10_000)]
    """Job id -> what to report for it; an empty object only records the worker as alive."""
    worker_id: WorkerId | None = None
    """The worker id the fetches were made with; a job held by another worker answers `lost`."""


class ReleaseRequest(_Request):
    """Hands an active job back without using a retry (`POST /api/v1/release/{job_id}`)."""

    worker_id: WorkerId | None = None
    """The worker id the fetch was made with; see `attempt`."""
    attempt: Attempt | None = None
    """The attempt the fetch returned; with `worker_id`, the call applies only while the job is
    active under both (else 409 LEASE_LOST)."""
    checkpoint: Raw | UnsetType = UNSET
    """Replaces the job's checkpoint before it goes back to pending."""


# --- worker protocol: responses --------------------------------------------------------------


class EnqueueResponse(_Response):
    """The enqueued job, or the existing one for a unique duplicate."""

    job_id: str
    """The job's id (`job_` + ULID)."""
    status: StateName
    """The job's state after the call: pending or scheduled (a duplicate's current state)."""
    unique_existing: bool
    """True when a unique key matched an unfinished job and nothing was inserted."""


class EnqueueBatchResponse(_Response):
    """The ids of a batch enqueue, in request order."""

    job_ids: list[str]
    """One id per job, in request order (a unique duplicate's existing id)."""
    batch_id: str | None
    """The batch's id, or null without a `batch` object."""


class FetchedJob(_Response):
    """A job leased to the caller by a fetch."""

    job_id: str
    """The job's id."""
    queue: str
    """The queue it came from."""
    payload: Raw
    """The payload given at enqueue."""
    attempt: int
    """This attempt's number, from 1; send it back with every call about the job."""
    max_retries: int
    """How many retries the job has in all."""
    lease_duration: float
    """Seconds the lease lasts without a heartbeat."""
    checkpoint: Raw
    """The checkpoint saved by an earlier attempt, or null."""
    tags: dict[str, str]
    """The job's tags."""
    priority: PriorityName
    """critical, high or normal."""
    created_at: str
    """When the job was enqueued."""
    key: str | None = None
    """Its fairness key, if any."""


class FetchManyResponse(_Response):
    """The answer to a fetch with `count`: one or more jobs."""

    jobs: list[FetchedJob]
    """The jobs leased, one to `count`."""


class StatusResponse(_Response):
    """The state an action left the job in."""

    status: str
    """The job's state after the action (e.g. completed, cancelled, pending), or cancelling /
    deleted."""


class AckBatchResult(_Response):
    """The outcome of one ack of an ack batch: a `status`, or an `error` with its `code`."""

    job_id: str
    """The job of this ack."""
    status: str | None = None
    """The job's state after the ack, when it succeeded."""
    error: str | None = None
    """Why the ack was refused, when it was."""
    code: str | None = None
    """The error code (e.g. LEASE_LOST, NOT_FOUND), when refused."""


class AckBatchResponse(_Response):
    """One result per ack, in request order."""

    results: list[AckBatchResult]
    """One entry per ack, in request order."""
    next: list[FetchedJob] | UnsetType = UNSET
    """The jobs leased with the acks, only when the request asked for `next` (`[]` when none
    was ready)."""


class AckResponse(_Response):
    """The answer to an ack: its status, and the jobs leased with it when `next` was asked."""

    status: str
    """The acked job's state: completed or cancelled."""
    next: list[FetchedJob] | UnsetType = UNSET
    """The jobs leased with the ack, only when the request asked for `next` (`[]` when none was
    ready)."""


class FailResponse(_Response):
    """Where a failed attempt sent the job."""

    status: Literal["retrying", "dead", "cancelled"]
    """retrying (it runs again), dead (no retries left, or expired) or cancelled."""
    next_attempt_at: str | None
    """When it runs again; null when it will not."""
    attempts_remaining: int
    """How many more times it may run (0 when dead)."""


class FailBatchResult(_Response):
    """One fail of a batch: the single fail's answer, or `error` and `code` for it alone."""

    job_id: str
    """The job of this fail."""
    status: Literal["retrying", "dead", "cancelled"] | UnsetType = UNSET
    """Where the job went, when the fail succeeded."""
    next_attempt_at: str | UnsetType | None = UNSET
    """When it runs again; null when it will not."""
    attempts_remaining: int | UnsetType = UNSET
    """How many more times it may run."""
    error: str | UnsetType = UNSET
    """Why this fail was refused, when it was."""
    code: str | UnsetType = UNSET
    """The error code (e.g. LEASE_LOST), when refused."""


class FailBatchResponse(_Response):
    """One result per fail, in request order."""

    results: list[FailBatchResult]
    """One entry per fail, in request order."""


class HeartbeatJobStatus(_Response):
    """The heartbeat's answer for one job."""

    status: Literal["ok", "cancel", "lost"]
    """ok: keep going; cancel: stop, then ack or fail; lost: stop, the job is no longer yours."""


class HeartbeatResponse(_Response):
    """The heartbeat's answer for each job it named."""

    jobs: dict[str, HeartbeatJobStatus]
    """Job id -> its status, for every job the heartbeat named."""


# --- jobs and queues ---------------------------------------------------------------------------


class JobProgress(_Response):
    """A running job's last reported progress."""

    current: int | float | None = None
    """Work done so far, in the job's own unit."""
    total: int | float | None = None
    """Work to do in all."""
    message: str | None = None
    """What the job was doing at its last report."""


class JobError(_Response):
    """One failed attempt of a job."""

    attempt: int
    """The attempt that failed."""
    error: str
    """The error it failed with (`lease_expired` when its lease ran out)."""
    backtrace: str | None
    """The detail the worker sent, if any."""
    at: str
    """When it failed."""


class JobEvent(_Response):
    """One entry of a job's event timeline."""

    id: int
    """The event's id, increasing."""
    type: str
    """What happened: enqueued, started, completed, failed, retrying, dead, cancelled, expired,
    moved, promoted, reclaimed, released..."""
    at: str
    """When it happened."""
    data: Any
    """Details of the event (e.g. the attempt, the error, the queues of a move)."""


class WorkerRef(_Response):
    """The worker that holds (or last held) a job."""

    id: str
    """The worker's id."""
    hostname: str | None
    """The worker's host, if it said."""


class Job(_Response):
    """A job with every field."""

    id: str
    """The job's id (`job_` + ULID)."""
    queue: str
    """The queue it is on."""
    state: StateName
    """scheduled, pending, active, completed, retrying, dead or cancelled."""
    payload: Raw
    """The payload given at enqueue."""
    priority: PriorityName
    """critical, high or normal."""
    attempt: int
    """How many times it has been fetched (0 before the first fetch)."""
    max_retries: int
    """How many times it is retried after failures."""
    retry_backoff: BackoffName
    """none, fixed, linear or exponential."""
    retry_base_delay: float
    """Base of the backoff, in seconds."""
    retry_max_delay: float
    """Cap of the backoff, in seconds."""
    unique_key: str | None
    """Its unique key, if any."""
    unique_period: float | None
    """How long its unique key is held, in seconds."""
    batch_id: str | None
    """The batch it belongs to, if any."""
    tags: dict[str, str]
    """Its tags."""
    key: str | None
    """Its fairness key, if any."""
    progress: JobProgress | None
    """Its last reported progress."""
    checkpoint: Raw
    """Its last saved checkpoint."""
    result: Raw
    """What its worker acked it with."""
    last_error: str | None
    """The error of its last failed attempt."""
    worker: WorkerRef | None
    """The worker running it, or that last ran it."""
    created_at: str
    """When it was enqueued."""
    scheduled_at: str | None
    """When it is (or was) due, for a delayed or retried job."""
    started_at: str | None
    """When its current or last attempt started."""
    completed_at: str | None
    """When it completed."""
    failed_at: str | None
    """When its last attempt failed."""
    expire_at: str | None
    """Its deadline to start (from `expire_after`)."""
    lease_expires_at: str | None
    """When the current lease ends without a heartbeat."""
    cancel_requested: bool
    """True when a cancel was asked while it ran."""
    errors: list[JobError] = field(default_factory=list)
    """Every failed attempt, oldest first."""


class JobDetail(Job):
    """A job with every field, its errors and its event timeline (`GET /api/v1/jobs/{job_id}`)."""

    events: list[JobEvent] = field(default_factory=list)
    """Its event timeline, oldest first."""


class Throttle(_Response):
    """A queue's rate limit: at most `rate` jobs handed out per sliding `period`."""

    rate: int
    """Jobs handed out per window, at most."""
    period: float
    """The window, in seconds."""


class QueueCounts(_Response):
    """A queue's jobs by state."""

    scheduled: int = 0
    """Jobs waiting for their time."""
    pending: int = 0
    """Jobs ready to be fetched."""
    active: int = 0
    """Jobs leased to workers."""
    retrying: int = 0
    """Jobs waiting out their backoff."""
    completed: int = 0
    """Jobs completed (until retention prunes them)."""
    dead: int = 0
    """Jobs that died (until retention prunes them)."""
    cancelled: int = 0
    """Jobs cancelled (until retention prunes them)."""


class QueueTotals(_Response):
    """A queue's running totals since it was created."""

    enqueued: int = 0
    """Jobs enqueued."""
    completed: int = 0
    """Jobs completed."""
    failed: int = 0
    """Failed attempts: fail calls and expired leases."""
    dead: int = 0
    """Jobs that died."""


class Queue(_Response):
    """A queue with its configuration, counts and totals."""

    name: str
    """The queue's name."""
    paused: bool
    """True when fetches skip it."""
    draining: bool
    """True while a drain waits for its active jobs to end."""
    max_concurrency: int | None
    """At most this many active jobs at once; null: unlimited."""
    throttle: Throttle | None
    """Its rate limit, if any."""
    fairness: FairnessMode
    """fifo (the default) or round_robin: keys served in turn, least recently served first."""
    key_concurrency: int | None
    """At most this many active jobs per key; null: no per-key limit."""
    key_throttle: Throttle | None
    """Its per-key rate limit, if any."""
    counts: QueueCounts
    """Its jobs by state."""
    totals: QueueTotals
    """Its running totals."""
    oldest_pending_age: float | None
    """Seconds the oldest pending job has waited; null when none waits."""


class QueueList(_Response):
    """Every queue the server knows."""

    queues: list[Queue]
    """Every queue."""


class Health(_Response):
    """The server's health."""

    status: str
    """ok, or the reason the server cannot serve."""


class Readiness(_Response):
    """`/readyz`: whether writes work now (`database`) and the writer runs (`writer`)."""

    status: Literal["ok", "unavailable"]
    """ok, or unavailable (answered 503) while writes fail or shutdown has begun."""
    database: Literal["ok", "failing"]
    """ok, or failing while writes fail."""
    writer: Literal["running", "stopped"]
    """running, or stopped."""
    error: str | None = None
    """The last database error while writes fail."""


class ErrorBody(_Response):
    """The body of every error answer."""

    error: str
    """What went wrong, for people."""
    code: str
    """What went wrong, for programs: VALIDATION_ERROR, UNAUTHORIZED, NOT_FOUND, CONFLICT,
    LEASE_LOST, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, INTERNAL, UNAVAILABLE..."""


def encode(value: Any) -> bytes:
    """JSON-encode a wire value."""
    return msgspec.json.encode(value)


# --- queue configuration -----------------------------------------------------------------------


class ConcurrencyRequest(_Request):
    """Limits how many of a queue's jobs (`/concurrency`) or of each of its keys
    (`/key-concurrency`) may be active at once, across all workers."""

    max: Concurrency | None
    """At most this many active jobs at once (1: a singleton queue or key); null: unlimited."""


class ThrottleRequest(_Request):
    """Limits how many of a queue's jobs (`/throttle`) or of each of its keys (`/key-throttle`)
    are handed out per sliding window."""

    rate: Rate
    """Jobs handed out per window, at most."""
    period: Duration
    """The sliding window (100 ms to 1 day)."""


class FairnessRequest(_Request):
    """How a queue orders its ready jobs across keys."""

    mode: FairnessMode
    """fifo: oldest first; round_robin: keys in turn (FIFO within a key); priority wins first."""


class QueueKey(_Response):
    """One key of a queue with its backlog."""

    key: str
    """The key."""
    pending: int
    """Its jobs ready to be fetched."""
    active: int
    """Its jobs leased to workers."""
    completed_last_minute: int
    """Its jobs completed in the last minute (a sliding estimate from per-minute counts)."""


class QueueKeyList(_Response):
    """A queue's busiest keys, most pending first (`GET /api/v1/queues/{name}/keys`)."""

    keys: list[QueueKey]
    """At most `limit` keys; keys with no pending or active jobs are left out."""


# --- search --------------------------------------------------------------------------------------

SortField = Literal[
    "created_at", "priority", "started_at", "completed_at", "scheduled_at", "attempt"
]


class SearchRequest(_Request):
    """Filters are optional and AND-combined; `*_after` and `*_before` are exclusive."""

    queue: QueueName | list[QueueName] | None = None
    """Jobs on this queue, or on any of these."""
    state: StateName | list[StateName] | None = None
    """Jobs in this state, or in any of these."""
    priority: PriorityName | list[PriorityName] | None = None
    """Jobs of this priority, or of any of these."""
    tags: Tags | None = None
    """Jobs carrying every one of these tags."""
    payload_contains: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    """Case-sensitive substring of the payload's JSON text."""
    payload_jq: Annotated[str, Meta(min_length=1, max_length=4_000)] | None = None
    """A jq-style condition over the payload, e.g. `.plan == "pro" and (.items | length > 2)`."""
    created_after: Timestamp | None = None
    """Enqueued after this time."""
    created_before: Timestamp | None = None
    """Enqueued before this time."""
    scheduled_after: Timestamp | None = None
    """Due after this time."""
    scheduled_before: Timestamp | None = None
    """Due before this time."""
    started_after: Timestamp | None = None
    """Last started after this time."""
    started_before: Timestamp | None = None
    """Last started before this time."""
    completed_after: Timestamp | None = None
    """Completed after this time."""
    completed_before: Timestamp | None = None
    """Completed before this time."""
    expire_after: Timestamp | None = None
    """Expiring after this time."""
    expire_before: Timestamp | None = None
    """Expiring before this time."""
    attempt_min: AttemptFilter | None = None
    """At least this many attempts."""
    attempt_max: AttemptFilter | None = None
    """At most this many attempts."""
    unique_key: Annotated[str, Meta(max_length=1000)] | None = None
    """With this unique key."""
    key: JobKey | None = None
    """With this fairness key."""
    batch_id: Annotated[str, Meta(max_length=100)] | None = None
    """In this batch."""
    worker_id: Annotated[str, Meta(max_length=200)] | None = None
    """Running, or last run, on this worker."""
    has_errors: bool | None = None
    """True: with at least one failed attempt; false: with none."""
    error_contains: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    """With an error containing this text."""
    job_id_prefix: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    """Whose id starts with this."""
    # The failure kind shown on the console's failures page (see jobbie.store.signature).
    error_signature: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    """Jobs whose last failure has this signature (see the failures page)."""
    sort: SortField | None = None
    """Sort key (default created_at)."""
    order: Literal["asc", "desc"] | None = None
    """asc or desc (default desc)."""
    cursor: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    """The `cursor` of the previous page, to get the next one."""
    limit: PageLimit | None = None
    """Jobs per page (1-1000, default 50)."""


class SearchResponse(_Response):
    """One page of search results."""

    jobs: list[Job]
    """This page's jobs."""
    total: int
    """How many jobs match in all, counted up to 10,000: past that `total` is 10,000 and
    `total_capped` is true. When `timed_out`, only the matches found before the time limit."""
    cursor: str | None
    """Pass it back for the next page; null on the last page."""
    has_more: bool
    """True when more pages follow."""
    duration_ms: float
    """How long the search took on the server."""
    total_capped: bool = False
    """True when more than 10,000 jobs match: counting stopped there (`total` is 10,000)."""
    timed_out: bool = False
    """True when the search hit the server's time limit (`--search-timeout`, 2 s by default;
    payload and tag filters read every job the indexed filters leave): `jobs` holds the
    matches found before it (maybe none) and `cursor` continues after the last of them.
    Narrow the search with queue, state or a time range to get a complete answer."""


# --- job and queue actions, bulk, batches, workers ------------------------------------------------


class MoveRequest(_Request):
    """Moves a job that is not running to another queue."""

    queue: QueueName
    """The queue to move the job to."""


class ClearResponse(_Response):
    """How many waiting jobs a clear deleted."""

    cleared: int
    """Waiting jobs deleted (pending, scheduled, retrying)."""


class DeleteQueueResponse(_Response):
    """How many jobs were deleted with the queue."""

    deleted_jobs: int
    """Jobs deleted with the queue."""


BulkAction = Literal["retry", "delete", "cancel", "move", "requeue", "change_priority"]


class BulkRequest(_Request):
    """One action on many jobs, named by `job_ids` or selected by `filter` (`POST
    /api/v1/jobs/bulk`)."""

    action: BulkAction
    """retry, delete, cancel, move, requeue or change_priority."""
    job_ids: (
        Annotated[
            list[Annotated[str, Meta(max_length=100)]], Meta(min_length=1, max_length=100_000)
        ]
        | None
    ) = None
    """The jobs to act on; not with `filter`."""
    filter: SearchRequest | None = None
    """Act on every job this search matches; not with `job_ids`."""
    move_to_queue: QueueName | None = None
    """Where `move` puts the jobs."""
    priority: PriorityIn | None = None
    """The new priority of `change_priority`."""
    # Count the jobs the request names and change nothing: answered as {"matched": n}.
    dry_run: bool = False
    """Count the jobs the action would consider (answered `{"matched": n}`) and change nothing."""

    # Rules beyond the fields, stated in the OpenAPI document (server/openapi.py merges them).
    json_schema_rules: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["job_ids"]}, {"required": ["filter"]}],
        "allOf": [
            {
                "if": {"properties": {"action": {"const": "move"}}},
                "then": {"required": ["move_to_queue"]},
            },
            {
                "if": {"properties": {"action": {"const": "change_priority"}}},
                "then": {"required": ["priority"]},
            },
        ],
        "description": "Give either job_ids or filter. move needs move_to_queue,"
        " change_priority needs priority.",
    }


class BulkResponse(_Response):
    """The outcome of a bulk action done at once."""

    affected: int
    """Jobs the action changed."""
    skipped: int
    """Jobs in a state the action does not apply to."""
    errors: int
    """Jobs that could not be acted on (e.g. unknown ids)."""
    duration_ms: float
    """How long it took on the server."""


class BulkAccepted(_Response):
    """A bulk action over 10,000 jobs, started in the background (answered 202)."""

    bulk_operation_id: str
    """The operation's id (`bulk_` + ULID)."""
    status: Literal["running", "completed", "failed"]
    """running, completed or failed."""
    estimated_total: int
    """Jobs matched when it started."""
    progress_url: str
    """Where to follow it."""


class BulkStatus(_Response):
    """The progress of a background bulk action (`GET /api/v1/bulk/{bulk_id}`)."""

    id: str
    """The operation's id."""
    action: str
    """The bulk action."""
    status: Literal["running", "completed", "failed"]
    """running, completed or failed."""
    estimated_total: int
    """Jobs matched when it started."""
    affected: int
    """Jobs changed so far."""
    skipped: int
    """Jobs skipped so far."""
    errors: int
    """Jobs that could not be acted on."""
    created_at: str
    """When it started."""
    finished_at: str | None
    """When it ended; null while it runs."""


class Batch(_Response):
    """A batch's counters and callback (`GET /api/v1/batches/{batch_id}`)."""

    id: str
    """The batch's id (`batch_` + ULID)."""
    state: Literal["running", "completed"]
    """running until every job has finished, then completed."""
    total: int
    """Jobs in the batch."""
    pending: int
    """Jobs not finished yet."""
    succeeded: int
    """Jobs completed."""
    failed: int
    """Jobs that died, were cancelled or deleted."""
    callback_queue: str | None
    """Queue of the callback job, if any."""
    callback_payload: Raw
    """The value passed to the callback."""
    callback_job_id: str | None
    """The callback job, once enqueued."""
    created_at: str
    """When the batch was enqueued."""
    completed_at: str | None
    """When its last job finished."""


class WorkerInfo(_Response):
    """A worker the server has seen recently."""

    id: str
    """The worker's id."""
    hostname: str | None
    """Its host, if it said."""
    queues: list[str]
    """The queues it fetches from."""
    active_jobs: int
    """Jobs it runs now."""
    last_seen: str
    """Its last fetch or heartbeat."""
    started_at: str
    """When it was first seen."""


class WorkerList(_Response):
    """The workers seen recently."""

    workers: list[WorkerInfo]
    """The workers seen recently."""


class ClusterNode(_Response):
    """A server process serving this database."""

    id: str
    """The server's id (host:pid)."""
    address: str | None
    """Where it listens."""
    leader: bool
    """True for the server that runs the scheduler."""
    last_seen: str
    """When it last reported."""


class ClusterStatus(_Response):
    """How the server runs: its mode, backend and nodes."""

    mode: Literal["single", "cluster"]
    """single: one server; cluster: several on one database."""
    backend: BackendName
    """The database: sqlite or postgres."""
    nodes: list[ClusterNode]
    """The servers."""


# --- cron schedules ---------------------------------------------------------------------------


class ScheduleRequest(_Request):
    """A cron schedule: a job to enqueue each time the expression fires."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    """A name for people."""
    queue: QueueName
    """The queue each job is enqueued on."""
    cron: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=200,
            pattern=CRON_PATTERN,
            description="5 fields (minute hour day-of-month month day-of-week) or an @alias;"
            " it must fire at least once",
        ),
    ]
    """When to fire."""
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    """IANA time zone the expression is read in (default UTC)."""
    payload: Raw | UnsetType = UNSET
    """Payload of each job enqueued."""
    priority: PriorityIn | None = None
    """Priority of each job (default normal)."""
    max_retries: MaxRetries | None = None
    """Retries of each job (default 3)."""
    tags: Tags | None = None
    """Tags of each job."""
    key: JobKey | None = None
    """Fairness key of each job."""
    paused: bool = False
    """Create it paused: it fires only once resumed."""


class Schedule(_Response):
    """A cron schedule with its last and next run."""

    id: str
    """The schedule's id (`sched_` + ULID)."""
    name: str
    """Its name."""
    queue: str
    """The queue each job is enqueued on."""
    cron: str
    """Its cron expression."""
    timezone: str
    """The time zone the expression is read in."""
    payload: Raw
    """Payload of each job."""
    priority: PriorityName
    """Priority of each job."""
    max_retries: int
    """Retries of each job."""
    tags: dict[str, str]
    """Tags of each job."""
    key: str | None
    """Fairness key of each job, if any."""
    paused: bool
    """True when it does not fire."""
    last_run: str | None
    """When it last fired."""
    next_run: str | None
    """When it fires next; null when paused."""
    created_at: str
    """When it was created."""


class ScheduleList(_Response):
    """Every cron schedule."""

    schedules: list[Schedule]
    """Every schedule."""


class EventMessage(_Response):
    """One lifecycle event, as streamed by `GET /api/v1/events`."""

    id: int
    """The event's id; resume a stream after it with `Last-Event-ID`."""
    type: str
    """What happened (see JobEvent.type)."""
    job_id: str | None
    """The job it happened to."""
    queue: str | None
    """The job's queue."""
    data: Any
    """Details of the event."""
    at: str
    """When it happened."""


# --- the web console -----------------------------------------------------------------------------


class FailureGroup(_Response):
    """Dead and retrying jobs that failed the same way (one error signature)."""

    signature: str
    """The error's first line with ids, numbers and quoted values replaced."""
    count: int
    """Jobs in the group."""
    queues: list[str]
    """Queues they are on."""
    first_seen: str | None
    """The oldest failure of the group."""
    last_seen: str | None
    """The newest failure of the group."""


class RunScheduleResponse(_Response):
    """The job a schedule's manual run enqueued."""

    job_id: str
    """The job enqueued."""


class DryRunResponse(_Response):
    """How many jobs a bulk action would consider (`dry_run`), without acting."""

    matched: int
    """Jobs the filter or ids match."""


class ExportRequest(SearchRequest):
    """A search's filter (its cursor and limit are ignored: every match is exported)."""

    format: Literal["ndjson", "csv"] = "ndjson"
    """ndjson (one job per line, the default) or csv."""


class AuditEntry(_Response):
    """One management action: who, what, on which jobs or filter, how many jobs, when."""

    id: int
    """The entry's id, increasing."""
    at: str
    """When the action was taken."""
    actor: str
    """Who: the key's name, a short fingerprint of an unnamed key, or anonymous."""
    action: str
    """What was done (e.g. queue.pause, job.retry, jobs.bulk, schedule.create)."""
    target: str
    """The queue, job, schedule or filter acted on."""
    affected: int | None
    """Jobs affected, when known."""
    source: Literal["api", "console"]
    """api or console."""


class AuditList(_Response):
    """A page of the audit log, newest first."""

    entries: list[AuditEntry]
    """The entries, newest first."""
    next_before: int | None
    """Pass as `before` for the next (older) page; null on the last page."""
