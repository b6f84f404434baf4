"""Handlers of the worker protocol: enqueue, fetch, ack, fail, heartbeat, release."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

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
from jobbie.server.bodies import decode, json_response
from jobbie.server.longpoll import fetch_jobs
from jobbie.server.runtime import runtime, store


async def enqueue(request: Request) -> Response:
    req = await decode(request, EnqueueRequest)
    job = validation.new_job(req, runtime(request).limits)
    result = await store(request).enqueue(job)
    return json_response(result, 200 if result.unique_existing else 201)


async def enqueue_batch(request: Request) -> Response:
    req = await decode(request, EnqueueBatchRequest)
    jobs, batch = validation.new_jobs(req, runtime(request).limits)
    return json_response(await store(request).enqueue_batch(jobs, batch), 201)


async def fetch(request: Request) -> Response:
    req = await decode(request, FetchRequest)
    params, timeout = validation.fetch_params(req)
    rt = runtime(request)
    if rt.draining:
        raise Unavailable("the server is shutting down")
    started = time.perf_counter()
    jobs = await fetch_jobs(
        store(request), rt.notifier, params, timeout, lambda: _disconnected(request)
    )
    rt.metrics.fetch_wait.observe(time.perf_counter() - started)
    if not jobs:
        return Response(status_code=204)
    if req.count is None:
        return json_response(jobs[0])
    return json_response(FetchManyResponse(jobs=jobs))


async def _disconnected(request: Request) -> None:
    """Return once the client has closed the connection (the body is already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def ack(request: Request) -> Response:
    req = await decode(request, AckRequest)
    params = validation.ack_params(request.path_params["job_id"], req, runtime(request).limits)
    return json_response(StatusResponse(status=await store(request).ack(params)))


async def ack_batch(request: Request) -> Response:
    req = await decode(request, AckBatchRequest)
    limits = runtime(request).limits
    params = [validation.ack_params(item.job_id, item, limits) for item in req.acks]
    outcomes = await store(request).ack_batch(params)
    results = [
        AckBatchResult(job_id=p.job_id, error=o.message, code=o.code)
        if isinstance(o, JobbieError)
        else AckBatchResult(job_id=p.job_id, status=o)
        for p, o in zip(params, outcomes, strict=True)
    ]
    return json_response(AckBatchResponse(results=results))


async def fail(request: Request) -> Response:
    req = await decode(request, FailRequest)
    params = validation.fail_params(request.path_params["job_id"], req, runtime(request).limits)
    return json_response(await store(request).fail(params))


async def heartbeat(request: Request) -> Response:
    req = await decode(request, HeartbeatRequest)
    params = validation.heartbeat_params(req, runtime(request).limits)
    answers = await store(request).heartbeat(params)
    return json_response(
        HeartbeatResponse(
            jobs={job_id: HeartbeatJobStatus(status=s) for job_id, s in answers.items()}  # type: ignore[arg-type]
        )
    )


async def release(request: Request) -> Response:
    req = await decode(request, ReleaseRequest)
    params = validation.release_params(request.path_params["job_id"], req, runtime(request).limits)
    return json_response(StatusResponse(status=await store(request).release(params)))
