"""Handlers for operators: job detail and cancel, queue listing and configuration, health."""

from __future__ import annotations

import re

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import ValidationError
from jobbie.models import (
    QUEUE_NAME_PATTERN,
    BulkAccepted,
    BulkRequest,
    ClearResponse,
    ClusterNode,
    ClusterStatus,
    ConcurrencyRequest,
    DeleteQueueResponse,
    DryRunResponse,
    FairnessRequest,
    MoveRequest,
    QueueKeyList,
    QueueList,
    ScheduleList,
    ScheduleRequest,
    SearchRequest,
    StatusResponse,
    ThrottleRequest,
    WorkerList,
)
from jobbie.server import validation
from jobbie.server.bodies import decode, json_response
from jobbie.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from jobbie.server.runtime import runtime, store
from jobbie.store.search import SearchFilter, search_filter
from jobbie.timeutil import DAY_MS, duration_ms, rfc3339
from jobbie.wirenum import convert_query

_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)
_MIN_PERIOD_MS = 100
KEYS_DEFAULT_LIMIT, KEYS_MAX_LIMIT = 20, 1000


def queue_name(request: Request) -> str:
    name: str = request.path_params["name"]
    if not _QUEUE_NAME.search(name):
        raise ValidationError(
            f"invalid queue name {name!r}: use 1-200 characters of [A-Za-z0-9._:-]"
        )
    return name


async def metrics(request: Request) -> Response:
    """Prometheus exposition of queue counts, totals and latency histograms."""
    rt = runtime(request)
    queues = await store(request).list_queues()
    body = rt.metrics.render(queues, rt.notifier.waiting, await store(request).keys_with_backlog())
    return Response(body, media_type=METRICS_CONTENT_TYPE)


async def get_job(request: Request) -> Response:
    return json_response(await store(request).get_job(request.path_params["job_id"]))


async def cancel_job(request: Request) -> Response:
    status = await store(request).cancel_job(request.path_params["job_id"])
    return json_response(StatusResponse(status=status))


async def list_queues(request: Request) -> Response:
    return json_response(QueueList(queues=await store(request).list_queues()))


async def pause_queue(request: Request) -> Response:
    return json_response(await store(request).pause_queue(queue_name(request)))


async def resume_queue(request: Request) -> Response:
    return json_response(await store(request).resume_queue(queue_name(request)))


async def set_concurrency(request: Request) -> Response:
    name = queue_name(request)
    req = await decode(request, ConcurrencyRequest)
    return json_response(await store(request).set_concurrency(name, req.max))


async def set_throttle(request: Request) -> Response:
    name = queue_name(request)
    req = await decode(request, ThrottleRequest)
    window_ms = duration_ms(req.period, "period", _MIN_PERIOD_MS, DAY_MS)
    return json_response(await store(request).set_throttle(name, req.rate, window_ms))


async def remove_throttle(request: Request) -> Response:
    return json_response(await store(request).set_throttle(queue_name(request), None, None))


async def set_fairness(request: Request) -> Response:
    name = queue_name(request)
    req = await decode(request, FairnessRequest)
    return json_response(await store(request).set_fairness(name, req.mode))


async def set_key_concurrency(request: Request) -> Response:
    name = queue_name(request)
    req = await decode(request, ConcurrencyRequest)
    return json_response(await store(request).set_key_concurrency(name, req.max))


async def set_key_throttle(request: Request) -> Response:
    name = queue_name(request)
    req = await decode(request, ThrottleRequest)
    window_ms = duration_ms(req.period, "period", _MIN_PERIOD_MS, DAY_MS)
    return json_response(await store(request).set_key_throttle(name, req.rate, window_ms))


async def remove_key_throttle(request: Request) -> Response:
    return json_response(await store(request).set_key_throttle(queue_name(request), None, None))


