"""The `jobbie` command line: the server and worker processes, and client commands that drive a
server through `jobbie.Client`.

Command modules import only typer and the standard library at the top; the client, rich and
msgspec are imported inside the commands, so `jobbie --help` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from jobbie.cli import (
    backup,
    bulk,
    fairness,
    jobs,
    migrate_store,
    queues,
    schedules,
    search,
    serve,
    status,
    top,
)
from jobbie.cli.remote import EXIT_REFUSED, EXIT_USAGE

__all__ = ["app", "main"]

HELP = (
    "Jobbie: a language-agnostic background-job server.\n\n"
    "Client commands take --server (env JOBBIE_URL), --api-key (env JOBBIE_API_KEY) and "
    "--output table|json. Exit codes: 0 ok, 1 the server refused, 2 usage error, 3 the server "
    "could not be reached."
)

app = typer.Typer(
    name="jobbie",
    help=HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from jobbie import __version__

        typer.echo(f"jobbie {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """The root of every command: only `--version` lives here (see HELP)."""


_PROCESSES = "Processes"
_JOBS = "Jobs"
_QUEUES = "Queues"
_OVERVIEW = "Overview"

for panel, command in (
    (_PROCESSES, serve.server),
    (_PROCESSES, serve.worker),
    (_PROCESSES, backup.backup),
    (_PROCESSES, migrate_store.migrate_store),
    (_JOBS, jobs.enqueue),
    (_JOBS, jobs.inspect),
    (_JOBS, jobs.retry),
    (_JOBS, jobs.cancel),
    (_JOBS, jobs.move),
    (_JOBS, jobs.delete),
    (_JOBS, search.search),
    (_JOBS, bulk.bulk),
    (_QUEUES, queues.queues),
    (_QUEUES, queues.pause),
    (_QUEUES, queues.resume),
    (_QUEUES, queues.clear),
    (_QUEUES, queues.drain),
    (_QUEUES, queues.destroy),
    (_QUEUES, fairness.fairness),
    (_QUEUES, fairness.key_limit),
    (_QUEUES, fairness.keys),
    (_OVERVIEW, status.status),
    (_OVERVIEW, status.workers),
    (_OVERVIEW, top.top),
):
    app.command(rich_help_panel=panel)(command)
app.add_typer(schedules.app, name="schedules", rich_help_panel=_OVERVIEW)


def _is_click_error(exc: BaseException, name: str) -> bool:
    # typer vendors click and exports only some of its exceptions: match the rest by name.
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main() -> None:
    """Entry point of the `jobbie` console script and of `python -m jobbie`.

    Usage errors are printed as one line (click would print a usage block) and exit 2.
    """
    try:
        code = app(prog_name="jobbie", standalone_mode=False)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    except Exception as exc:
        if _is_click_error(exc, "NoArgsIsHelpError"):
            sys.stderr.write(str(exc.format_message()) + "\n")  # type: ignore[attr-defined]
            sys.exit(EXIT_USAGE)
        if not _is_click_error(exc, "ClickException"):
            raise
        message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    sys.exit(code if isinstance(code, int) else 0)
