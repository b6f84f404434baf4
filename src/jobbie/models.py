"""Wire types of the HTTP API (spec sections 5 and 10), shared by server and client.

Requests carry their bounds as `msgspec.Meta` so that decoding validates them and the OpenAPI
document shows them. Responses always carry every documented field (null when unset).
Timestamps on the wire are RFC 3339 strings; durations in responses are seconds.
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
    queue: QueueName
    payload: Raw | UnsetType = UNSET
    priority: PriorityIn | None = None
    unique_key: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    unique_period: Duration | None = None
    max_retries: MaxRetries | None = None
    retry_backoff: BackoffName | None = None
    retry_base_delay: Duration | None = None
    retry_max_delay: Duration | None = None
    scheduled_at: Timestamp | None = None
    delay: Duration | None = None
    expire_after: Duration | None = None
    tags: Tags | None = None


class BatchOptions(_Request):
    callback_queue: QueueName | None = None
    callback_payload: Raw | UnsetType = UNSET


class EnqueueBatchRequest(_Request):
    jobs: Annotated[list[EnqueueRequest], Meta(min_length=1, max_length=10_000)]
    batch: BatchOptions | None = None


class FetchRequest(_Request):
    queues: Annotated[list[QueueName], Meta(min_length=1, max_length=100)]
    worker_id: WorkerId
    hostname: Annotated[str, Meta(max_length=255)] | None = None
    timeout: Duration | None = None
    lease_duration: Duration | None = None
    count: FetchCount | None = None


class FetchNext(_Request):
    """Ack-and-fetch-next: lease up to `count` more jobs in the ack's transaction (no wait)."""

    queues: Annotated[list[QueueName], Meta(min_length=1, max_length=100)]
    count: Annotated[int, Meta(ge=1, le=1000)] = 1
    lease_duration: Duration | None = None
    hostname: Annotated[str, Meta(max_length=255)] | None = None


class AckRequest(_Request):
    result: Raw | UnsetType = UNSET
    worker_id: WorkerId | None = None
    attempt: Attempt | None = None
    next: FetchNext | None = None


class AckBatchItem(_Request):
    job_id: Annotated[str, Meta(min_length=1, max_length=100)]
    result: Raw | UnsetType = UNSET
    worker_id: WorkerId | None = None
    attempt: Attempt | None = None


class AckBatchRequest(_Request):
    acks: Annotated[list[AckBatchItem], Meta(min_length=1, max_length=1000)]
    worker_id: WorkerId | None = None  # needed with `next`: the owner of the new leases
    next: FetchNext | None = None


class FailRequest(_Request):
    error: str
    backtrace: str | None = None
    worker_id: WorkerId | None = None
    attempt: Attempt | None = None


class FailBatchItem(_Request):
    job_id: Annotated[str, Meta(min_length=1, max_length=100)]
    error: str
    backtrace: str | None = None
    attempt: Attempt | None = None


class FailBatchRequest(_Request):
    fails: Annotated[list[FailBatchItem], Meta(min_length=1, max_length=1000)]
    worker_id: WorkerId | None = None


class Progress(_Request):
    current: ProgressNumber | None = None
    total: ProgressNumber | None = None
    message: Annotated[str, Meta(max_length=10_000)] | None = None


class HeartbeatEntry(_Request):
    progress: Progress | None = None
    checkpoint: Raw | UnsetType = UNSET
    attempt: Attempt | None = None


class HeartbeatRequest(_Request):
    jobs: Annotated[dict[str, HeartbeatEntry], Meta(max_length=10_000)]
    worker_id: WorkerId | None = None


class ReleaseRequest(_Request):
    worker_id: WorkerId | None = None
    attempt: Attempt | None = None
    checkpoint: Raw | UnsetType = UNSET


# --- worker protocol: responses --------------------------------------------------------------


class EnqueueResponse(_Response):
    job_id: str
    status: StateName
    unique_existing: bool


class EnqueueBatchResponse(_Response):
    job_ids: list[str]
    batch_id: str | None


class FetchedJob(_Response):
    job_id: str
    queue: str
    payload: Raw
    attempt: int
    max_retries: int
    lease_duration: float
    checkpoint: Raw
    tags: dict[str, str]
    priority: PriorityName
    created_at: str


class FetchManyResponse(_Response):
    jobs: list[FetchedJob]


class StatusResponse(_Response):
    status: str


class AckBatchResult(_Response):
    job_id: str
    status: str | None = None
    error: str | None = None
    code: str | None = None


