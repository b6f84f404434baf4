"""`jobbie schedules list|add|remove`: cron schedules that enqueue jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from jobbie.cli.options import (
    DEFAULT_SERVER,
    ApiKeyOpt,
    KeyOpt,
    Output,
    OutputOpt,
    Priority,
    QueueArg,
    ServerOpt,
    TagOpt,
    parse_tags,
    read_json,
)
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import ScheduleOptions

app = typer.Typer(
    name="schedules",
    help="Cron schedules: list, add, remove.",
    no_args_is_help=True,
)


@app.command("list")
def list_schedules(
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Every cron schedule with its next run."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        found = client.schedules()

    def render(console: Console) -> None:
        from jobbie.cli.render import schedules_table

        console.print(schedules_table(found) if found else "no schedules")

    remote.emit({"schedules": found}, render)


@app.command("add")
def add_schedule(
    name: Annotated[str, typer.Argument(help="A name for people.", show_default=False)],
    queue: QueueArg,
    cron: Annotated[str, typer.Argument(help="5 fields or @hourly, @daily...", show_default=False)],
    payload: Annotated[
        str | None,
        typer.Option(help="JSON payload of each job: text, @file.json or -.", show_default=False),
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the expression.")] = "UTC",
    priority: Annotated[Priority | None, typer.Option("--priority", "-p")] = None,
    max_retries: Annotated[int | None, typer.Option()] = None,
    tag: TagOpt = None,
    key: KeyOpt = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Add a schedule, e.g. `jobbie schedules add nightly reports '0 3 * * *'`."""
    remote = Remote(server, api_key, output)
    given: dict[str, Any] = {
        "timezone": timezone,
        "priority": priority.value if priority else None,
        "max_retries": max_retries,
        "tags": parse_tags(tag),
        "key": key,
        "paused": paused,
    }
    if payload is not None:
        given["payload"] = read_json(payload, "--payload")
    options = cast("ScheduleOptions", {k: v for k, v in given.items() if v is not None})
    with remote.connect() as client:
        created = client.create_schedule(name, queue, cron, **options)

    def render(console: Console) -> None:
        from jobbie.cli.render import timestamp

        console.print(f"{created.id} {created.name}: next run {timestamp(created.next_run)}")

    remote.emit(created, render)


@app.command("remove")
def remove_schedule(
    schedule_id: Annotated[
        str, typer.Argument(help="Schedule id (sched_...).", show_default=False)
    ],
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Remove a schedule (jobs it already enqueued stay)."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        client.delete_schedule(schedule_id)
    remote.emit(
        {"schedule_id": schedule_id, "deleted": True},
        lambda console: console.print(f"{schedule_id} removed"),
    )
