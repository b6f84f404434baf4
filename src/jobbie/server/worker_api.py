"""Handlers of the worker protocol: enqueue, fetch, ack, fail, heartbeat, release.

They run on the raw ASGI fast path (`fastpath.py`): each takes a `Call` and returns
(status, body).
"""

from __future__ import annotations

import time

from jobbie.errors import JobbieError, Unavailable
from jobbie.models import (
    AckBatchRequest,
    AckBatchResponse,
    AckBatchResult,
    AckRequest,
    EnqueueBatchRequest,
    EnqueueRequest,
    FailRequest,
    FetchManyResponse,
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


async def ack(call: Call) -> Reply:
    req = await call.json(AckRequest)
    params = validation.ack_params(call.param, req, call.rt.limits)
    return 200, StatusResponse(status=await call.store.ack(params))


async def ack_batch(call: Call) -> Reply:
    req = await call.json(AckBatchRequest)
    limits = call.rt.limits
    params = [validation.ack_params(item.job_id, item, limits) for item in req.acks]
    outcomes = await call.store.ack_batch(params)
    results = [
        AckBatchResult(job_id=p.job_id, error=o.message, code=o.code)
        if isinstance(o, JobbieError)
        else AckBatchResult(job_id=p.job_id, status=o)
        for p, o in zip(params, outcomes, strict=True)
    ]
    return 200, AckBatchResponse(results=results)


async def fail(call: Call) -> Reply:
    req = await call.json(FailRequest)
    return 200, await call.store.fail(validation.fail_params(call.param, req, call.rt.limits))


async def heartbeat(call: Call) -> Reply:
    req = await call.json(HeartbeatRequest)
    answers = await call.store.heartbeat(validation.heartbeat_params(req, call.rt.limits))
    statuses = {job_id: HeartbeatJobStatus(status=s) for job_id, s in answers.items()}  # type: ignore[arg-type]
    return 200, HeartbeatResponse(jobs=statuses)


async def release(call: Call) -> Reply:
    req = await call.json(ReleaseRequest)
    params = validation.release_params(call.param, req, call.rt.limits)
    return 200, StatusResponse(status=await call.store.release(params))
