"""`jobbie bulk <action>`: one action over many jobs, named on stdin or by a filter.

jobbie search --state dead --output json | jobbie bulk retry
jobbie bulk move --to emails.slow --filter '{"queue": "emails", "state": ["pending"]}'
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from jobbie.cli.options import (
    DEFAULT_SERVER,
    ApiKeyOpt,
    Output,
    OutputOpt,
    Priority,
    ServerOpt,
    read_json,
)
from jobbie.cli.remote import EXIT_REFUSED, EXIT_USAGE, Remote, fail

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import BulkOperation, BulkResult, BulkStatus, Client, JobFilter
    from jobbie.client.types import BulkAction
    from jobbie.models import PriorityName

# Above this many jobs the command asks before acting (unless --yes).
CONFIRM_ABOVE = 1000
# Ids are sent in chunks that the server runs at once (it backgrounds more than 10,000).
CHUNK = 10_000
STATUS_POLL_SECONDS = 0.25


class Verb(StrEnum):
    """Bulk actions; each applies to some states and skips jobs in the others."""

    retry = "retry"
    delete = "delete"
    cancel = "cancel"
    move = "move"
    requeue = "requeue"
    change_priority = "change-priority"


def parse_job_ids(text: str) -> list[str]:
    """Job ids from `search --output json` (or any JSON list of ids or of objects with `id`),
    or one per line (the first word of each line, so `enqueue` output works too)."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise typer.BadParameter(
                f"stdin is not valid JSON ({exc})", param_hint="stdin"
            ) from None
        items = doc.get("jobs") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise typer.BadParameter("expected a list of jobs or ids", param_hint="stdin")
        ids = [_id_of(item) for item in items]
    else:
        ids = [line.split()[0] for line in stripped.splitlines() if line.strip()]
    return list(dict.fromkeys(ids))


def _id_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        found = item.get("id", item.get("job_id"))
        if isinstance(found, str):
            return found
    raise typer.BadParameter(f"no job id in {json.dumps(item)[:80]}", param_hint="stdin")


