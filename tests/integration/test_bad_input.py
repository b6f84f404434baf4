"""Bad input (spec sections 6 and 10): the exact 4xx, a JSON error body, and nothing written.

Each case names a setup: `none` (the queue of the test does not exist yet), `pending` (one
pending job) or `active` (one job fetched by worker `w-bad`, attempt 1). After the bad request
the job's full detail and every queue whose name starts with the test's queue must be exactly
as before, so a request that wrongly wrote anything fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serverproc import ServerProcess

MiB = 1 << 20
UNKNOWN_ID = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"
WORKER = "w-bad"
JSON = {"content-type": "application/json"}

Setup = Literal["none", "pending", "active"]


@dataclass(frozen=True, repr=False)
class Ctx:
    queue: str
    job_id: str = UNKNOWN_ID


@dataclass(frozen=True, repr=False)
class Case:
    """One bad request. `body` is JSON (placeholders `{queue}` and `{job_id}` are filled in
    every string and key) or raw bytes (placeholders filled likewise)."""

    id: str
    method: str
    path: str
    body: object = None
    status: int = 400
    code: str = "VALIDATION_ERROR"
    setup: Setup = "none"
    content_type: str | None = "application/json"
    message_has: str | None = None  # a regex the error message must match
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep pytest output short: some bodies are megabytes
        return f"Case({self.id})"


class _Raw(bytes):
    """A body sent as-is (after filling placeholders)."""


def fill(value: Any, ctx: Ctx) -> Any:
    if isinstance(value, str):
        return value.replace("{queue}", ctx.queue).replace("{job_id}", ctx.job_id)
    if isinstance(value, list):
        return [fill(v, ctx) for v in value]
    if isinstance(value, dict):
        return {fill(k, ctx): fill(v, ctx) for k, v in value.items()}
    return value


def render(case: Case, ctx: Ctx) -> bytes | None:
    if case.body is None:
        return None
    if isinstance(case.body, _Raw):
        raw = bytes(case.body)
        return raw.replace(b"{queue}", ctx.queue.encode()).replace(b"{job_id}", ctx.job_id.encode())
    return json.dumps(fill(case.body, ctx)).encode()


def big(n: int) -> str:
    return "x" * n


Q = "{queue}"
J = "{job_id}"
ENQ = "/api/v1/enqueue"
BATCH = "/api/v1/enqueue/batch"
FETCH = "/api/v1/fetch"
ACK = "/api/v1/ack/{job_id}"
ACKB = "/api/v1/ack/batch"
FAIL = "/api/v1/fail/{job_id}"
HB = "/api/v1/heartbeat"
REL = "/api/v1/release/{job_id}"
QROUTE = "/api/v1/queues/{queue}"


def enq(**fields: object) -> dict[str, object]:
    return {"queue": Q, **fields}


def fetch(**fields: object) -> dict[str, object]:
    return {"queues": [Q], "worker_id": WORKER, "timeout": 0, **fields}


CASES: list[Case] = [
    # --- enqueue: body shape ----------------------------------------------------------------
    Case("enqueue-invalid-json", "POST", ENQ, _Raw(b'{"queue": "{queue}", ')),
    Case("enqueue-invalid-json-trailing", "POST", ENQ, _Raw(b'{"queue": "{queue}"} x')),
    Case("enqueue-invalid-utf8", "POST", ENQ, _Raw(b'{"queue": "{queue}", "payload": "\xff"}')),
    Case("enqueue-body-array", "POST", ENQ, [{"queue": Q}]),
    Case("enqueue-body-string", "POST", ENQ, Q),
    Case("enqueue-body-number", "POST", ENQ, 42),
    Case("enqueue-body-null", "POST", ENQ, _Raw(b"null")),
    Case("enqueue-missing-queue", "POST", ENQ, {"payload": {"q": Q}}),
    Case("enqueue-unknown-field", "POST", ENQ, enq(priorty="high")),
    # --- enqueue: wrong types ----------------------------------------------------------------
    Case("enqueue-queue-number", "POST", ENQ, {"queue": 5}),
    Case("enqueue-queue-list", "POST", ENQ, {"queue": [Q]}),
    Case("enqueue-max-retries-string", "POST", ENQ, enq(max_retries="3")),
    Case("enqueue-max-retries-float", "POST", ENQ, enq(max_retries=1.5)),
    Case("enqueue-max-retries-bool", "POST", ENQ, enq(max_retries=True)),
    Case("enqueue-unique-key-number", "POST", ENQ, enq(unique_key=7)),
    Case("enqueue-delay-bool", "POST", ENQ, enq(delay=True)),
    Case("enqueue-priority-bool", "POST", ENQ, enq(priority=True)),
    # --- enqueue: names ------------------------------------------------------------------------
    Case("enqueue-priority-unknown", "POST", ENQ, enq(priority="urgent")),
    Case("enqueue-priority-3", "POST", ENQ, enq(priority=3)),
    Case("enqueue-priority-negative", "POST", ENQ, enq(priority=-1)),
    Case("enqueue-backoff-unknown", "POST", ENQ, enq(retry_backoff="quadratic")),
    Case("enqueue-backoff-number", "POST", ENQ, enq(retry_backoff=2)),
    # --- enqueue: durations --------------------------------------------------------------------
    Case("enqueue-delay-5x", "POST", ENQ, enq(delay="5x")),
    Case("enqueue-delay-negative", "POST", ENQ, enq(delay=-1)),
    Case("enqueue-delay-negative-string", "POST", ENQ, enq(delay="-1s")),
    Case("enqueue-delay-abc", "POST", ENQ, enq(delay="abc")),
    Case("enqueue-delay-empty", "POST", ENQ, enq(delay="")),
    Case("enqueue-delay-over-365d", "POST", ENQ, enq(delay="366d")),
    Case("enqueue-base-delay-abc", "POST", ENQ, enq(retry_base_delay="abc")),
    Case("enqueue-base-delay-negative", "POST", ENQ, enq(retry_base_delay=-1)),
    Case("enqueue-max-delay-5x", "POST", ENQ, enq(retry_max_delay="5x")),
    Case("enqueue-max-delay-over-365d", "POST", ENQ, enq(retry_max_delay="400d")),
    Case("enqueue-expire-after-5x", "POST", ENQ, enq(expire_after="5x")),
    Case("enqueue-expire-after-zero", "POST", ENQ, enq(expire_after=0)),
    Case("enqueue-expire-after-under-1s", "POST", ENQ, enq(expire_after="500ms")),
    Case("enqueue-expire-after-over-365d", "POST", ENQ, enq(expire_after="366d")),
    Case("enqueue-unique-period-abc", "POST", ENQ, enq(unique_key="k", unique_period="abc")),
    Case("enqueue-unique-period-zero", "POST", ENQ, enq(unique_key="k", unique_period=0)),
    Case("enqueue-unique-period-over-365d", "POST", ENQ, enq(unique_key="k", unique_period="366d")),
    Case("enqueue-unique-period-without-key", "POST", ENQ, enq(unique_period="1h")),
    # --- enqueue: timestamps -------------------------------------------------------------------
    Case("enqueue-scheduled-at-number", "POST", ENQ, enq(scheduled_at=1_770_000_000)),
    Case("enqueue-scheduled-at-ms-number", "POST", ENQ, enq(scheduled_at=1_770_000_000_000)),
    Case("enqueue-scheduled-at-garbage", "POST", ENQ, enq(scheduled_at="tomorrow")),
    Case("enqueue-scheduled-at-bad-date", "POST", ENQ, enq(scheduled_at="2026-02-30T10:00:00Z")),
    Case("enqueue-scheduled-at-no-zone", "POST", ENQ, enq(scheduled_at="2026-02-11T10:00:00")),
    Case(
        "enqueue-scheduled-at-and-delay",
        "POST",
        ENQ,
        enq(scheduled_at="2099-01-01T00:00:00Z", delay="5s"),
    ),
    # --- enqueue: numeric bounds ---------------------------------------------------------------
    Case("enqueue-max-retries-1001", "POST", ENQ, enq(max_retries=1001)),
    Case("enqueue-max-retries-negative", "POST", ENQ, enq(max_retries=-1)),
    Case("enqueue-max-retries-absurd", "POST", ENQ, enq(max_retries=10**30)),
    # --- enqueue: queue names ------------------------------------------------------------------
    Case("enqueue-queue-empty", "POST", ENQ, {"queue": ""}),
    Case("enqueue-queue-201-chars", "POST", ENQ, {"queue": Q + big(201)}),
    Case("enqueue-queue-space", "POST", ENQ, {"queue": Q + " x"}),
    Case("enqueue-queue-slash", "POST", ENQ, {"queue": Q + "/x"}),
    Case("enqueue-queue-unicode", "POST", ENQ, {"queue": Q + "é"}),
    Case("enqueue-queue-newline", "POST", ENQ, {"queue": Q + "\n"}),
    # --- enqueue: tags -------------------------------------------------------------------------
    Case("enqueue-tags-list", "POST", ENQ, enq(tags=["a", "b"])),
    Case("enqueue-tags-string", "POST", ENQ, enq(tags="a=b")),
    Case("enqueue-tags-number-value", "POST", ENQ, enq(tags={"a": 1})),
    Case("enqueue-tags-null-value", "POST", ENQ, enq(tags={"a": None})),
    Case("enqueue-tags-object-value", "POST", ENQ, enq(tags={"a": {"b": "c"}})),
    Case("enqueue-tags-bool-value", "POST", ENQ, enq(tags={"a": True})),
    # --- enqueue: sizes and media type ---------------------------------------------------------
    Case(
        "enqueue-payload-over-1mib",
        "POST",
        ENQ,
        enq(payload=big(MiB + 16)),
        status=413,
        code="PAYLOAD_TOO_LARGE",
    ),
    Case(
        "enqueue-body-over-16mib",
        "POST",
        ENQ,
        _Raw(b'{"queue": "{queue}", "payload": "' + b"x" * (16 * MiB + 16) + b'"}'),
        status=413,
        code="PAYLOAD_TOO_LARGE",
    ),
    Case(
        "enqueue-content-type-text",
        "POST",
        ENQ,
        enq(),
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
    ),
    Case(
        "enqueue-content-type-form",
        "POST",
        ENQ,
        enq(),
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "enqueue-content-type-missing",
        "POST",
        ENQ,
        enq(),
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type=None,
    ),
    # --- enqueue/batch -------------------------------------------------------------------------
    Case("batch-empty", "POST", BATCH, {"jobs": []}),
    Case("batch-missing-jobs", "POST", BATCH, {"batch": {"callback_queue": Q}}),
    Case("batch-jobs-object", "POST", BATCH, {"jobs": {"queue": Q}}),
    Case("batch-body-array", "POST", BATCH, [{"queue": Q}]),
    Case("batch-invalid-json", "POST", BATCH, _Raw(b'{"jobs": [{"queue": "{queue}"}')),
    Case("batch-10001-jobs", "POST", BATCH, {"jobs": [{"queue": Q}] * 10_001}),
    Case(
        "batch-bad-priority-at-3",
        "POST",
        BATCH,
        {"jobs": [{"queue": Q}] * 3 + [{"queue": Q, "priority": "urgent"}] + [{"queue": Q}]},
        message_has=r"(?<!\d)3(?!\d)",
    ),
    Case(
        "batch-exclusive-options-at-3",
        "POST",
        BATCH,
        {
            "jobs": [{"queue": Q}] * 3
            + [{"queue": Q, "delay": 5, "scheduled_at": "2099-01-01T00:00:00Z"}]
        },
        message_has=r"(?<!\d)3(?!\d)",
    ),
    Case(
        "batch-bad-queue-at-3",
        "POST",
        BATCH,
        {"jobs": [{"queue": Q}] * 3 + [{"queue": Q + " x"}]},
        message_has=r"(?<!\d)3(?!\d)",
    ),
    Case(
        "batch-payload-over-1mib-at-3",
        "POST",
        BATCH,
        {"jobs": [{"queue": Q}] * 3 + [{"queue": Q, "payload": big(MiB + 16)}]},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        message_has=r"(?<!\d)3(?!\d)",
    ),
    Case(
        "batch-callback-queue-illegal",
        "POST",
        BATCH,
        {"jobs": [enq()], "batch": {"callback_queue": Q + " x"}},
    ),
    Case("batch-unknown-field", "POST", BATCH, {"jobs": [enq()], "callback": Q}),
    Case(
        "batch-content-type-text",
        "POST",
        BATCH,
        {"jobs": [enq()]},
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
    ),
    # --- fetch (a pending job waits in the queue; a wrongly accepted fetch would lease it) -----
    Case(
        "fetch-missing-queues", "POST", FETCH, {"worker_id": WORKER, "timeout": 0}, setup="pending"
    ),
    Case("fetch-empty-queues", "POST", FETCH, fetch(queues=[]), setup="pending"),
    Case("fetch-queues-string", "POST", FETCH, fetch(queues=Q), setup="pending"),
    Case("fetch-queues-illegal-name", "POST", FETCH, fetch(queues=[Q, "a b"]), setup="pending"),
    Case("fetch-missing-worker-id", "POST", FETCH, {"queues": [Q], "timeout": 0}, setup="pending"),
    Case("fetch-worker-id-number", "POST", FETCH, fetch(worker_id=7), setup="pending"),
    Case("fetch-timeout-61", "POST", FETCH, fetch(timeout=61), setup="pending"),
    Case("fetch-timeout-61s", "POST", FETCH, fetch(timeout="61s"), setup="pending"),
    Case("fetch-timeout-2m", "POST", FETCH, fetch(timeout="2m"), setup="pending"),
    Case("fetch-timeout-negative", "POST", FETCH, fetch(timeout=-1), setup="pending"),
    Case("fetch-timeout-5x", "POST", FETCH, fetch(timeout="5x"), setup="pending"),
    Case("fetch-count-0", "POST", FETCH, fetch(count=0), setup="pending"),
    Case("fetch-count-1001", "POST", FETCH, fetch(count=1001), setup="pending"),
    Case("fetch-count-string", "POST", FETCH, fetch(count="2"), setup="pending"),
    Case("fetch-lease-0", "POST", FETCH, fetch(lease_duration=0), setup="pending"),
    Case("fetch-lease-0s", "POST", FETCH, fetch(lease_duration="0s"), setup="pending"),
    Case("fetch-lease-over-1d", "POST", FETCH, fetch(lease_duration=86_401), setup="pending"),
    Case("fetch-lease-abc", "POST", FETCH, fetch(lease_duration="abc"), setup="pending"),
    Case("fetch-unknown-field", "POST", FETCH, fetch(queue=Q), setup="pending"),
    Case("fetch-invalid-json", "POST", FETCH, _Raw(b'{"queues": ["{queue}"'), setup="pending"),
    Case("fetch-body-array", "POST", FETCH, [fetch()], setup="pending"),
    Case(
        "fetch-content-type-text",
        "POST",
        FETCH,
        fetch(),
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
        setup="pending",
    ),
    # --- ack (the job is active under WORKER, attempt 1) ---------------------------------------
    Case("ack-attempt-0", "POST", ACK, {"worker_id": WORKER, "attempt": 0}, setup="active"),
    Case("ack-attempt-negative", "POST", ACK, {"attempt": -1}, setup="active"),
    Case("ack-attempt-string", "POST", ACK, {"attempt": "1"}, setup="active"),
    Case("ack-worker-id-number", "POST", ACK, {"worker_id": 1}, setup="active"),
    Case("ack-unknown-field", "POST", ACK, {"result": 1, "status": "done"}, setup="active"),
    Case("ack-invalid-json", "POST", ACK, _Raw(b'{"result": '), setup="active"),
    Case("ack-body-array", "POST", ACK, [1], setup="active"),
    Case(
        "ack-result-over-1mib",
        "POST",
        ACK,
        {"result": big(MiB + 16)},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    Case(
        "ack-content-type-text",
        "POST",
        ACK,
        {"result": 1},
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
        setup="active",
    ),
    Case(
        "ack-unknown-job",
        "POST",
        f"/api/v1/ack/{UNKNOWN_ID}",
        {"result": 1},
        status=404,
        code="NOT_FOUND",
        setup="active",
    ),
    Case(
        "ack-unknown-job-no-body",
        "POST",
        "/api/v1/ack/nope",
        status=404,
        code="NOT_FOUND",
        setup="active",
        content_type=None,
    ),
    # --- ack/batch -----------------------------------------------------------------------------
    Case("ack-batch-empty", "POST", ACKB, {"acks": []}, setup="active"),
    Case("ack-batch-missing-acks", "POST", ACKB, {}, setup="active"),
    Case("ack-batch-acks-object", "POST", ACKB, {"acks": {"job_id": J}}, setup="active"),
    Case("ack-batch-1001", "POST", ACKB, {"acks": [{"job_id": J}] * 1001}, setup="active"),
    Case(
        "ack-batch-attempt-0",
        "POST",
        ACKB,
        {"acks": [{"job_id": J, "worker_id": WORKER, "attempt": 1}, {"job_id": J, "attempt": 0}]},
        setup="active",
    ),
    Case(
        "ack-batch-missing-job-id",
        "POST",
        ACKB,
        {"acks": [{"job_id": J, "worker_id": WORKER, "attempt": 1}, {"result": 1}]},
        setup="active",
    ),
    Case(
        "ack-batch-result-over-1mib",
        "POST",
        ACKB,
        {"acks": [{"job_id": J, "result": big(MiB + 16)}]},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    # --- fail ----------------------------------------------------------------------------------
    Case("fail-missing-error", "POST", FAIL, {"backtrace": "bt"}, setup="active"),
    Case("fail-empty-body", "POST", FAIL, setup="active", content_type=None),
    Case("fail-error-number", "POST", FAIL, {"error": 500}, setup="active"),
    Case("fail-attempt-0", "POST", FAIL, {"error": "boom", "attempt": 0}, setup="active"),
    Case("fail-unknown-field", "POST", FAIL, {"error": "boom", "retry": False}, setup="active"),
    Case(
        "fail-error-over-1mib",
        "POST",
        FAIL,
        {"error": big(MiB + 16)},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    Case(
        "fail-backtrace-over-1mib",
        "POST",
        FAIL,
        {"error": "boom", "backtrace": big(MiB + 16)},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    Case(
        "fail-unknown-job",
        "POST",
        f"/api/v1/fail/{UNKNOWN_ID}",
        {"error": "boom"},
        status=404,
        code="NOT_FOUND",
        setup="active",
    ),
    # --- release -------------------------------------------------------------------------------
    Case("release-attempt-0", "POST", REL, {"worker_id": WORKER, "attempt": 0}, setup="active"),
    Case("release-unknown-field", "POST", REL, {"reason": "deploy"}, setup="active"),
    Case(
        "release-checkpoint-over-1mib",
        "POST",
        REL,
        {"checkpoint": big(MiB + 16)},
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    Case(
        "release-unknown-job",
        "POST",
        f"/api/v1/release/{UNKNOWN_ID}",
        {},
        status=404,
        code="NOT_FOUND",
        setup="active",
    ),
    # --- heartbeat (malformed bodies are 400; nothing of them is applied) ----------------------
    Case("heartbeat-missing-jobs", "POST", HB, {"worker_id": WORKER}, setup="active"),
    Case("heartbeat-jobs-list", "POST", HB, {"jobs": [J]}, setup="active"),
    Case("heartbeat-entry-string", "POST", HB, {"jobs": {J: "ok"}}, setup="active"),
    Case(
        "heartbeat-attempt-0",
        "POST",
        HB,
        {"worker_id": WORKER, "jobs": {J: {"attempt": 0}}},
        setup="active",
    ),
    Case(
        "heartbeat-progress-wrong-type",
        "POST",
        HB,
        {"worker_id": WORKER, "jobs": {J: {"progress": {"current": "half"}}}},
        setup="active",
    ),
    Case(
        "heartbeat-unknown-entry-field",
        "POST",
        HB,
        {"worker_id": WORKER, "jobs": {J: {"attempt": 1, "progres": {"current": 1}}}},
        setup="active",
    ),
    Case("heartbeat-invalid-json", "POST", HB, _Raw(b'{"jobs": {'), setup="active"),
    Case(
        "heartbeat-checkpoint-over-1mib",
        "POST",
        HB,
        {
            "worker_id": WORKER,
            "jobs": {
                J: {"attempt": 1, "progress": {"current": 1, "total": 2}},
                UNKNOWN_ID: {"checkpoint": big(MiB + 16)},
            },
        },
        status=413,
        code="PAYLOAD_TOO_LARGE",
        setup="active",
    ),
    # --- GET and cancel of unknown jobs --------------------------------------------------------
    Case(
        "get-unknown-job",
        "GET",
        f"/api/v1/jobs/{UNKNOWN_ID}",
        status=404,
        code="NOT_FOUND",
        content_type=None,
    ),
    Case(
        "get-garbage-job-id",
        "GET",
        "/api/v1/jobs/nope",
        status=404,
        code="NOT_FOUND",
        content_type=None,
    ),
    Case(
        "cancel-unknown-job",
        "POST",
        f"/api/v1/jobs/{UNKNOWN_ID}/cancel",
        status=404,
        code="NOT_FOUND",
        content_type=None,
    ),
    # --- queue management (a bad call must not create the queue's configuration) ---------------
    Case("throttle-rate-0", "POST", f"{QROUTE}/throttle", {"rate": 0, "period": "1m"}),
    Case("throttle-rate-negative", "POST", f"{QROUTE}/throttle", {"rate": -5, "period": "1m"}),
    Case("throttle-rate-string", "POST", f"{QROUTE}/throttle", {"rate": "5", "period": "1m"}),
    Case("throttle-missing-rate", "POST", f"{QROUTE}/throttle", {"period": "1m"}),
    Case("throttle-missing-period", "POST", f"{QROUTE}/throttle", {"rate": 5}),
    Case("throttle-period-50ms", "POST", f"{QROUTE}/throttle", {"rate": 5, "period": "50ms"}),
    Case("throttle-period-0.05", "POST", f"{QROUTE}/throttle", {"rate": 5, "period": 0.05}),
    Case("throttle-period-over-1d", "POST", f"{QROUTE}/throttle", {"rate": 5, "period": "2d"}),
    Case("throttle-period-5x", "POST", f"{QROUTE}/throttle", {"rate": 5, "period": "5x"}),
    Case("throttle-empty-object", "POST", f"{QROUTE}/throttle", {}),
    Case(
        "throttle-unknown-field", "POST", f"{QROUTE}/throttle", {"rate": 5, "period": "1m", "x": 1}
    ),
    Case(
        "throttle-content-type-text",
        "POST",
        f"{QROUTE}/throttle",
        {"rate": 5, "period": "1m"},
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
    ),
    Case("concurrency-empty-object", "POST", f"{QROUTE}/concurrency", {}),
    Case("concurrency-max-0", "POST", f"{QROUTE}/concurrency", {"max": 0}),
    Case("concurrency-max-negative", "POST", f"{QROUTE}/concurrency", {"max": -1}),
    Case("concurrency-max-string", "POST", f"{QROUTE}/concurrency", {"max": "3"}),
    Case("concurrency-max-float", "POST", f"{QROUTE}/concurrency", {"max": 1.5}),
    Case("concurrency-unknown-field", "POST", f"{QROUTE}/concurrency", {"max": 2, "min": 1}),
    Case("concurrency-body-array", "POST", f"{QROUTE}/concurrency", [2]),
    Case(
        "concurrency-content-type-text",
        "POST",
        f"{QROUTE}/concurrency",
        {"max": 2},
        status=415,
        code="UNSUPPORTED_MEDIA_TYPE",
        content_type="text/plain",
    ),
    Case("pause-illegal-name", "POST", "/api/v1/queues/{queue}%20x/pause", content_type=None),
    Case("pause-name-201-chars", "POST", f"{QROUTE}{big(201)}/pause", content_type=None),
    Case("resume-illegal-name", "POST", "/api/v1/queues/{queue}%21/resume", content_type=None),
    Case(
        "throttle-illegal-name",
        "POST",
        "/api/v1/queues/{queue}%20x/throttle",
        {"rate": 5, "period": "1m"},
    ),
    Case(
        "unthrottle-illegal-name",
        "DELETE",
        "/api/v1/queues/{queue}%20x/throttle",
        content_type=None,
    ),
    Case(
        "concurrency-illegal-name",
        "POST",
        "/api/v1/queues/{queue}%20x/concurrency",
        {"max": 2},
    ),
]


def _ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"


_ids_unique()


def queues_with_prefix(api: httpx.Client, prefix: str) -> dict[str, dict[str, Any]]:
    """Every listed queue whose name starts with `prefix`, minus time-dependent fields."""
    resp = api.get("/api/v1/queues")
    assert resp.status_code == 200, resp.text
    found = {}
    for queue in resp.json()["queues"]:
        if queue["name"].startswith(prefix):
            found[queue["name"]] = {k: v for k, v in queue.items() if k != "oldest_pending_age"}
    return found


def job_detail(api: httpx.Client, job_id: str) -> dict[str, Any]:
    resp = api.get(f"/api/v1/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    detail: dict[str, Any] = resp.json()
    return detail


def prepare(api: httpx.Client, queue: str, setup: Setup) -> Ctx:
    if setup == "none":
        return Ctx(queue=queue)
    resp = api.post(ENQ, json={"queue": queue, "payload": {"n": 1}})
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["job_id"]
    if setup == "active":
        resp = api.post(FETCH, json={"queues": [queue], "worker_id": WORKER, "timeout": 0})
        assert resp.status_code == 200, resp.text
        assert resp.json()["job_id"] == job_id
        assert resp.json()["attempt"] == 1
    return Ctx(queue=queue, job_id=job_id)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The exact status and code, a JSON body with a message, and the request id header."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("code") == code, body
    assert isinstance(body.get("error"), str), body
    assert body["error"].strip(), body
    assert resp.headers.get("x-request-id"), "error responses carry X-Request-ID"
    return body


def send(api: httpx.Client, case: Case, ctx: Ctx) -> httpx.Response:
    headers = dict(case.extra)
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    path = case.path.replace("{queue}", ctx.queue).replace("{job_id}", ctx.job_id)
    return api.request(case.method, path, content=render(case, ctx), headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_is_refused_and_writes_nothing(
    api: httpx.Client, queue: str, case: Case
) -> None:
    ctx = prepare(api, queue, case.setup)
    before_queues = queues_with_prefix(api, ctx.queue)
    before_job = None if case.setup == "none" else job_detail(api, ctx.job_id)

    resp = send(api, case, ctx)

    body = assert_error(resp, case.status, case.code)
    if case.message_has is not None:
        assert re.search(case.message_has, body["error"]), body["error"]
    assert queues_with_prefix(api, ctx.queue) == before_queues, "a bad request wrote a queue"
    if before_job is not None:
        assert job_detail(api, ctx.job_id) == before_job, "a bad request changed the job"


# --- cases that are not a plain 4xx ------------------------------------------------------------


def test_heartbeat_unknown_job_is_lost_not_an_error(api: httpx.Client, queue: str) -> None:
    ctx = prepare(api, queue, "active")
    before = job_detail(api, ctx.job_id)
    resp = api.post(HB, json={"worker_id": WORKER, "jobs": {UNKNOWN_ID: {"attempt": 1}}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"jobs": {UNKNOWN_ID: {"status": "lost"}}}
    assert job_detail(api, ctx.job_id) == before


def test_heartbeat_garbage_job_id_is_lost(api: httpx.Client) -> None:
    resp = api.post(HB, json={"jobs": {"nope": {}}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"jobs": {"nope": {"status": "lost"}}}


def test_ack_batch_unknown_job_is_a_per_item_error(api: httpx.Client, queue: str) -> None:
    ctx = prepare(api, queue, "active")
    resp = api.post(
        ACKB,
        json={
            "acks": [
                {"job_id": UNKNOWN_ID, "result": 1},
                {"job_id": ctx.job_id, "result": 2, "worker_id": WORKER, "attempt": 1},
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["job_id"] for r in results] == [UNKNOWN_ID, ctx.job_id]
    assert results[0]["code"] == "NOT_FOUND"
    assert results[0]["error"]
    assert results[1]["status"] == "completed"


def served(method: str, path: str) -> bool:
    """Whether the route table declares this route (some management routes come later)."""
    from jobbie.server.routes import ROUTES

    return any(r.method == method and r.path == path for r in ROUTES)


def test_delete_queue_without_confirm_keeps_it(api: httpx.Client, queue: str) -> None:
    if not served("DELETE", "/api/v1/queues/{name}"):
        pytest.skip("DELETE /api/v1/queues/{name} is not in the route table yet")
    ctx = prepare(api, queue, "pending")
    before_queues = queues_with_prefix(api, queue)
    before_job = job_detail(api, ctx.job_id)
    for path in (f"/api/v1/queues/{queue}", f"/api/v1/queues/{queue}?confirm=false"):
        resp = api.delete(path)
        assert_error(resp, 400, "VALIDATION_ERROR")
    assert queues_with_prefix(api, queue) == before_queues
    assert job_detail(api, ctx.job_id) == before_job


@pytest.mark.parametrize("action", ["clear", "drain"])
def test_clear_or_drain_unknown_queue_is_404(api: httpx.Client, queue: str, action: str) -> None:
    if not served("POST", f"/api/v1/queues/{{name}}/{action}"):
        pytest.skip(f"POST /api/v1/queues/{{name}}/{action} is not in the route table yet")
    resp = api.post(f"/api/v1/queues/{queue}/{action}")
    assert_error(resp, 404, "NOT_FOUND")
    assert queues_with_prefix(api, queue) == {}


def test_bounds_themselves_are_accepted(api: httpx.Client, queue: str) -> None:
    """The edges of section 10's ranges are valid: the refusals above are not over-eager."""
    resp = api.post(
        ENQ,
        json={
            "queue": queue,
            "priority": 0,
            "max_retries": 1000,
            "unique_key": "edge",
            "unique_period": "365d",
            "expire_after": 1,
            "delay": "0ms",
            "retry_backoff": "none",
            "retry_base_delay": 0,
            "retry_max_delay": "365d",
            "tags": {"k": "v"},
        },
    )
    assert resp.status_code == 201, resp.text
    resp = api.post(ENQ, json={"queue": big(200)})
    assert resp.status_code == 201, resp.text
    resp = api.post(
        FETCH,
        json={
            "queues": [queue],
            "worker_id": WORKER,
            "timeout": 0,
            "count": 1000,
            "lease_duration": 86_400,
        },
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["jobs"]) == 1
    resp = api.post(
        FETCH, json={"queues": [queue], "worker_id": WORKER, "timeout": "0s", "lease_duration": 1}
    )
    assert resp.status_code == 204, resp.text
    resp = api.post(f"/api/v1/queues/{queue}/throttle", json={"rate": 1, "period": "100ms"})
    assert resp.status_code == 200, resp.text
    resp = api.post(f"/api/v1/queues/{queue}/throttle", json={"rate": 1, "period": "1d"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["throttle"] == {"rate": 1, "period": 86_400}
    resp = api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_concurrency"] is None
    resp = api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json()["max_concurrency"] == 1


# --- the server never answers 500 to client input ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
FIELDS = {
    ENQ: ["queue", "payload", "priority", "delay", "scheduled_at", "tags", "unique_period"],
    BATCH: ["jobs", "batch"],
    FETCH: ["queues", "worker_id", "timeout", "count", "lease_duration"],
    ACKB: ["acks"],
    HB: ["jobs", "worker_id"],
    f"/api/v1/ack/{UNKNOWN_ID}": ["result", "worker_id", "attempt"],
    f"/api/v1/fail/{UNKNOWN_ID}": ["error", "backtrace", "attempt"],
    f"/api/v1/release/{UNKNOWN_ID}": ["checkpoint", "attempt"],
    "/api/v1/queues/fuzz.q/throttle": ["rate", "period"],
    "/api/v1/queues/fuzz.q/concurrency": ["max"],
}
bodies = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda path: st.tuples(
        st.just(path),
        st.one_of(
            json_values,
            st.dictionaries(st.sampled_from(FIELDS[path]), json_values, max_size=4),
        ),
    )
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=bodies)
def test_random_bodies_never_get_a_5xx(server: ServerProcess, request: tuple[str, Any]) -> None:
    path, body = request
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        resp = client.post(path, json=body)
    assert resp.status_code < 500, f"{path} {body!r} -> {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400:
        assert resp.json()["code"], resp.text


@pytest.mark.parametrize(
    "raw",
    [b"", b" ", b"{", b"}", b"[", b'"', b"\x00", b"\xff\xfe", b"nul", b"1e999", b"{}" * 3],
    ids=repr,
)
@pytest.mark.parametrize("path", sorted(FIELDS))
def test_garbage_bytes_never_get_a_5xx(api: httpx.Client, path: str, raw: bytes) -> None:
    resp = api.post(path, content=raw, headers=JSON)
    assert resp.status_code < 500, f"{path} {raw!r} -> {resp.status_code} {resp.text[:300]}"