class AckBatchResponse(_Response):
    results: list[AckBatchResult]


class AckNextResponse(_Response):
    """The answer to an ack that asked for `next`: its status and the jobs leased with it."""

    status: str
    next: list[FetchedJob]


class AckBatchNextResponse(_Response):
    results: list[AckBatchResult]
    next: list[FetchedJob]


class FailResponse(_Response):
    status: Literal["retrying", "dead", "cancelled"]
    next_attempt_at: str | None
    attempts_remaining: int


class FailBatchResult(_Response):
    """One fail of a batch: the single fail's answer, or `error` and `code` for it alone."""

    job_id: str
    status: Literal["retrying", "dead", "cancelled"] | UnsetType = UNSET
    next_attempt_at: str | UnsetType | None = UNSET
    attempts_remaining: int | UnsetType = UNSET
    error: str | UnsetType = UNSET
    code: str | UnsetType = UNSET


class FailBatchResponse(_Response):
    results: list[FailBatchResult]


class HeartbeatJobStatus(_Response):
    status: Literal["ok", "cancel", "lost"]


class HeartbeatResponse(_Response):
    jobs: dict[str, HeartbeatJobStatus]


# --- jobs and queues ---------------------------------------------------------------------------


class JobProgress(_Response):
    current: int | float | None = None
    total: int | float | None = None
    message: str | None = None


class JobError(_Response):
    attempt: int
    error: str
    backtrace: str | None
    at: str


class JobEvent(_Response):
    id: int
    type: str
    at: str
    data: Any


class WorkerRef(_Response):
    id: str
    hostname: str | None


class Job(_Response):
    id: str
    queue: str
    state: StateName
    payload: Raw
    priority: PriorityName
    attempt: int
    max_retries: int
    retry_backoff: BackoffName
    retry_base_delay: float
    retry_max_delay: float
    unique_key: str | None
    unique_period: float | None
    batch_id: str | None
    tags: dict[str, str]
    progress: JobProgress | None
    checkpoint: Raw
    result: Raw
    last_error: str | None
    worker: WorkerRef | None
    created_at: str
    scheduled_at: str | None
    started_at: str | None
    completed_at: str | None
    failed_at: str | None
    expire_at: str | None
    lease_expires_at: str | None
    cancel_requested: bool
    errors: list[JobError] = field(default_factory=list)


class JobDetail(Job):
    events: list[JobEvent] = field(default_factory=list)


class Throttle(_Response):
    rate: int
    period: float


class QueueCounts(_Response):
    scheduled: int = 0
    pending: int = 0
    active: int = 0
    retrying: int = 0
    completed: int = 0
    dead: int = 0
    cancelled: int = 0


class QueueTotals(_Response):
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    dead: int = 0


class Queue(_Response):
    name: str
    paused: bool
    draining: bool
    max_concurrency: int | None
    throttle: Throttle | None
    counts: QueueCounts
    totals: QueueTotals
    oldest_pending_age: float | None


class QueueList(_Response):
    queues: list[Queue]


class Health(_Response):
    status: str


