"""`jobbie migrate-store --from DATA_DIR --to DSN`: moving up from SQLite to PostgreSQL.

A local command, like `jobbie backup`: it reads the stopped server's database file directly and
writes the target database. The copy itself is jobbie.store.postgres.importer's.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from jobbie.cli.options import Output, OutputOpt
from jobbie.cli.remote import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, fail


def migrate_store(
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="The SQLite server's data directory (the one holding jobbie.db)",
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            help="The PostgreSQL database to fill: postgresql://USER[:PASSWORD]@HOST[:PORT]/DB;"
            " it must hold no jobs, queues, schedules or batches",
            show_default=False,
        ),
    ],
    output: OutputOpt = Output.table,
) -> None:
    """Copy a stopped SQLite server's whole store into a new PostgreSQL database.

    Stop the server first: a data directory still in use is refused. Copies every job (ids,
    states, payloads, attempts, errors, leases, keys, tags, timestamps, in their order), queue
    setting, schedule, batch, unique lock, running total, worker and audit entry, in one
    transaction that is checked by counts before it commits; on any difference nothing is
    kept. Not copied: lifecycle events (event streams start afresh) and per-minute history
    (the console's charts start empty). Then start the servers with --database DSN.
    """
    from jobbie.store.postgres.importer import (
        ImportFailed,
        ImportRefused,
        TargetUnavailable,
        import_sqlite,
    )
    from jobbie.store.sqlite.source import SourceRefused

    if urlsplit(target).scheme.lower() not in ("postgresql", "postgres"):
        fail("--to must be a postgresql:// URL", EXIT_USAGE)
    try:
        result = asyncio.run(import_sqlite(source, target))
    except (SourceRefused, ImportRefused, ImportFailed) as exc:
        fail(str(exc), EXIT_REFUSED)
    except TargetUnavailable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    if output is Output.json:
        typer.echo(
            json.dumps(
                {
                    "target": result.target,
                    "rows": result.rows,
                    "nul_replaced": result.nul_replaced,
                    "seconds": round(result.seconds, 3),
                }
            )
        )
        return
    typer.echo(f"copied {source / 'jobbie.db'} to {result.target} in {result.seconds:.2f} s")
    width = max(map(len, result.rows))
    for table, rows in result.rows.items():
        typer.echo(f"  {table:<{width}}  {rows:>10,}")
    if result.nul_replaced:
        typer.echo(
            f"  {result.nul_replaced} text values held the character U+0000, which PostgreSQL"
            " cannot store: it became U+FFFD"
        )
    typer.echo("counts verified; start the servers with --database pointing at it")
