"""Handlers of the worker protocol: enqueue, fetch, ack, fail, heartbeat, release.

They run on the raw ASGI fast path (`fastpath.py`): each takes a `Call` and returns
(status, body).
"""

from __future__ import annotations

import time

from jobbie.errors import JobbieError, Unavailable, ValidationError
from jobbie.models import (
    AckBatchRequest,
    AckBatchResponse,
    AckBatchResult,
    AckRequest,
    AckResponse,
    EnqueueBatchRequest,
    EnqueueRequest,
    FailBatchRequest,
    FailBatchResponse,
    FailBatchResult,
    FailRequest,
    FailResponse,
    FetchedJob,
    FetchManyResponse,
    FetchNext,
    FetchRequest,
    HeartbeatJobStatus,
    HeartbeatRequest,
    HeartbeatResponse,
    ReleaseRequest,
    StatusResponse,
)
from jobbie.server import validation
from jobbie.server.fastpath import Call, Reply
from jobbie.server.longpoll import fetch_jobs
from jobbie.store.params import FetchParams


async def enqueue(call: Call) -> Reply:
    req = await call.json(EnqueueRequest)
    result = await call.store.enqueue(validation.new_job(req, call.rt.limits))
    return (200 if result.unique_existing else 201), result


async def enqueue_batch(call: Call) -> Reply:
    req = await call.json(EnqueueBatchRequest)
    jobs, batch = validation.new_jobs(req, call.rt.limits)
    return 201, await call.store.enqueue_batch(jobs, batch)


async def fetch(call: Call) -> Reply:
    req = await call.json(FetchRequest)
    params, timeout = validation.fetch_params(req, call.rt.settings.max_response_bytes)
    rt = call.rt
    if rt.draining:
        raise Unavailable("the server is shutting down")
    started = time.perf_counter()
    jobs = await fetch_jobs(call.store, rt.notifier, params, timeout, call.disconnected)
    rt.metrics.fetch_wait.observe(time.perf_counter() - started)
    if not jobs:
        return 204, None
    if req.count is None:
        return 200, jobs[0]
    return 200, FetchManyResponse(jobs=jobs)


def _next_params(call: Call, next_: FetchNext, worker_id: str | None) -> FetchParams | None:
    """The claim of ack-and-fetch-next, or None when the server is shutting down (the ack
    still goes through; the worker is told there is nothing more)."""
    if worker_id is None:
        raise ValidationError("next: needs worker_id, the owner of the new leases")
    request = FetchRequest(
        queues=next_.queues,
        worker_id=worker_id,
        hostname=next_.hostname,
        lease_duration=next_.lease_duration,
        count=next_.count,
    )
    params, _ = validation.fetch_params(request)
    return None if call.rt.draining else params


async def ack(call: Call) -> Reply:
    req = await call.json(AckRequest)
    params = validation.ack_params(call.param, req, call.rt.limits)
    if req.next is None:
        return 200, AckResponse(status=await call.store.ack(params))
    claim = _next_params(call, req.next, req.worker_id)
    if claim is None:
        return 200, AckResponse(status=await call.store.ack(params), next=[])
    status, jobs = await call.store.ack_next(params, claim)
    return 200, AckResponse(status=status, next=jobs)


async def ack_batch(call: Call) -> Reply:
    req = await call.json(AckBatchRequest)
    limits = call.rt.limits
    params = [validation.ack_params(item.job_id, item, limits) for item in req.acks]
    claim = None if req.next is None else _next_params(call, req.next, req.worker_id)
    jobs: list[FetchedJob] = []
    if claim is None:
        outcomes = await call.store.ack_batch(params)
    else:
        outcomes, jobs = await call.store.ack_batch_next(params, claim)
    results = [
        AckBatchResult(job_id=p.job_id, error=o.message, code=o.code)
        if isinstance(o, JobbieError)
        else AckBatchResult(job_id=p.job_id, status=o)
        for p, o in zip(params, outcomes, strict=True)
    ]
    if req.next is None:
        return 200, AckBatchResponse(results=results)
    return 200, AckBatchResponse(results=results, next=jobs)


async def fail(call: Call) -> Reply:
    req = await call.json(FailRequest)
    return 200, await call.store.fail(validation.fail_params(call.param, req, call.rt.limits))


async def fail_batch(call: Call) -> Reply:
    req = await call.json(FailBatchRequest)
    limits = call.rt.limits
    params = [
        validation.fail_params(
            item.job_id,
            FailRequest(
                error=item.error,
                backtrace=item.backtrace,
                worker_id=req.worker_id,
                attempt=item.attempt,
            ),
            limits,
        )
        for item in req.fails
    ]
    outcomes = await call.store.fail_batch(params)
    return 200, FailBatchResponse(
        results=[_fail_result(p.job_id, o) for p, o in zip(params, outcomes, strict=True)]
    )


def _fail_result(job_id: str, outcome: FailResponse | JobbieError) -> FailBatchResult:
    if isinstance(outcome, JobbieError):
        return FailBatchResult(job_id=job_id, error=outcome.message, code=outcome.code)
    return FailBatchResult(
        job_id=job_id,
        status=outcome.status,
        next_attempt_at=outcome.next_attempt_at,
        attempts_remaining=outcome.attempts_remaining,
    )


async def heartbeat(call: Call) -> Reply:
    req = await call.json(HeartbeatRequest)
    answers = await call.store.heartbeat(validation.heartbeat_params(req, call.rt.limits))
    statuses = {job_id: HeartbeatJobStatus(status=s) for job_id, s in answers.items()}  # type: ignore[arg-type]
    return 200, HeartbeatResponse(jobs=statuses)


async def release(call: Call) -> Reply:
    req = await call.json(ReleaseRequest)
    params = validation.release_params(call.param, req, call.rt.limits)
    return 200, StatusResponse(status=await call.store.release(params))