class Readiness(_Response):
    """`/readyz`: whether writes work now (`database`) and the writer runs (`writer`)."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "failing"]
    writer: Literal["running", "stopped"]
    # The last database error while writes fail.
    error: str | None = None


class ErrorBody(_Response):
    error: str
    code: str


def encode(value: Any) -> bytes:
    """JSON-encode a wire value."""
    return msgspec.json.encode(value)


# --- queue configuration -----------------------------------------------------------------------


class ConcurrencyRequest(_Request):
    max: Concurrency | None


class ThrottleRequest(_Request):
    rate: Rate
    period: Duration


# --- search --------------------------------------------------------------------------------------

SortField = Literal[
    "created_at", "priority", "started_at", "completed_at", "scheduled_at", "attempt"
]


class SearchRequest(_Request):
    """Filters are optional and AND-combined; `*_after` and `*_before` are exclusive."""

    queue: QueueName | list[QueueName] | None = None
    state: StateName | list[StateName] | None = None
    priority: PriorityName | list[PriorityName] | None = None
    tags: Tags | None = None
    payload_contains: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    payload_jq: Annotated[str, Meta(min_length=1, max_length=4_000)] | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    scheduled_after: Timestamp | None = None
    scheduled_before: Timestamp | None = None
    started_after: Timestamp | None = None
    started_before: Timestamp | None = None
    completed_after: Timestamp | None = None
    completed_before: Timestamp | None = None
    expire_after: Timestamp | None = None
    expire_before: Timestamp | None = None
    attempt_min: AttemptFilter | None = None
    attempt_max: AttemptFilter | None = None
    unique_key: Annotated[str, Meta(max_length=1000)] | None = None
    batch_id: Annotated[str, Meta(max_length=100)] | None = None
    worker_id: Annotated[str, Meta(max_length=200)] | None = None
    has_errors: bool | None = None
    error_contains: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    job_id_prefix: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    # The failure kind shown on the console's failures page (see jobbie.store.signature).
    error_signature: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    sort: SortField | None = None
    order: Literal["asc", "desc"] | None = None
    cursor: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    limit: PageLimit | None = None


class SearchResponse(_Response):
    jobs: list[Job]
    total: int
    cursor: str | None
    has_more: bool
    duration_ms: float


# --- job and queue actions, bulk, batches, workers ------------------------------------------------


class MoveRequest(_Request):
    queue: QueueName


class ClearResponse(_Response):
    cleared: int


class DeleteQueueResponse(_Response):
    deleted_jobs: int


BulkAction = Literal["retry", "delete", "cancel", "move", "requeue", "change_priority"]


class BulkRequest(_Request):
    action: BulkAction
    job_ids: (
        Annotated[
            list[Annotated[str, Meta(max_length=100)]], Meta(min_length=1, max_length=100_000)
        ]
        | None
    ) = None
    filter: SearchRequest | None = None
    move_to_queue: QueueName | None = None
    priority: PriorityIn | None = None
    # Count the jobs the request names and change nothing: answered as {"matched": n}.
    dry_run: bool = False

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
    affected: int
    skipped: int
    errors: int
    duration_ms: float


class BulkAccepted(_Response):
    bulk_operation_id: str
    status: Literal["running", "completed", "failed"]
    estimated_total: int
    progress_url: str


class BulkStatus(_Response):
    id: str
    action: str
    status: Literal["running", "completed", "failed"]
    estimated_total: int
    affected: int
    skipped: int
    errors: int
    created_at: str
    finished_at: str | None


class Batch(_Response):
    id: str
    state: Literal["running", "completed"]
    total: int
    pending: int
    succeeded: int
    failed: int
    callback_queue: str | None
    callback_payload: Raw
    callback_job_id: str | None
    created_at: str
    completed_at: str | None


class WorkerInfo(_Response):
    id: str
    hostname: str | None
    queues: list[str]
    active_jobs: int
    last_seen: str
    started_at: str


class WorkerList(_Response):
    workers: list[WorkerInfo]


class ClusterNode(_Response):
    id: str
    address: str | None
    leader: bool
    last_seen: str


class ClusterStatus(_Response):
    mode: Literal["single", "cluster"]
    backend: BackendName
    nodes: list[ClusterNode]


# --- cron schedules ---------------------------------------------------------------------------


class ScheduleRequest(_Request):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    queue: QueueName
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
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    payload: Raw | UnsetType = UNSET
    priority: PriorityIn | None = None
    max_retries: MaxRetries | None = None
    tags: Tags | None = None
    paused: bool = False


class Schedule(_Response):
    id: str
    name: str
    queue: str
    cron: str
    timezone: str
    payload: Raw
    priority: PriorityName
    max_retries: int
    tags: dict[str, str]
    paused: bool
    last_run: str | None
    next_run: str | None
    created_at: str


class ScheduleList(_Response):
    schedules: list[Schedule]


class EventMessage(_Response):
    """One lifecycle event, as streamed by `GET /api/v1/events`."""

    id: int
    type: str
    job_id: str | None
    queue: str | None
    data: Any
    at: str


# --- the web console -----------------------------------------------------------------------------


class FailureGroup(_Response):
    """Dead and retrying jobs that failed the same way (one error signature)."""

    signature: str
    count: int
    queues: list[str]
    first_seen: str | None
    last_seen: str | None


class RunScheduleResponse(_Response):
    job_id: str


class DryRunResponse(_Response):
    matched: int


class ExportRequest(SearchRequest):
    """A search's filter (its cursor and limit are ignored: every match is exported)."""

    format: Literal["ndjson", "csv"] = "ndjson"


class AuditEntry(_Response):
    """One management action: who, what, on which jobs or filter, how many jobs, when."""

    id: int
    at: str
    actor: str
    action: str
    target: str
    affected: int | None
    source: Literal["api", "console"]


class AuditList(_Response):
    entries: list[AuditEntry]
    # Pass as `before` for the next (older) page; None on the last page.
    next_before: int | None
