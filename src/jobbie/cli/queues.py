"""Queue commands: queues, pause, resume, clear, drain, destroy."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from jobbie.cli.options import DEFAULT_SERVER, ApiKeyOpt, Output, OutputOpt, QueueArg, ServerOpt
from jobbie.cli.remote import EXIT_REFUSED, EXIT_USAGE, Remote, fail

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import Client
    from jobbie.models import Queue

DRAIN_POLL_SECONDS = 0.25


def queues(
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List queues with their counts by state, pause/drain status and oldest pending job."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        found = client.queues()

    def render(console: Console) -> None:
        from jobbie.cli.render import queues_table

        if found:
            console.print(queues_table(found))
        else:
            console.print("no queues yet")

    remote.emit({"queues": found}, render)


def _print_queue(queue: Queue) -> None:
    from jobbie.cli.remote import stdout_console
    from jobbie.cli.render import queue_line

    stdout_console().print(queue_line(queue))


def pause(
    queue: QueueArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Pause a queue: workers get none of its jobs until it is resumed."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        answer = client.pause(queue)
    remote.emit(answer, lambda _: _print_queue(answer))


def resume(
    queue: QueueArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Resume a paused or drained queue."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        answer = client.resume(queue)
    remote.emit(answer, lambda _: _print_queue(answer))


def clear(
    queue: QueueArg,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Delete a queue's waiting jobs (pending, scheduled, retrying); running jobs finish."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        cleared = client.clear(queue)
    remote.emit(
        {"queue": queue, "cleared": cleared},
        lambda console: console.print(f"{queue}: {cleared:,} waiting jobs deleted"),
    )


def drain(
    queue: QueueArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow until no job is active, then exit.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="With --wait: give up (exit 1) after this many seconds."),
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Stop handing out a queue's jobs; once none is active the queue is paused."""
    remote = Remote(server, api_key, output)
    with remote.connect() as client:
        answer = client.drain(queue)
        if wait:
            answer = _follow_drain(client, queue, timeout)
    remote.emit(answer, lambda _: _print_queue(answer))


def _follow_drain(client: Client, name: str, timeout: float | None) -> Queue:
    """Poll the queue until its active count is 0 and the drain is over, showing progress."""
    from jobbie.cli.live import StatusLine

    deadline = None if timeout is None else time.monotonic() + timeout
    with StatusLine() as status:
        while True:
            queue = client.queue(name)
            status.update(f"draining {name}: {queue.counts.active:,} active")
            if queue.counts.active == 0 and not queue.draining:
                return queue
            if deadline is not None and time.monotonic() >= deadline:
                fail(
                    f"{name} still has {queue.counts.active:,} active jobs after {timeout:g}s",
                    EXIT_REFUSED,
                )
            time.sleep(DRAIN_POLL_SECONDS)


def destroy(
    queue: QueueArg,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Required: the queue and all its jobs go.")
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Delete a queue and every job in it (needs --confirm)."""
    remote = Remote(server, api_key, output)
    if not confirm:
        fail(f"destroy deletes {queue} and all its jobs: add --confirm", EXIT_USAGE)
    with remote.connect() as client:
        deleted = client.delete_queue(queue)
    remote.emit(
        {"queue": queue, "deleted_jobs": deleted},
        lambda console: console.print(f"{queue} deleted with {deleted:,} jobs"),
    )
