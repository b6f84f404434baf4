"""API routes added with the web console: one queue, a schedule run now, and job export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobbie.models import ExportRequest, Job, RunScheduleResponse, SearchRequest
from jobbie.server.bodies import decode, json_response
from jobbie.server.manage_api import queue_name
from jobbie.server.runtime import store
from jobbie.store.base import Store
from jobbie.store.search import search_filter

EXPORT_COLUMNS = (
    "id", "queue", "state", "priority", "attempt", "max_retries", "tags",
    "created_at", "started_at", "completed_at", "failed_at", "last_error",
)  # fmt: skip
_EXPORT_PAGE = 1000


async def get_queue(request: Request) -> Response:
    return json_response(await store(request).get_queue(queue_name(request)))


async def run_schedule(request: Request) -> Response:
    job_id = await store(request).run_schedule(request.path_params["schedule_id"])
    return json_response(RunScheduleResponse(job_id=job_id), 201)


async def export_jobs(request: Request) -> Response:
    req = await decode(request, ExportRequest)
    return export_response(store(request), req, req.format)


def export_response(st: Store, req: SearchRequest, fmt: str) -> Response:
    """Every job matching `req`, streamed page by page (keyset: each job once)."""
    search = msgspec.structs.replace(
        req, cursor=None, limit=_EXPORT_PAGE, sort="created_at", order="asc"
    )
    search_filter(search)  # a bad filter is a 400 before the stream starts
    if fmt == "csv":
        return StreamingResponse(
            _csv(st, search),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="jobs.csv"'},
        )
    return StreamingResponse(
        _ndjson(st, search),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="jobs.ndjson"'},
    )


async def _jobs(st: Store, search: SearchRequest) -> AsyncIterator[list[Job]]:
    while True:
        page = await st.search(search_filter(search))
        if page.jobs:
            yield page.jobs
        if not page.has_more or page.cursor is None:
            return
        search = msgspec.structs.replace(search, cursor=page.cursor)


async def _ndjson(st: Store, search: SearchRequest) -> AsyncIterator[bytes]:
    async for jobs in _jobs(st, search):
        yield b"".join(msgspec.json.encode(job) + b"\n" for job in jobs)


async def _csv(st: Store, search: SearchRequest) -> AsyncIterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    async for jobs in _jobs(st, search):
        for job in jobs:
            row = [getattr(job, name) for name in EXPORT_COLUMNS]
            row[EXPORT_COLUMNS.index("tags")] = msgspec.json.encode(job.tags).decode()
            writer.writerow("" if v is None else v for v in row)
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode()
