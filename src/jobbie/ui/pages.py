"""The console's pages (GET). Each reads through the Store protocol, like the API."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import NotFound, ValidationError
from jobbie.models import Queue, SearchRequest, SearchResponse
from jobbie.server.manage_api import bounded_search, queue_name
from jobbie.server.runtime import runtime
from jobbie.store.search import search_filter
from jobbie.store.signature import error_signature
from jobbie.store.states import State
from jobbie.ui import filters
from jobbie.ui.charts import history_charts
from jobbie.ui.web import page, render, store_of

STATES = [s.value for s in State]
PRIORITIES = ["critical", "high", "normal", "low"]
BULK_ACTIONS = [
    ("retry", "Retry"),
    ("cancel", "Cancel"),
    ("delete", "Delete"),
    ("move", "Move"),
    ("change_priority", "Change priority"),
]
RECENT_FAILURE_GROUPS = 5
# The busiest keys a queue page lists (the store reads them without scanning the queue).
QUEUE_KEYS_SHOWN = 20
AUDIT_PAGE = 100


async def dashboard_context(request: Request) -> dict[str, Any]:
    st = store_of(request)
    queues, groups, workers = await asyncio.gather(
        st.list_queues(), st.failure_groups(), st.list_workers()
    )
    totals = {s: sum(getattr(q.counts, s) for q in queues) for s in STATES}
    return {
        "queues": queues,
        "totals": totals,
        "groups": groups[:RECENT_FAILURE_GROUPS],
        "failure_kinds": len(groups),
        "workers": workers,
        "states": STATES,
    }


@page
async def dashboard(request: Request) -> Response:
    context = await dashboard_context(request)
    context["charts"] = await history_charts(store_of(request), None)
    return render(
        request, "dashboard.html", title="Dashboard", live="/ui/live/dashboard", **context
    )


async def queue_context(request: Request, name: str) -> dict[str, Any]:
    st = store_of(request)
    queue: Queue = await st.get_queue(name)
    keys = await st.queue_keys(name, QUEUE_KEYS_SHOWN)
    return {"queue": queue, "states": STATES, "keys": keys, "keys_shown": QUEUE_KEYS_SHOWN}


@page
async def queue(request: Request) -> Response:
    name = queue_name(request)
    context = await queue_context(request, name)
    context["charts"] = await history_charts(store_of(request), name)
    return render(
        request,
        "queue.html",
        title=f"Queue {name}",
        live=f"/ui/live/queue?name={filters.quote_value(name)}",
        **context,
    )


@page
async def jobs(request: Request) -> Response:
    req = filters.parse_filter(request.query_params)
    result: SearchResponse = await store_of(request).search(bounded_search(request, req))
    next_url = None
    if result.has_more and result.cursor:
        next_url = "/ui/jobs?" + urlencode(
            [*filters.to_pairs(req, cursor=False), ("cursor", result.cursor)]
        )
    return render(
        request,
        "jobs.html",
        title="Jobs",
        req=req,
        result=result,
        states=STATES,
        priorities=PRIORITIES,
        selected_states=filters.as_list(req.state),
        actions=BULK_ACTIONS,
        query=filters.to_query(req, cursor=False),
        first_page=req.cursor is None,
        next_url=next_url,
        tags=[f"{k}={v}" for k, v in (req.tags or {}).items()],
        time_limit=runtime(request).settings.search_timeout,
    )


async def job_context(request: Request, job_id: str) -> dict[str, Any]:
    job = await store_of(request).get_job(job_id)
    return {"job": job, "signature": error_signature(job.last_error)}


@page
async def job(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    context = await job_context(request, job_id)
    return render(
        request,
        "job.html",
        title=f"Job {job_id}",
        live=f"/ui/live/job?id={filters.quote_value(job_id)}",
        priorities=PRIORITIES,
        **context,
    )


@page
async def failures(request: Request) -> Response:
    groups = await store_of(request).failure_groups()
    rows = [
        (
            g,
            filters.to_query(
                SearchRequest(error_signature=g.signature, state=["dead", "retrying"])
            ),
        )
        for g in groups
    ]
    return render(request, "failures.html", title="Failures", rows=rows)


@page
async def schedules(request: Request) -> Response:
    items = await store_of(request).list_schedules()
    return render(
        request, "schedules.html", title="Schedules", schedules=items, priorities=PRIORITIES
    )


@page
async def batch(request: Request) -> Response:
    item = await store_of(request).get_batch(request.path_params["batch_id"])
    query = filters.to_query(SearchRequest(batch_id=item.id))
    return render(request, "batch.html", title=f"Batch {item.id}", batch=item, query=query)


@page
async def workers(request: Request) -> Response:
    st = store_of(request)
    found = await st.list_workers()
    running = {}
    for w in found:
        if w.active_jobs:
            res = await st.search(
                search_filter(SearchRequest(state="active", worker_id=w.id, limit=20))
            )
            running[w.id] = res.jobs
    return render(request, "workers.html", title="Workers", workers=found, running=running)


async def bulk_context(request: Request, bulk_id: str) -> dict[str, Any]:
    status = await store_of(request).get_bulk(bulk_id)
    done = status.affected + status.skipped + status.errors
    return {"bulk": status, "done": done, "total": max(status.estimated_total, done, 1)}


@page
async def bulk(request: Request) -> Response:
    bulk_id = request.path_params["bulk_id"]
    context = await bulk_context(request, bulk_id)
    return render(
        request,
        "bulk.html",
        title="Bulk operation",
        live=f"/ui/live/bulk?id={filters.quote_value(bulk_id)}",
        **context,
    )


@page
async def audit(request: Request) -> Response:
    before = request.query_params.get("before", "")
    if before and not before.isdigit():
        raise ValidationError("before: an audit entry id")
    entries = await store_of(request).list_audit(AUDIT_PAGE, int(before) if before else None)
    return render(request, "audit.html", title="Audit log", page=entries)


@page
async def not_found(request: Request) -> Response:
    raise NotFound(f"no console page at {request.url.path}")
