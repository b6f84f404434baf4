"""`jobbie backup PATH`: an online copy of the embedded database, taken on the server's machine.

A local command, not an API call: it reads the database file of `--data-dir` directly, while
the server keeps serving (see jobbie.store.sqlite.backup).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from jobbie.cli.options import Output, OutputOpt
from jobbie.cli.remote import EXIT_REFUSED, EXIT_USAGE, fail

PG_DUMP_HINT = (
    "jobbie backup copies the embedded SQLite database; back up PostgreSQL with its own tools,"
    " e.g. pg_dump --format=custom --file=jobbie.dump DATABASE_URL (restore with pg_restore)"
)


def backup(
    path: Annotated[
        str,
        typer.Argument(
            help="File to write; an existing directory (or one ending in /) gets jobbie.db"
            " inside, ready to serve as a --data-dir"
        ),
    ],
    data_dir: Annotated[
        Path,
        typer.Option(envvar="JOBBIE_DATA_DIR", help="The server's database directory"),
    ] = Path("./data"),
    database: Annotated[
        str | None,
        typer.Option(
            envvar="JOBBIE_DATABASE",
            help="The server's database URL: sqlite:///DIR (overrides --data-dir)",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Copy the server's SQLite database to PATH while the server runs (consistent, online).

    Every job the server answered before the copy began is in it. Restore: stop the server,
    put the copy in an empty data directory as jobbie.db, start the server on that directory.
    """
    from jobbie.store.factory import sqlite_dir
    from jobbie.store.sqlite.backup import BackupError, backup_database

    if database is not None:
        scheme = urlsplit(database).scheme.lower()
        if scheme in ("postgresql", "postgres"):
            fail(PG_DUMP_HINT, EXIT_USAGE)
        if scheme != "sqlite":
            fail(f"--database must be sqlite:///DIR, got {database!r}", EXIT_USAGE)
    source_dir = sqlite_dir(database, data_dir)
    try:
        result = backup_database(source_dir, path, overwrite=force)
    except BackupError as exc:
        fail(str(exc), EXIT_REFUSED)
    except OSError as exc:
        fail(f"backup failed: {exc}", EXIT_REFUSED)
    summary = {
        "path": str(result.path),
        "bytes": result.bytes,
        "jobs": result.jobs,
        "seconds": round(result.seconds, 3),
    }
    if output is Output.json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"backed up {result.jobs} jobs ({result.bytes:,} bytes) to {result.path}"
            f" in {result.seconds:.2f} s"
        )
