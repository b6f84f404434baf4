"""The Python client of Jobbie: `Client` and `AsyncClient` for the HTTP API, `Worker` to run
handlers for jobs. Everything here is also importable from `jobbie` itself."""

from __future__ import annotations

from jobbie.client.aio import AsyncClient
from jobbie.client.client import Client
from jobbie.client.context import JobContext
from jobbie.client.errors import SearchTimedOut, ServerUnreachable
from jobbie.client.types import (
    AttemptError,
    Batch,
    BulkOperation,
    BulkResult,
    BulkStatus,
    ClusterStatus,
    EnqueueOptions,
    EnqueueSpec,
    FairnessMode,
    HeartbeatUpdate,
    Job,
    JobEvent,
    JobFilter,
    QueueKey,
    Schedule,
    ScheduleOptions,
    SearchPage,
    WorkerInfo,
)
from jobbie.client.worker import Handler, Worker, WorkerStats

__all__ = [
    "AsyncClient",
    "AttemptError",
    "Batch",
    "BulkOperation",
    "BulkResult",
    "BulkStatus",
    "Client",
    "ClusterStatus",
    "EnqueueOptions",
    "EnqueueSpec",
    "FairnessMode",
    "Handler",
    "HeartbeatUpdate",
    "Job",
    "JobContext",
    "JobEvent",
    "JobFilter",
    "QueueKey",
    "Schedule",
    "ScheduleOptions",
    "SearchPage",
    "SearchTimedOut",
    "ServerUnreachable",
    "Worker",
    "WorkerInfo",
    "WorkerStats",
]
