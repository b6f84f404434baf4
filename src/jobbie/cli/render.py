"""Rich tables for people (`--output table`); sized to fit an 80-column terminal.

Only the CLI imports this module, and only once a command has an answer to show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from jobbie.client import Job, QueueKey, Schedule, WorkerInfo
    from jobbie.models import Queue, Throttle


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago `moment` was, in one unit: `42s`, `5m`, `3h`, `2d` (`-` when unset)."""
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    return seconds_text(seconds)


def seconds_text(seconds: float | None) -> str:
    """A duration in its largest whole unit (`-` when unknown); negative means in the future."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    value = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            return f"{sign}{int(value // size)}{unit}"
    return f"{sign}{int(value)}s"


def timestamp(moment: datetime | None) -> str:
    """A UTC timestamp to the second, `-` when unset."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _delay(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:g}s"


def compact_json(value: Any, limit: int = 2000) -> str:
    """A JSON value on one line, cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(*columns: str) -> Table:
    """A borderless table; numeric columns (named in capitals ending in `#`) right-aligned."""
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
    for name in columns:
        numeric = name.endswith("#")
        grid.add_column(name.rstrip("#"), justify="right" if numeric else "left", no_wrap=numeric)
    return grid


def queue_status(queue: Queue) -> str:
    """`draining`, `paused` or `running`."""
    if queue.draining:
        return "draining"
    return "paused" if queue.paused else "running"


def period_text(seconds: float) -> str:
    """A throttle window in its largest exact unit: `1m`, `90s`, `36h`, `500ms`."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def rate_text(throttle: Throttle) -> str:
    """A throttle as `rate/period`, the way `jobbie key-limit --rate` takes it (`10/1m`)."""
    return f"{throttle.rate}/{period_text(throttle.period)}"


def key_limits(queue: Queue) -> list[str]:
    """The queue's per-key limits, one short phrase each (`2 active`, `10/1m`)."""
    limits = []
    if queue.key_concurrency is not None:
        limits.append(f"{queue.key_concurrency} active")
    if queue.key_throttle is not None:
        limits.append(rate_text(queue.key_throttle))
    return limits


def key_limits_text(queue: Queue) -> str:
    """The queue's per-key limits in words (`none` without any)."""
    return ", ".join(key_limits(queue)) or "none"


def fairness_cell(queue: Queue) -> str:
    """The fairness mode, then each per-key limit on a line of its own (a narrow column)."""
    return "\n".join([queue.fairness, *(f"{limit}/key" for limit in key_limits(queue))])


def queues_table(queues: Sequence[Queue]) -> Table:
    """One row per queue: status, the waiting and running counts, dead, oldest pending, and,
    when any queue serves its keys other than plain FIFO, how (fairness mode, per-key limits)."""
    fair = any(q.fairness != "fifo" or key_limits(q) for q in queues)
    grid = table(
        "QUEUE",
        "STATUS",
        "PEND#",
        "ACTIVE#",
        "SCHED#",
        "RETRY#",
        "DEAD#",
        "OLDEST#",
        *(["KEYS"] if fair else []),
    )
    grid.columns[0].overflow = "fold"
    grid.columns[-1].no_wrap = True
    for q in queues:
        c = q.counts
        grid.add_row(
            q.name,
            queue_status(q),
            f"{c.pending:,}",
            f"{c.active:,}",
            f"{c.scheduled:,}",
            f"{c.retrying:,}",
            f"{c.dead:,}",
            seconds_text(q.oldest_pending_age),
            *([fairness_cell(q)] if fair else []),
        )
    return grid


def keys_table(keys: Sequence[QueueKey]) -> Table:
    """One row per key of a queue, busiest first: pending, active, completed last minute."""
    grid = table("KEY", "PENDING#", "ACTIVE#", "DONE/MIN#")
    grid.columns[0].overflow = "fold"
    for k in keys:
        grid.add_row(k.key, f"{k.pending:,}", f"{k.active:,}", f"{k.completed_last_minute:,}")
    return grid


def queue_line(queue: Queue) -> str:
    """One line about a queue after an action on it."""
    c = queue.counts
    return (
        f"{queue.name}: {queue_status(queue)} ({c.pending:,} pending, {c.active:,} active, "
        f"{c.scheduled + c.retrying:,} waiting)"
    )


