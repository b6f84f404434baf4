"""The console's actions (POST): each checks the CSRF token (see `web.action`), calls the
Store like the API's handlers do, then redirects back with a notice."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import msgspec
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import ValidationError
from jobbie.models import (
    BulkAccepted,
    BulkRequest,
    FairnessRequest,
    MoveRequest,
    ScheduleRequest,
)
from jobbie.server import validation
from jobbie.server.audit import describe_bulk
from jobbie.server.console_api import export_response
from jobbie.server.manage_api import queue_name
from jobbie.server.runtime import runtime
from jobbie.timeutil import DAY_MS, duration_ms
from jobbie.ui import filters
from jobbie.ui.pages import BULK_ACTIONS
from jobbie.ui.web import action, audited, page, redirect, render, store_of
from jobbie.wirenum import decode_request

_ACTION_WORDS = dict(BULK_ACTIONS)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _count(n: int, what: str = "job") -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


# --- queues ------------------------------------------------------------------------------------


@action
async def queue_action(request: Request, form: FormData) -> Response:
    name = queue_name(request)
    op = request.path_params["op"]
    st = store_of(request)
    back = f"/ui/queues/{quote(name, safe='')}"
    if op == "pause":
        await st.pause_queue(name)
        audited(request, "queue.pause", f"queue {name}", None)
        return redirect(back, f"Queue {name} paused")
    if op == "resume":
        await st.resume_queue(name)
        audited(request, "queue.resume", f"queue {name}", None)
        return redirect(back, f"Queue {name} resumed")
    if op == "drain":
        await st.drain_queue(name)
        audited(request, "queue.drain", f"queue {name}", None)
        return redirect(back, f"Queue {name} draining: paused once its active jobs end")
    if op == "clear":
        cleared = await st.clear_queue(name)
        audited(request, "queue.clear", f"queue {name}", cleared)
        return redirect(back, f"Cleared {_count(cleared, 'waiting job')} from {name}")
    if op == "concurrency":
        raw = _text(form, "max")
        maximum = _whole(raw, "max", minimum=1) if raw else None
        await st.set_concurrency(name, maximum)
        audited(request, "queue.concurrency", f"queue {name}: {maximum}", None)
        limit = "unlimited" if maximum is None else str(maximum)
        return redirect(back, f"Concurrency of {name}: {limit}")
    if op == "throttle":
        rate = _whole(_text(form, "rate"), "rate", minimum=1)
        period = _text(form, "period") or "1s"
        window_ms = duration_ms(period, "period", 100, DAY_MS)
        await st.set_throttle(name, rate, window_ms)
        audited(request, "queue.throttle", f"queue {name}: {rate} per {period}", None)
        return redirect(back, f"Throttle of {name}: {rate} per {period}")
    if op == "unthrottle":
        await st.set_throttle(name, None, None)
        audited(request, "queue.unthrottle", f"queue {name}", None)
        return redirect(back, f"Throttle of {name} removed")
    if op == "fairness":
        try:  # the API's rule: fifo or round_robin
            mode = msgspec.convert({"mode": _text(form, "mode")}, FairnessRequest).mode
        except msgspec.ValidationError as exc:
            raise ValidationError(str(exc)) from None
        await st.set_fairness(name, mode)
        audited(request, "queue.fairness", f"queue {name}: {mode}", None)
        return redirect(back, f"Fairness of {name}: {mode}")
    if op == "key-concurrency":
        raw = _text(form, "max")
        maximum = _whole(raw, "max", minimum=1) if raw else None
        await st.set_key_concurrency(name, maximum)
        audited(request, "queue.key_concurrency", f"queue {name}: {maximum}", None)
        limit = "no limit" if maximum is None else f"at most {maximum} active"
        return redirect(back, f"Per-key concurrency of {name}: {limit}")
    if op == "key-throttle":
        rate = _whole(_text(form, "rate"), "rate", minimum=1)
        period = _text(form, "period") or "1s"
        window_ms = duration_ms(period, "period", 100, DAY_MS)
        await st.set_key_throttle(name, rate, window_ms)
        audited(request, "queue.key_throttle", f"queue {name}: {rate} per {period}", None)
        return redirect(back, f"Per-key throttle of {name}: {rate} per {period}")
    if op == "key-unthrottle":
        await st.set_key_throttle(name, None, None)
        audited(request, "queue.key_unthrottle", f"queue {name}", None)
        return redirect(back, f"Per-key throttle of {name} removed")
    raise ValidationError(f"unknown queue action {op!r}")


def _whole(raw: str, name: str, *, minimum: int = 0) -> int:
    if not raw.isdigit() or int(raw) < minimum:
        raise ValidationError(f"{name}: expected a whole number of at least {minimum}")
    return int(raw)


# --- one job -----------------------------------------------------------------------------------


@action
async def job_action(request: Request, form: FormData) -> Response:
    job_id = request.path_params["job_id"]
    op = request.path_params["op"]
    st = store_of(request)
    back = f"/ui/jobs/{quote(job_id, safe='')}"
    if op == "retry":
        await st.retry_job(job_id)
        audited(request, "job.retry", f"job {job_id}", 1)
        return redirect(back, "Job queued to run again")
    if op == "cancel":
        state = await st.cancel_job(job_id)
        audited(request, "job.cancel", f"job {job_id}", 1)
        return redirect(back, f"Job {state}")
    if op == "delete":
        await st.delete_job(job_id)
        audited(request, "job.delete", f"job {job_id}", 1)
        return redirect("/ui/jobs", f"Job {job_id} deleted")
    if op == "move":
        target = _text(form, "queue")
        try:  # the API's queue-name rule
            moved = msgspec.convert({"queue": target}, MoveRequest)
        except msgspec.ValidationError as exc:
            raise ValidationError(str(exc)) from None
        await st.move_job(job_id, moved.queue)
        audited(request, "job.move", f"job {job_id} to {moved.queue}", 1)
        return redirect(back, f"Job moved to {target}")
    if op == "priority":
        fields = {"action": "change_priority", "job_ids": [job_id]}
        spec = validation.bulk_spec(_convert({**fields, "priority": _text(form, "priority")}))
        result = await st.bulk(spec)
        changed = getattr(result, "affected", 0)
        audited(request, "job.change_priority", f"job {job_id}", changed)
        return redirect(
            back,
            "Priority changed" if changed else "Priority unchanged: the job is no longer waiting",
        )
    raise ValidationError(f"unknown job action {op!r}")


def _convert(fields: dict[str, object]) -> BulkRequest:
    """The bulk request these fields make, validated exactly as an API body would be."""
    try:
        return decode_request(msgspec.json.encode(fields), BulkRequest)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None


# --- many jobs ---------------------------------------------------------------------------------


@action
async def bulk_action(request: Request, form: FormData) -> Response:
    """Bulk on the selected rows, or on every match of the page's filter: the latter first
    answers a dry-run count to confirm."""
    verb = _text(form, "action")
    if verb not in _ACTION_WORDS:
        raise ValidationError(f"unknown bulk action {verb!r}")
    query = _text(form, "query")
    fields: dict[str, object] = {"action": verb}
    if verb == "move":
        fields["move_to_queue"] = _text(form, "move_to_queue")
    if verb == "change_priority":
        fields["priority"] = _text(form, "priority")
    scope = _text(form, "scope") or "selected"
    if scope == "selected":
        ids = [v for v in form.getlist("job_id") if isinstance(v, str) and v]
        if not ids:
            return redirect(f"/ui/jobs?{query}", "Select jobs first, or choose all matching")
        fields["job_ids"] = ids
    else:
        search = filters.parse_filter(QueryParams(query))
        fields["filter"] = msgspec.structs.replace(search, cursor=None, limit=None)
    spec = validation.bulk_spec(_convert(fields))
    st = store_of(request)
    if scope != "selected" and _text(form, "confirmed") != "yes":
        matched = await st.bulk_matches(spec)
        return render(
            request,
            "confirm.html",
            title="Confirm",
            verb=_ACTION_WORDS[verb],
            matched=matched,
            hidden=[(k, v) for k, v in form.multi_items() if k != "csrf" and isinstance(v, str)],
            back=f"/ui/jobs?{query}",
            filter_pairs=parse_qsl(query),
        )
    result = await st.bulk(spec)
    body = msgspec.json.decode(msgspec.json.encode(fields))
    affected = result.estimated_total if isinstance(result, BulkAccepted) else result.affected
    audited(request, "jobs.bulk", describe_bulk(body), affected)
    if isinstance(result, BulkAccepted):
        return redirect(f"/ui/bulk/{result.bulk_operation_id}", "Running in the background")
    notice = f"{_ACTION_WORDS[verb]}: {_count(result.affected)} changed"
    if result.skipped:
        notice += f", {result.skipped} skipped (not in a state the action applies to)"
    return redirect(f"/ui/jobs?{query}", notice)


@page
async def export(request: Request) -> Response:
    """`/ui/jobs/export?format=csv&<filters>`: the API's export, for a browser session."""
    params = request.query_params
    fmt = params.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise ValidationError("format: ndjson or csv")
    return export_response(store_of(request), filters.parse_filter(params), fmt)


