"""The route table: each route once, with its request and response types.

The Starlette router and the OpenAPI document are both derived from `ROUTES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobbie import models as m
from jobbie.server import (
    audit,
    console_api,
    events_api,
    health_api,
    manage_api,
    openapi,
    worker_api,
)
from jobbie.server.fastpath import FastHandler

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One HTTP route: method, path, handler and the types it reads and writes."""

    method: str
    path: str
    handler: Handler | FastHandler
    summary: str
    tag: str
    body: type[Any] | None = None
    # status -> response type; a tuple means one of those shapes; None means no body
    responses: Mapping[int, type[Any] | tuple[type[Any], ...] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    # Served by the raw ASGI fast path (handler takes a fastpath.Call), not by Starlette.
    fast: bool = False
    # Query parameters: name -> (required, JSON Schema), stated in the OpenAPI document.
    query: Mapping[str, tuple[bool, dict[str, Any]]] = field(default_factory=dict)


W, Q, J, C, S = "worker protocol", "queues", "jobs", "schedules", "server"
_QUEUE_FILTER: dict[str, Any] = {"type": "array", "items": openapi.QUEUE_NAME_SCHEMA}
_DEAD_QUERY: dict[str, tuple[bool, dict[str, Any]]] = {
    "queue": (False, _QUEUE_FILTER),
    "limit": (False, {"type": "integer", "minimum": 1, "maximum": 1000}),
    "cursor": (False, {"type": "string", "minLength": 1, "maxLength": 1000}),
}
_CONFIRM: dict[str, tuple[bool, dict[str, Any]]] = {
    "confirm": (True, {"type": "string", "enum": ["true"]})
}
_EVENTS_QUERY: dict[str, tuple[bool, dict[str, Any]]] = {
    "queue": (False, _QUEUE_FILTER),
    "type": (False, {"type": "array", "items": {"type": "string"}}),
    "last_event_id": (False, {"type": "string", "pattern": "^[0-9]{1,18}$"}),
}
_KEYS_QUERY: dict[str, tuple[bool, dict[str, Any]]] = {
    "limit": (False, {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}),
}
_JOB = "/api/v1/jobs/{job_id}"
_QUEUE = "/api/v1/queues/{name}"
_SCHEDULE = "/api/v1/schedules/{schedule_id}"

ROUTES: tuple[Endpoint, ...] = (
    Endpoint(
        "POST", "/api/v1/enqueue", worker_api.enqueue, "Enqueue a job", W,
        m.EnqueueRequest, {201: m.EnqueueResponse, 200: m.EnqueueResponse}, (400, 413, 415),
        fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/enqueue/batch", worker_api.enqueue_batch,
        "Enqueue jobs atomically, optionally as a batch with a callback", W,
        m.EnqueueBatchRequest, {201: m.EnqueueBatchResponse}, (400, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/fetch", worker_api.fetch,
        "Lease the next job(s), long-polling up to `timeout` seconds", W,
        m.FetchRequest, {200: (m.FetchedJob, m.FetchManyResponse), 204: None}, (400, 415, 503),
        fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/ack/batch", worker_api.ack_batch,
        "Complete several attempts (with `next`: and lease more jobs in the same transaction)",
        W, m.AckBatchRequest, {200: m.AckBatchResponse},
        (400, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/ack/{job_id}", worker_api.ack,
        "Complete an attempt (with `next`: and lease more jobs in the same transaction)", W,
        m.AckRequest, {200: m.AckResponse},
        (400, 404, 409, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/fail/batch", worker_api.fail_batch,
        "Fail several attempts; each succeeds or fails on its own", W,
        m.FailBatchRequest, {200: m.FailBatchResponse}, (400, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/fail/{job_id}", worker_api.fail,
        "Fail an attempt (retry with backoff, or dead)", W,
        m.FailRequest, {200: m.FailResponse}, (400, 404, 409, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/heartbeat", worker_api.heartbeat,
        "Extend leases, save progress and checkpoints", W,
        m.HeartbeatRequest, {200: m.HeartbeatResponse}, (400, 413, 415), fast=True,
    ),
    Endpoint(
        "POST", "/api/v1/release/{job_id}", worker_api.release,
        "Hand an active job back without using a retry", W,
        m.ReleaseRequest, {200: m.StatusResponse}, (400, 404, 409, 413, 415), fast=True,
    ),
    Endpoint("GET", _JOB, manage_api.get_job, "A job with errors and events", J,
             None, {200: m.JobDetail}, (404,)),
    Endpoint("POST", f"{_JOB}/cancel", manage_api.cancel_job, "Cancel a job", J,
             None, {200: m.StatusResponse}, (404, 409)),
    Endpoint("POST", f"{_JOB}/retry", manage_api.retry_job,
             "Run a dead, cancelled or completed job again", J, None, {200: m.JobDetail},
             (404, 409)),
    Endpoint("POST", f"{_JOB}/move", manage_api.move_job, "Move a job to another queue", J,
             m.MoveRequest, {200: m.JobDetail}, (400, 404, 409, 415)),
    Endpoint("DELETE", _JOB, manage_api.delete_job, "Delete a job", J,
             None, {200: m.StatusResponse}, (404,)),
    Endpoint("POST", "/api/v1/jobs/search", manage_api.search_jobs,
             "Search jobs by any filter, keyset-paginated", J, m.SearchRequest,
             {200: m.SearchResponse}, (400, 413, 415)),
    Endpoint("GET", "/api/v1/dead", manage_api.dead_jobs,
             "Dead jobs (?queue=&limit=&cursor=), answered like search", J, None,
             {200: m.SearchResponse}, (400,), query=_DEAD_QUERY),
    Endpoint("POST", "/api/v1/jobs/bulk", manage_api.bulk,
             "Act on many jobs by ids or filter (background above 10,000)", J,
             m.BulkRequest, {200: (m.BulkResponse, m.DryRunResponse), 202: m.BulkAccepted},
             (400, 413, 415)),
    Endpoint("POST", "/api/v1/jobs/export", console_api.export_jobs,
             "Every job matching a search filter, streamed as ndjson or csv", J,
             m.ExportRequest, {200: None}, (400, 413, 415)),
    Endpoint("GET", "/api/v1/bulk/{bulk_id}", manage_api.get_bulk,
             "Progress of a background bulk operation", J, None, {200: m.BulkStatus}, (404,)),
    Endpoint("GET", "/api/v1/batches/{batch_id}", manage_api.get_batch, "A batch's counters",
             J, None, {200: m.Batch}, (404,)),
    Endpoint("GET", "/api/v1/queues", manage_api.list_queues, "Every queue with counts", Q,
             None, {200: m.QueueList}),
    Endpoint("POST", f"{_QUEUE}/clear", manage_api.clear_queue,
             "Delete the queue's waiting jobs", Q, None, {200: m.ClearResponse}, (400, 404)),
    Endpoint("POST", f"{_QUEUE}/drain", manage_api.drain_queue,
             "Stop handing out jobs; paused once active jobs end", Q, None, {200: m.Queue},
             (400, 404)),
    Endpoint("GET", _QUEUE, console_api.get_queue, "One queue with counts", Q,
             None, {200: m.Queue}, (400, 404)),
    Endpoint("DELETE", _QUEUE, manage_api.delete_queue,
             "Delete a queue and all its jobs (needs ?confirm=true)", Q, None,
             {200: m.DeleteQueueResponse}, (400, 404), query=_CONFIRM),
    Endpoint("POST", f"{_QUEUE}/pause", manage_api.pause_queue, "Pause a queue", Q,
             None, {200: m.Queue}, (400,)),
    Endpoint("POST", f"{_QUEUE}/resume", manage_api.resume_queue, "Resume a queue", Q,
             None, {200: m.Queue}, (400,)),
    Endpoint("POST", f"{_QUEUE}/concurrency", manage_api.set_concurrency,
             "Limit a queue's active jobs", Q, m.ConcurrencyRequest, {200: m.Queue}, (400, 415)),
    Endpoint("POST", f"{_QUEUE}/throttle", manage_api.set_throttle,
             "Throttle a queue (sliding window)", Q, m.ThrottleRequest, {200: m.Queue},
             (400, 415)),
    Endpoint("DELETE", f"{_QUEUE}/throttle", manage_api.remove_throttle,
             "Remove a queue's throttle", Q, None, {200: m.Queue}, (400,)),
    Endpoint("POST", f"{_QUEUE}/fairness", manage_api.set_fairness,
             "Serve a queue's keys in FIFO order or in turn (round_robin)", Q,
             m.FairnessRequest, {200: m.Queue}, (400, 415)),
    Endpoint("POST", f"{_QUEUE}/key-concurrency", manage_api.set_key_concurrency,
             "Limit the active jobs of each key of a queue", Q, m.ConcurrencyRequest,
             {200: m.Queue}, (400, 415)),
    Endpoint("POST", f"{_QUEUE}/key-throttle", manage_api.set_key_throttle,
             "Throttle each key of a queue (sliding window)", Q, m.ThrottleRequest,
             {200: m.Queue}, (400, 415)),
    Endpoint("DELETE", f"{_QUEUE}/key-throttle", manage_api.remove_key_throttle,
             "Remove a queue's per-key throttle", Q, None, {200: m.Queue}, (400,)),
    Endpoint("GET", f"{_QUEUE}/keys", manage_api.queue_keys,
             "A queue's busiest keys, most pending first (?limit=, default 20)", Q, None,
             {200: m.QueueKeyList}, (400, 404), query=_KEYS_QUERY),
    Endpoint("GET", "/api/v1/schedules", manage_api.list_schedules, "Every cron schedule",
             C, None, {200: m.ScheduleList}),
    Endpoint("POST", "/api/v1/schedules", manage_api.create_schedule,
             "Create a cron schedule", C, m.ScheduleRequest, {201: m.Schedule},
             (400, 409, 413, 415)),
    Endpoint("GET", _SCHEDULE, manage_api.get_schedule, "One cron schedule", C,
             None, {200: m.Schedule}, (404,)),
    Endpoint("PUT", _SCHEDULE, manage_api.update_schedule, "Replace a cron schedule", C,
             m.ScheduleRequest, {200: m.Schedule}, (400, 404, 409, 413, 415)),
    Endpoint("POST", f"{_SCHEDULE}/run", console_api.run_schedule,
             "Enqueue a schedule's job now (its next run is unchanged)", C, None,
             {201: m.RunScheduleResponse}, (404,)),
    Endpoint("DELETE", _SCHEDULE, manage_api.delete_schedule, "Delete a cron schedule", C,
             None, {200: m.StatusResponse}, (404,)),
    Endpoint("GET", "/api/v1/audit", audit.list_audit,
             "Management actions, newest first (?limit=&before=)", S, None,
             {200: m.AuditList}, (400,)),
    Endpoint("GET", "/api/v1/workers", manage_api.list_workers, "Workers seen recently", S,
             None, {200: m.WorkerList}),
    Endpoint("GET", "/api/v1/cluster/status", manage_api.cluster_status,
             "Nodes and which one runs the scheduler", S, None, {200: m.ClusterStatus}),
    Endpoint("GET", "/api/v1/events", events_api.stream_events,
             "Lifecycle events as Server-Sent Events (filter ?queue=&type=; Last-Event-ID)", S,
             None, {200: None}, (400, 503), query=_EVENTS_QUERY),
    Endpoint("GET", "/metrics", manage_api.metrics, "Prometheus metrics", S, None, {200: None}),
    Endpoint("GET", "/healthz", health_api.healthz,
             "Liveness: the process and its database writer run (point restarts here)", S,
             None, {200: m.Health}, (503,)),
    Endpoint("GET", "/readyz", health_api.readyz,
             "Readiness: writes work now (503 with the reason while they fail)", S,
             None, {200: m.Readiness, 503: m.Readiness}),
    Endpoint("GET", "/openapi.json", openapi.openapi_json, "This OpenAPI 3.1 document", S,
             None, {200: None}),
    Endpoint("GET", "/docs", openapi.docs, "Swagger UI", S, None, {200: None}),
    Endpoint("GET", "/docs/{asset}", openapi.docs_asset, "Swagger UI's files (shipped)", S,
             None, {200: None}, (404,)),
)  # fmt: skip


def starlette_routes() -> list[Route]:
    """The router's view of the table."""
    return [
        Route(e.path, audit.audited(e.method, e.path, e.handler), methods=[e.method])  # type: ignore[arg-type]
        for e in ROUTES
        if not e.fast
    ]
