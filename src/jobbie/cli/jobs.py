"""Job commands: enqueue, inspect, retry, cancel, move, delete."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from jobbie.cli.options import (
    DEFAULT_SERVER,
    ApiKeyOpt,
    JobIdArg,
    KeyOpt,
    Output,
    OutputOpt,
    Priority,
    QueueArg,
    ServerOpt,
    TagOpt,
    parse_duration,
    parse_instant,
    parse_tags,
    read_json,
)
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import EnqueueOptions


class Backoff(StrEnum):
    """Retry backoff curves."""

    none = "none"
    fixed = "fixed"
    linear = "linear"
    exponential = "exponential"


def enqueue(
    queue: QueueArg,
    payload: Annotated[
        str,
        typer.Argument(help="JSON payload: text, @file.json, or - for stdin.", show_default=False),
    ] = "null",
    priority: Annotated[Priority | None, typer.Option("--priority", "-p")] = None,
    unique_key: Annotated[
        str | None, typer.Option(help="Skip the enqueue while a job with this key is unfinished.")
    ] = None,
    unique_period: Annotated[
        str | None, typer.Option(help="How long the unique key is held (e.g. 1h).")
    ] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries after the first run.")] = None,
    backoff: Annotated[Backoff | None, typer.Option(help="Retry delay curve.")] = None,
    base_delay: Annotated[str | None, typer.Option(help="Base retry delay (e.g. 5s).")] = None,
    max_delay: Annotated[str | None, typer.Option(help="Retry delay cap (e.g. 10m).")] = None,
    delay: Annotated[str | None, typer.Option(help="Run after this long (e.g. 30s).")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Run at this RFC 3339 time (scheduled_at).")
    ] = None,
    expire_after: Annotated[
        str | None, typer.Option(help="Dead-letter the job if not started within (e.g. 1h).")
    ] = None,
    tag: TagOpt = None,
    key: KeyOpt = None,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Enqueue a job, e.g. `jobbie enqueue emails '{"to": "a@b.c"}' --priority high`."""
    remote = Remote(server, api_key, output)
    if at is not None and delay is not None:
        raise typer.BadParameter("give either --at or --delay, not both", param_hint="--at")
    value = read_json(payload, "PAYLOAD")
    given: dict[str, Any] = {
        "priority": priority.value if priority else None,
        "unique_key": unique_key,
        "unique_period": parse_duration(unique_period),
        "max_retries": max_retries,
        "retry_backoff": backoff.value if backoff else None,
        "retry_base_delay": parse_duration(base_delay),
        "retry_max_delay": parse_duration(max_delay),
        "delay": parse_duration(delay),
        "scheduled_at": parse_instant(at, "--at"),
        "expire_after": parse_duration(expire_after),
        "tags": parse_tags(tag),
        "key": key,
    }
    options = cast("EnqueueOptions", {k: v for k, v in given.items() if v is not None})
    with remote.connect() as client:
        answer = client.enqueue(queue, value, **options)

    def render(console: Console) -> None:
        note = " (duplicate of an unfinished job)" if answer.unique_existing else ""
        console.print(f"{answer.job_id} {answer.status}{note}")

    remote.emit(answer, render)


def inspect(
    job_id: JobIdArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show a job with every field, its errors and its event timeline."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        job = client.get_job(job_id)

    def render(console: Console) -> None:
        from jobbie.cli.render import print_job

        print_job(console, job)

    remote.emit(job, render)


def retry(
    job_id: JobIdArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Run a dead, cancelled or completed job again (its attempt count starts over)."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        job = client.retry_job(job_id)
    remote.emit(job, lambda console: console.print(f"{job.id} {job.state}"))


def cancel(
    job_id: JobIdArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Cancel a job: at once when it waits, at its next heartbeat when it runs."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        status = client.cancel_job(job_id)
    remote.emit(
        {"job_id": job_id, "status": status}, lambda console: console.print(f"{job_id} {status}")
    )


def move(
    job_id: JobIdArg,
    to_queue: Annotated[str, typer.Argument(help="Destination queue.", show_default=False)],
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Move a job that is not running to another queue."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        job = client.move_job(job_id, to_queue)
    remote.emit(job, lambda console: console.print(f"{job.id} {job.state} in {job.queue}"))


def delete(
    job_id: JobIdArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Delete a job and its history."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        client.delete_job(job_id)
    remote.emit(
        {"job_id": job_id, "deleted": True}, lambda console: console.print(f"{job_id} deleted")
    )