# --- schedules ---------------------------------------------------------------------------------


@action
async def create_schedule(request: Request, form: FormData) -> Response:
    try:
        payload = msgspec.json.decode(_text(form, "payload") or "{}")
    except msgspec.DecodeError as exc:
        raise ValidationError(f"payload: not JSON ({exc})") from None
    fields = {
        "name": _text(form, "name"),
        "queue": _text(form, "queue"),
        "cron": _text(form, "cron"),
        "timezone": _text(form, "timezone") or "UTC",
        "priority": _text(form, "priority") or "normal",
        "payload": payload,
    }
    if key := _text(form, "key"):
        fields["key"] = key
    try:  # validated exactly as the API's body
        req = decode_request(msgspec.json.encode(fields), ScheduleRequest)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc)) from None
    spec = validation.schedule_spec(req, runtime(request).limits)
    created = await store_of(request).create_schedule(spec)
    audited(request, "schedule.create", f"schedule {created.name}", None)
    return redirect("/ui/schedules", f"Schedule {created.name} added")


@action
async def schedule_action(request: Request, form: FormData) -> Response:
    schedule_id = request.path_params["schedule_id"]
    op = request.path_params["op"]
    st = store_of(request)
    if op == "run":
        job_id = await st.run_schedule(schedule_id)
        audited(request, "schedule.run", f"schedule {schedule_id}", 1)
        return redirect("/ui/schedules", f"Enqueued job {job_id}")
    if op == "delete":
        await st.delete_schedule(schedule_id)
        audited(request, "schedule.delete", f"schedule {schedule_id}", None)
        return redirect("/ui/schedules", "Schedule removed")
    if op in ("pause", "resume"):
        s = await st.get_schedule(schedule_id)
        req = ScheduleRequest(
            name=s.name,
            queue=s.queue,
            cron=s.cron,
            timezone=s.timezone,
            payload=s.payload,
            priority=s.priority,
            max_retries=s.max_retries,
            tags=s.tags,
            key=s.key,
            paused=op == "pause",
        )
        audited(request, f"schedule.{op}", f"schedule {schedule_id}", None)
        await st.update_schedule(
            schedule_id, validation.schedule_spec(req, runtime(request).limits)
        )
        return redirect("/ui/schedules", f"Schedule {s.name} {op}d")
    raise ValidationError(f"unknown schedule action {op!r}")
