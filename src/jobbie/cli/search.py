"""`jobbie search`: every filter of the search API as a flag, one page or `--all`."""

from __future__ import annotations

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
    State,
    TagOpt,
    parse_instant,
    parse_tags,
)
from jobbie.cli.remote import Remote

if TYPE_CHECKING:
    from rich.console import Console

    from jobbie.client import Client, JobFilter, SearchPage

ALL_PAGE_SIZE = 1000


class Sort(StrEnum):
    """Fields search results can be sorted by."""

    created_at = "created_at"
    priority = "priority"
    started_at = "started_at"
    completed_at = "completed_at"
    scheduled_at = "scheduled_at"
    attempt = "attempt"


class Order(StrEnum):
    """Sort directions."""

    asc = "asc"
    desc = "desc"


_FILTERS = "Filters"
_TIMES = "Time filters (RFC 3339, or a duration meaning that long ago: 90s, 2h, 1d)"
_PAGES = "Sorting and pages"

Time = Annotated[str | None, typer.Option(rich_help_panel=_TIMES, show_default=False)]


def search(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Repeat for several.", rich_help_panel=_FILTERS),
    ] = None,
    state: Annotated[
        list[State] | None,
        typer.Option("--state", help="Repeat for several.", rich_help_panel=_FILTERS),
    ] = None,
    priority: Annotated[
        list[Priority] | None,
        typer.Option("--priority", "-p", help="Repeat for several.", rich_help_panel=_FILTERS),
    ] = None,
    tag: TagOpt = None,
    payload_contains: Annotated[
        str | None,
        typer.Option(help="Substring of the payload's JSON text.", rich_help_panel=_FILTERS),
    ] = None,
    jq: Annotated[
        str | None,
        typer.Option(
            "--jq", "--payload-jq", help="e.g. '.user.id == 42'.", rich_help_panel=_FILTERS
        ),
    ] = None,
    created_after: Time = None,
    created_before: Time = None,
    scheduled_after: Time = None,
    scheduled_before: Time = None,
    started_after: Time = None,
    started_before: Time = None,
    completed_after: Time = None,
    completed_before: Time = None,
    expire_after: Time = None,
    expire_before: Time = None,
    attempt_min: Annotated[int | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    attempt_max: Annotated[int | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    unique_key: Annotated[str | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    key: Annotated[str | None, typer.Option(help="Fairness key.", rich_help_panel=_FILTERS)] = None,
    batch_id: Annotated[str | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    worker_id: Annotated[str | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    has_errors: Annotated[
        bool | None,
        typer.Option(
            "--has-errors/--no-errors",
            help="Jobs with (or without) failed attempts.",
            rich_help_panel=_FILTERS,
            show_default=False,
        ),
    ] = None,
    error_contains: Annotated[str | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    job_id_prefix: Annotated[str | None, typer.Option(rich_help_panel=_FILTERS)] = None,
    sort: Annotated[
        Sort | None, typer.Option(help="[default: created_at]", rich_help_panel=_PAGES)
    ] = None,
    order: Annotated[
        Order | None, typer.Option(help="[default: desc]", rich_help_panel=_PAGES)
    ] = None,
    cursor: Annotated[
        str | None, typer.Option(help="Page to start at.", rich_help_panel=_PAGES)
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Jobs per page (1-1000) [default: 50].", rich_help_panel=_PAGES),
    ] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="Walk every page.", rich_help_panel=_PAGES)
    ] = False,
    server: ServerOpt = DEFAULT_SERVER,
    api_key: ApiKeyOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Find jobs; filters combine with AND. `--output json` pipes into `jobbie bulk`."""
    remote = Remote(server, api_key, output)
    given: dict[str, Any] = {
        "queue": queue or None,
        "state": [s.value for s in state] if state else None,
        "priority": [p.value for p in priority] if priority else None,
        "tags": parse_tags(tag),
        "payload_contains": payload_contains,
        "payload_jq": jq,
        "attempt_min": attempt_min,
        "attempt_max": attempt_max,
        "unique_key": unique_key,
        "key": key,
        "batch_id": batch_id,
        "worker_id": worker_id,
        "has_errors": has_errors,
        "error_contains": error_contains,
        "job_id_prefix": job_id_prefix,
    }
    times = {
        "created_after": created_after,
        "created_before": created_before,
        "scheduled_after": scheduled_after,
        "scheduled_before": scheduled_before,
        "started_after": started_after,
        "started_before": started_before,
        "completed_after": completed_after,
        "completed_before": completed_before,
        "expire_after": expire_after,
        "expire_before": expire_before,
    }
    for name, text in times.items():
        given[name] = parse_instant(text, "--" + name.replace("_", "-"))
    criteria = cast("JobFilter", {k: v for k, v in given.items() if v is not None})
    paging = {
        "sort": sort.value if sort else None,
        "order": order.value if order else None,
        "limit": limit,
    }
    with remote.connect() as client:
        if all_pages:
            page = _every_page(client, criteria, paging, cursor)
        else:
            page = client.search(cursor=cursor, **paging, **criteria)  # type: ignore[arg-type]

    def render(console: Console) -> None:
        from jobbie.cli.render import jobs_table

        if page.jobs:
            console.print(jobs_table(page.jobs))
        more = "+" if page.total_capped or page.timed_out else ""
        console.print(f"{len(page.jobs):,} of {page.total:,}{more} jobs")
        if page.timed_out:
            console.print(
                "the search hit the server's time limit: these are the matches found until"
                " then; add --queue, --state or a time range to narrow it"
            )
        if page.has_more and page.cursor:
            console.print(f"next page: --cursor {page.cursor} (or --all)")

    remote.emit(page, render)


def _every_page(
    client: Client, criteria: JobFilter, paging: dict[str, Any], cursor: str | None
) -> SearchPage:
    """Walk the pages from `cursor` to the last, as one page; progress on stderr."""
    from jobbie.cli.live import StatusLine
    from jobbie.client import SearchPage, SearchTimedOut

    paging = {**paging, "limit": paging["limit"] or ALL_PAGE_SIZE}
    jobs = []
    took = 0.0
    with StatusLine() as status:
        while True:
            page = client.search(cursor=cursor, **paging, **criteria)
            if page.timed_out and not page.jobs:
                raise SearchTimedOut(
                    "the search hit the server's time limit before finding a match;"
                    " add --queue, --state or a time range to narrow it"
                )
            jobs.extend(page.jobs)
            took += page.duration_ms or 0.0
            if not page.has_more or page.cursor is None:
                break
            status.update(f"fetched {len(jobs):,} of {page.total:,} jobs")
            cursor = page.cursor
    return SearchPage(
        jobs=jobs,
        total=page.total,
        cursor=None,
        has_more=False,
        duration_ms=took,
        total_capped=page.total_capped,
    )
