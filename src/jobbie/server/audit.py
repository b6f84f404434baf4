"""The audit log of management actions through the API: who did what to which jobs, when.

Every state-changing operator route is wrapped (`audited`): after a successful answer its
action, target (path parameters, or a bulk request's ids or filter) and the number of jobs it
affected (read from the answer) are recorded with the caller's actor name (`jobbie.keys`).
Worker-protocol calls and enqueues are not management actions and are not recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from jobbie.errors import ValidationError
from jobbie.keys import ANONYMOUS
from jobbie.models import AuditList
from jobbie.server.bodies import json_response, read_body
from jobbie.server.middleware import ACTOR
from jobbie.server.runtime import runtime, store
from jobbie.store.console import AuditRecord

Handler = Callable[[Request], Awaitable[Response]]

_JOB = "/api/v1/jobs/{job_id}"
_QUEUE = "/api/v1/queues/{name}"
_SCHEDULE = "/api/v1/schedules/{schedule_id}"
# (method, path) -> action name, for every management route.
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", f"{_JOB}/cancel"): "job.cancel",
    ("POST", f"{_JOB}/retry"): "job.retry",
    ("POST", f"{_JOB}/move"): "job.move",
    ("DELETE", _JOB): "job.delete",
    ("POST", "/api/v1/jobs/bulk"): "jobs.bulk",
    ("POST", f"{_QUEUE}/clear"): "queue.clear",
    ("POST", f"{_QUEUE}/drain"): "queue.drain",
    ("DELETE", _QUEUE): "queue.delete",
    ("POST", f"{_QUEUE}/pause"): "queue.pause",
    ("POST", f"{_QUEUE}/resume"): "queue.resume",
    ("POST", f"{_QUEUE}/concurrency"): "queue.concurrency",
    ("POST", f"{_QUEUE}/throttle"): "queue.throttle",
    ("DELETE", f"{_QUEUE}/throttle"): "queue.unthrottle",
    ("POST", f"{_QUEUE}/fairness"): "queue.fairness",
    ("POST", f"{_QUEUE}/key-concurrency"): "queue.key_concurrency",
    ("POST", f"{_QUEUE}/key-throttle"): "queue.key_throttle",
    ("DELETE", f"{_QUEUE}/key-throttle"): "queue.key_unthrottle",
    ("POST", "/api/v1/schedules"): "schedule.create",
    ("PUT", _SCHEDULE): "schedule.update",
    ("DELETE", _SCHEDULE): "schedule.delete",
    ("POST", f"{_SCHEDULE}/run"): "schedule.run",
}
# Answer fields that say how many jobs an action touched.
_COUNT_FIELDS = ("affected", "cleared", "deleted_jobs", "estimated_total")
_TARGET_LIMIT = 2000
# Actions whose target is described by the request body rather than the path.
_BODY_TARGETS = frozenset({"jobs.bulk", "schedule.create"})
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def audited(method: str, path: str, handler: Handler) -> Handler:
    """The handler, recording its successful calls when the route is a management action."""
    action = ACTIONS.get((method, path))
    if action is None:
        return handler

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        body = b""
        if action in _BODY_TARGETS:  # read once here (size-checked), replayed to the handler
            body = await read_body(request)
            request = Request(request.scope, _replay(body))
        response = await handler(request)
        if response.status_code < 300:
            answer = _decode(response.body)
            if "matched" not in answer:  # a bulk dry run changes nothing
                target = _target(request, action, _decode(body))
                await record(request, action, target, _affected(action, answer), "api")
        return response

    return wrapped


async def record(
    request: Request, action: str, target: str, affected: int | None, source: str
) -> None:
    actor = request.scope.get(ACTOR) or getattr(request.state, "actor", None) or ANONYMOUS
    entry = AuditRecord(
        actor=actor,
        action=action,
        target=target[:_TARGET_LIMIT],
        affected=affected,
        source="console" if source == "console" else "api",
    )
    await store(request).record_audit(entry, runtime(request).settings.audit_retention_ms)


async def list_audit(request: Request) -> Response:
    """`GET /api/v1/audit?limit=&before=`: newest first."""
    query = request.query_params
    limit, before = query.get("limit", str(DEFAULT_LIMIT)), query.get("before")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise ValidationError(f"limit: a whole number from 1 to {MAX_LIMIT}")
    if before is not None and not before.isdigit():
        raise ValidationError("before: an audit entry id")
    page: AuditList = await store(request).list_audit(
        int(limit), int(before) if before is not None else None
    )
    return json_response(page)


def _decode(body: bytes | memoryview) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(bytes(body))
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _affected(action: str, answer: dict[str, Any]) -> int | None:
    for name in _COUNT_FIELDS:
        if isinstance(answer.get(name), int):
            return int(answer[name])
    if action.startswith("job.") or action == "schedule.run":
        return 1
    return None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _target(request: Request, action: str, body: dict[str, Any]) -> str:
    params = request.path_params
    if "job_id" in params:
        return f"job {params['job_id']}"
    if "name" in params:
        return f"queue {params['name']}"
    if "schedule_id" in params:
        return f"schedule {params['schedule_id']}"
    if action == "jobs.bulk":
        return describe_bulk(body)
    if action == "schedule.create":
        return f"schedule {body.get('name', '?')}"
    return request.url.path


def describe_bulk(body: dict[str, Any]) -> str:
    """A bulk request's action and what it names, e.g. `retry filter {"queue":"emails"}`."""
    verb = body.get("action", "?")
    if body.get("job_ids") is not None:
        ids = body["job_ids"]
        return f"{verb} {len(ids)} job ids: {', '.join(map(str, ids[:20]))}"
    filt = {k: v for k, v in (body.get("filter") or {}).items() if k not in ("cursor", "limit")}
    return f"{verb} filter {msgspec.json.encode(filt).decode()}"