def bulk(
    action: Annotated[Verb, typer.Argument(help="What to do to every job.", show_default=False)],
    filter_json: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help="Search criteria as JSON (text, @file or -) instead of ids on stdin.",
            show_default=False,
        ),
    ] = None,
    to_queue: Annotated[
        str | None, typer.Option("--to", help="move: the destination queue.", show_default=False)
    ] = None,
    priority: Annotated[
        Priority | None,
        typer.Option("--priority", "-p", help="change-priority: the new priority."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the jobs and stop.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help=f"Do not ask above {CONFIRM_ABOVE:,} jobs.")
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Retry, delete, cancel, move, requeue or re-prioritise many jobs at once.

    Job ids come from stdin: `jobbie search ... --output json | jobbie bulk retry`, or one id
    per line. Jobs in states the action does not apply to are skipped and counted.
    """
    remote = Remote(server, api_key, output)
    if (action is Verb.move) != (to_queue is not None):
        raise typer.BadParameter("--to is needed by move, and only by move", param_hint="--to")
    if (action is Verb.change_priority) != (priority is not None):
        raise typer.BadParameter(
            "--priority is needed by change-priority, and only by it", param_hint="--priority"
        )
    criteria: JobFilter | None = None
    job_ids: list[str] = []
    if filter_json is not None:
        found = read_json(filter_json, "--filter")
        if not isinstance(found, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--filter")
        criteria = cast("JobFilter", found)
    elif sys.stdin.isatty():
        raise typer.BadParameter("pipe job ids on stdin or give --filter", param_hint="stdin")
    else:
        job_ids = parse_job_ids(sys.stdin.read())
    run = _Run(
        action=cast("BulkAction", action.value.replace("-", "_")),
        to_queue=to_queue,
        priority=priority.value if priority else None,
    )
    with remote.connect() as client:
        matched = len(job_ids) if criteria is None else _count(client, criteria)
        if dry_run:
            result = run.document(matched, dry_run=True)
        else:
            if matched > CONFIRM_ABOVE and not yes:
                _confirm(f"{action.value} {matched:,} jobs?")
            if criteria is not None:
                run.by_filter(client, criteria)
            else:
                run.by_ids(client, job_ids)
            result = run.document(matched, dry_run=False)

    def render(console: Console) -> None:
        if dry_run:
            console.print(f"dry run: {action.value} would apply to {matched:,} matching jobs")
        else:
            console.print(
                f"{action.value}: {run.affected:,} affected, {run.skipped:,} skipped"
                f" (wrong state), {run.errors:,} errors"
            )

    remote.emit(result, render)


def _count(client: Client, criteria: JobFilter) -> int:
    """How many jobs match `criteria`, exactly."""
    paging = ("sort", "order", "cursor", "limit")
    only_filters = cast("JobFilter", {k: v for k, v in criteria.items() if k not in paging})
    return client.count_jobs(**only_filters)


def _confirm(question: str) -> None:
    """Ask on the terminal (stdin may be the pipe of ids); no terminal means add --yes."""
    try:
        with open("/dev/tty", "r+", encoding="utf-8") as tty:
            tty.write(f"{question} [y/N] ")
            tty.flush()
            reply = tty.readline().strip().lower()
    except OSError:
        fail(f"{question[:-1]}: more than {CONFIRM_ABOVE:,} jobs, add --yes", EXIT_USAGE)
    if reply not in ("y", "yes"):
        fail("cancelled, nothing changed", EXIT_REFUSED)


class _Run:
    """One bulk action as it runs: sends the requests and adds up the counts."""

    def __init__(
        self, *, action: BulkAction, to_queue: str | None, priority: PriorityName | None
    ) -> None:
        self.action = action
        self.to_queue = to_queue
        self.priority = priority
        self.affected = self.skipped = self.errors = 0
        self.duration_ms = 0.0
        self.operation_id: str | None = None

    def _send(
        self, client: Client, job_ids: list[str] | None, criteria: JobFilter | None
    ) -> BulkResult | BulkOperation:
        return client.bulk(
            self.action,
            job_ids=job_ids,
            filter=criteria,
            move_to_queue=self.to_queue,
            priority=self.priority,
        )

    def by_ids(self, client: Client, job_ids: list[str]) -> None:
        """Send the ids in chunks, showing progress when there is more than one."""
        from jobbie.cli.live import StatusLine

        with StatusLine() as status:
            for start in range(0, len(job_ids), CHUNK):
                if len(job_ids) > CHUNK:
                    status.update(f"{self.action}: {start:,} of {len(job_ids):,} jobs sent")
                self._add(client, self._send(client, job_ids[start : start + CHUNK], None))

    def by_filter(self, client: Client, criteria: JobFilter) -> None:
        """One request; the server may run it in the background."""
        self._add(client, self._send(client, None, criteria))

    def _add(self, client: Client, answer: BulkResult | BulkOperation) -> None:
        from jobbie.client import BulkOperation

        if isinstance(answer, BulkOperation):
            final = self._follow(client, answer)
            self.affected += final.affected
            self.skipped += final.skipped
            self.errors += final.errors
            self.duration_ms += _elapsed_ms(final)
        else:
            self.affected += answer.affected
            self.skipped += answer.skipped
            self.errors += answer.errors
            self.duration_ms += answer.duration_ms

    def _follow(self, client: Client, operation: BulkOperation) -> BulkStatus:
        """Poll a background operation to its end, showing how far it got."""
        from jobbie.cli.live import StatusLine

        self.operation_id = operation.bulk_operation_id
        with StatusLine() as status:
            while True:
                state = client.bulk_status(operation.bulk_operation_id)
                done = state.affected + state.skipped + state.errors
                status.update(
                    f"{self.action} in the background: {done:,} of ~{state.estimated_total:,}"
                )
                if state.status != "running":
                    break
                time.sleep(STATUS_POLL_SECONDS)
        if state.status == "failed":
            fail(f"bulk operation {state.id} failed after {done:,} jobs", EXIT_REFUSED)
        return state

    def document(self, matched: int, *, dry_run: bool) -> dict[str, Any]:
        """The JSON answer; the counts are null in a dry run."""
        counts: dict[str, Any] = {
            "affected": self.affected,
            "skipped": self.skipped,
            "errors": self.errors,
            "duration_ms": round(self.duration_ms, 3),
        }
        if dry_run:
            counts = dict.fromkeys(counts)
        return {
            "action": self.action,
            "matched": matched,
            "dry_run": dry_run,
            **counts,
            "bulk_operation_id": self.operation_id,
        }


def _elapsed_ms(state: BulkStatus) -> float:
    """How long a finished background operation ran, by the server's clock."""
    from datetime import datetime

    if state.finished_at is None:
        return 0.0
    created = datetime.fromisoformat(state.created_at)
    return (datetime.fromisoformat(state.finished_at) - created).total_seconds() * 1000