def jobs_table(jobs: Sequence[Job]) -> Table:
    """One row per job: id, queue, state, priority, attempt and age, and the fairness key
    when any job has one."""
    keyed = any(job.key is not None for job in jobs)
    grid = table("ID", "QUEUE", *(["KEY"] if keyed else []), "STATE", "PRIORITY", "TRY#", "AGE#")
    grid.columns[0].no_wrap = True
    grid.columns[1].overflow = "fold"
    if keyed:
        grid.columns[2].overflow = "fold"
    now = datetime.now(UTC)
    for job in jobs:
        key = [job.key or "-"] if keyed else []
        grid.add_row(
            job.id,
            job.queue,
            *key,
            job.state,
            job.priority,
            str(job.attempt),
            age(job.created_at, now),
        )
    return grid


def print_job(console: Console, job: Job) -> None:
    """Every field of a job, then its errors and its event timeline."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    worker = f"{job.worker.id} ({job.worker.hostname or '?'})" if job.worker else "-"
    progress = "-"
    if job.progress is not None:
        p = job.progress
        progress = f"{p.current}/{p.total} {p.message or ''}".strip()
    rows = [
        ("id", job.id),
        ("queue", job.queue),
        ("state", job.state + (" (cancel requested)" if job.cancel_requested else "")),
        ("priority", job.priority),
        ("attempt", f"{job.attempt} of {job.max_retries + 1}"),
        (
            "backoff",
            f"{job.retry_backoff} {_delay(job.retry_base_delay)}..{_delay(job.retry_max_delay)}",
        ),
        ("tags", ", ".join(f"{k}={v}" for k, v in job.tags.items()) or "-"),
        ("key", job.key or "-"),
        ("unique key", job.unique_key or "-"),
        ("batch", job.batch_id or "-"),
        ("worker", worker),
        ("progress", progress),
        ("created", timestamp(job.created_at)),
        ("scheduled", timestamp(job.scheduled_at)),
        ("started", timestamp(job.started_at)),
        ("completed", timestamp(job.completed_at)),
        ("failed", timestamp(job.failed_at)),
        ("expires", timestamp(job.expire_at)),
        ("lease until", timestamp(job.lease_expires_at)),
        ("last error", job.last_error or "-"),
        ("payload", compact_json(job.payload)),
        ("checkpoint", compact_json(job.checkpoint)),
        ("result", compact_json(job.result)),
    ]
    for name, value in rows:
        fields.add_row(name, value)
    console.print(fields)
    if job.errors:
        errors = table("ATTEMPT#", "AT", "ERROR")
        errors.columns[2].overflow = "fold"
        for e in job.errors:
            errors.add_row(
                str(e.attempt), timestamp(e.at), e.error.splitlines()[0] if e.error else ""
            )
        console.print()
        console.print(errors)
    if job.events:
        events = table("AT", "EVENT", "DATA")
        events.columns[2].overflow = "fold"
        for ev in job.events:
            events.add_row(timestamp(ev.at), ev.type, compact_json(ev.data, 200) if ev.data else "")
        console.print()
        console.print(events)


def workers_table(workers: Sequence[WorkerInfo]) -> Table:
    """One row per worker: id, host, queues, active jobs, last seen."""
    grid = table("WORKER", "HOST", "QUEUES", "ACTIVE#", "SEEN#")
    grid.columns[0].overflow = "fold"
    grid.columns[2].overflow = "fold"
    now = datetime.now(UTC)
    for w in workers:
        grid.add_row(
            w.id, w.hostname or "-", ",".join(w.queues), str(w.active_jobs), age(w.last_seen, now)
        )
    return grid


def schedules_table(schedules: Sequence[Schedule]) -> Table:
    """One row per cron schedule: id, name, queue, expression, next run."""
    grid = table("ID", "NAME", "QUEUE", "CRON", "NEXT RUN")
    grid.columns[0].no_wrap = True
    for col in grid.columns[1:4]:
        col.overflow = "fold"
    for s in schedules:
        cron = f"{s.cron} {s.timezone}" if s.timezone != "UTC" else s.cron
        next_run = "paused" if s.paused or s.next_run is None else f"{s.next_run:%m-%d %H:%M}"
        grid.add_row(s.id, s.name, s.queue, cron, next_run)
    return grid