async def queue_keys(request: Request) -> Response:
    """`GET /api/v1/queues/{name}/keys?limit=`: the busiest keys, from per-key counters."""
    name = queue_name(request)
    limit = request.query_params.get("limit", str(KEYS_DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= KEYS_MAX_LIMIT:
        raise ValidationError(f"limit: a whole number from 1 to {KEYS_MAX_LIMIT}")
    return json_response(QueueKeyList(keys=await store(request).queue_keys(name, int(limit))))


async def retry_job(request: Request) -> Response:
    return json_response(await store(request).retry_job(request.path_params["job_id"]))


async def move_job(request: Request) -> Response:
    req = await decode(request, MoveRequest)
    return json_response(await store(request).move_job(request.path_params["job_id"], req.queue))


async def delete_job(request: Request) -> Response:
    await store(request).delete_job(request.path_params["job_id"])
    return json_response(StatusResponse(status="deleted"))


async def clear_queue(request: Request) -> Response:
    return json_response(
        ClearResponse(cleared=await store(request).clear_queue(queue_name(request)))
    )


async def drain_queue(request: Request) -> Response:
    return json_response(await store(request).drain_queue(queue_name(request)))


async def delete_queue(request: Request) -> Response:
    name = queue_name(request)
    if request.query_params.get("confirm") != "true":
        raise ValidationError("deleting a queue and all its jobs needs ?confirm=true")
    return json_response(DeleteQueueResponse(deleted_jobs=await store(request).delete_queue(name)))


async def bulk(request: Request) -> Response:
    req = await decode(request, BulkRequest)
    spec = validation.bulk_spec(req)
    if req.dry_run:
        return json_response(DryRunResponse(matched=await store(request).bulk_matches(spec)))
    result = await store(request).bulk(spec)
    return json_response(result, 202 if isinstance(result, BulkAccepted) else 200)


def bounded_search(request: Request, req: SearchRequest) -> SearchFilter:
    """The search filter of `req` under this server's search time limit."""
    limit_ms = round(runtime(request).settings.search_timeout * 1000)
    return search_filter(req, time_limit_ms=limit_ms)


async def search_jobs(request: Request) -> Response:
    req = await decode(request, SearchRequest)
    return json_response(await store(request).search(bounded_search(request, req)))


async def dead_jobs(request: Request) -> Response:
    """The dead-letter queue: a search shortcut taking `queue`, `limit` and `cursor`."""
    query = request.query_params
    fields: dict[str, object] = {"state": ["dead"]}
    if query.getlist("queue"):
        fields["queue"] = query.getlist("queue")
    for name in ("limit", "cursor"):
        if name in query:
            fields[name] = query[name]
    try:
        req = convert_query(fields, SearchRequest)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None
    return json_response(await store(request).search(bounded_search(request, req)))


async def get_bulk(request: Request) -> Response:
    return json_response(await store(request).get_bulk(request.path_params["bulk_id"]))


async def get_batch(request: Request) -> Response:
    return json_response(await store(request).get_batch(request.path_params["batch_id"]))


async def list_workers(request: Request) -> Response:
    return json_response(WorkerList(workers=await store(request).list_workers()))


async def cluster_status(request: Request) -> Response:
    """The servers sharing the database, or this one alone, leading (it runs the scheduler)."""
    rt = runtime(request)
    backend = store(request).backend
    nodes = await store(request).cluster_nodes()
    if nodes is not None:
        return json_response(ClusterStatus(mode="cluster", backend=backend, nodes=nodes))
    node = ClusterNode(
        id=rt.settings.node_id,
        address=rt.settings.bind,
        leader=True,
        last_seen=rfc3339(rt.clock.now_ms()) or "",
    )
    return json_response(ClusterStatus(mode="single", backend=backend, nodes=[node]))


async def create_schedule(request: Request) -> Response:
    req = await decode(request, ScheduleRequest)
    spec = validation.schedule_spec(req, runtime(request).limits)
    return json_response(await store(request).create_schedule(spec), 201)


async def list_schedules(request: Request) -> Response:
    return json_response(ScheduleList(schedules=await store(request).list_schedules()))


async def get_schedule(request: Request) -> Response:
    return json_response(await store(request).get_schedule(request.path_params["schedule_id"]))


async def update_schedule(request: Request) -> Response:
    req = await decode(request, ScheduleRequest)
    spec = validation.schedule_spec(req, runtime(request).limits)
    schedule_id = request.path_params["schedule_id"]
    return json_response(await store(request).update_schedule(schedule_id, spec))


async def delete_schedule(request: Request) -> Response:
    await store(request).delete_schedule(request.path_params["schedule_id"])
    return json_response(StatusResponse(status="deleted"))
