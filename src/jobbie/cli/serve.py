"""`jobbie server` and `jobbie worker`: the processes. Their imports stay inside the commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Durability(StrEnum):
    """How hard the server works to keep acknowledged writes."""

    full = "full"
    fast = "fast"


class LogLevel(StrEnum):
    """Log levels."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def server(
    bind: Annotated[
        str | None, typer.Option(help="HOST:PORT to listen on [env JOBBIE_BIND; 127.0.0.1:8080]")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database directory, created if missing [env JOBBIE_DATA_DIR; ./data]"),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="Database URL: sqlite:///DIR (the embedded store; default: --data-dir) or"
            " postgresql://USER@HOST:PORT/DB (several servers on one database)"
            " [env JOBBIE_DATABASE]"
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None, typer.Option(help="Log level [env JOBBIE_LOG_LEVEL; info]")
    ] = None,
    durability: Annotated[
        Durability | None,
        typer.Option(
            help="full: every acknowledged write is fsync-ed; fast: synchronous=NORMAL"
            " [env JOBBIE_DURABILITY; full]"
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Require Bearer keys on /api/ (comma-separated; an entry may be name=secret)"
            " [env JOBBIE_API_KEY]"
        ),
    ] = None,
    read_only_api_key: Annotated[
        str | None,
        typer.Option(
            help="Keys that may only read: GET routes and job search (comma-separated)"
            " [env JOBBIE_READ_ONLY_API_KEY]"
        ),
    ] = None,
    scheduler_interval: Annotated[
        float | None,
        typer.Option(help="Seconds between scheduler passes [env JOBBIE_SCHEDULER_INTERVAL; 1]"),
    ] = None,
    cors_origin: Annotated[
        str | None,
        typer.Option(help="Allow these origins (comma-separated) [env JOBBIE_CORS_ORIGIN]"),
    ] = None,
    allowed_host: Annotated[
        str | None,
        typer.Option(
            help="Host names accepted besides loopback ones while bound to loopback"
            " (comma-separated; * for any) [env JOBBIE_ALLOWED_HOST]"
        ),
    ] = None,
    protect_metrics: Annotated[
        bool | None,
        typer.Option(
            "--protect-metrics",
            help="/metrics and /openapi.json need an API key too [env JOBBIE_PROTECT_METRICS]",
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            help="Open connections (parked long-polls included) before new requests get 503"
            " [env JOBBIE_MAX_CONNECTIONS; 4096]"
        ),
    ] = None,
    keep_alive: Annotated[
        float | None,
        typer.Option(help="Seconds an idle connection stays open [env JOBBIE_KEEP_ALIVE; 5]"),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to receive a request's headers [env JOBBIE_HEADER_TIMEOUT; 10]"),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to receive a body after its headers [env JOBBIE_BODY_TIMEOUT; 60]"
        ),
    ] = None,
    max_header_bytes: Annotated[
        int | None,
        typer.Option(
            help="Request line and headers, in bytes [env JOBBIE_MAX_HEADER_BYTES; 65536]"
        ),
    ] = None,
    max_headers: Annotated[
        int | None,
        typer.Option(help="Headers in one request [env JOBBIE_MAX_HEADERS; 100]"),
    ] = None,
    max_response_bytes: Annotated[
        int | None,
        typer.Option(
            help="A fetch answer holds fewer jobs past this many bytes"
            " [env JOBBIE_MAX_RESPONSE_BYTES; 67108864]"
        ),
    ] = None,
    search_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a job search may read before it answers with what it found"
            " [env JOBBIE_SEARCH_TIMEOUT; 2]"
        ),
    ] = None,
    max_event_streams: Annotated[
        int | None,
        typer.Option(
            help="Concurrent event streams (SSE); more get 503 [env JOBBIE_MAX_EVENT_STREAMS; 100]"
        ),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option(
            help="PostgreSQL only: connections this server opens [env JOBBIE_POOL_SIZE; 10]"
        ),
    ] = None,
    statement_timeout_ms: Annotated[
        int | None,
        typer.Option(
            help="PostgreSQL only: a statement running longer is cancelled (503)"
            " [env JOBBIE_STATEMENT_TIMEOUT_MS; 5000]"
        ),
    ] = None,
    test_clock: Annotated[
        bool | None,
        typer.Option(
            "--test-clock",
            hidden=True,
            help="Tests only: let POST /_test/clock move the server's clock forward",
        ),
    ] = None,
) -> None:
    """Run the server: HTTP API, scheduler and database (embedded SQLite by default) in one
    process."""
    from jobbie.config import Settings
    from jobbie.server.run import serve

    try:
        settings = Settings.build(
            {
                "bind": bind,
                "data_dir": data_dir,
                "database": database,
                "log_level": log_level.value if log_level else None,
                "durability": durability.value if durability else None,
                "api_key": api_key,
                "read_only_api_key": read_only_api_key,
                "scheduler_interval": scheduler_interval,
                "cors_origin": cors_origin,
                "max_event_streams": max_event_streams,
                "test_clock": "1" if test_clock else None,
                "allowed_host": allowed_host,
                "protect_metrics": "1" if protect_metrics else None,
                "max_connections": max_connections,
                "keep_alive": keep_alive,
                "header_timeout": header_timeout,
                "body_timeout": body_timeout,
                "max_header_bytes": max_header_bytes,
                "max_headers": max_headers,
                "max_response_bytes": max_response_bytes,
                "pool_size": pool_size,
                "statement_timeout_ms": statement_timeout_ms,
                "search_timeout": search_timeout,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    serve(settings)


def worker(
    target: Annotated[
        str,
        typer.Argument(help="module:attribute of a jobbie.Worker, or of a function returning one"),
    ],
    log_level: Annotated[LogLevel, typer.Option(help="Log level")] = LogLevel.info,
) -> None:
    """Run a Worker defined in your code, e.g. `jobbie worker myapp.jobs:worker`.

    SIGTERM or SIGINT stops fetching, waits for running jobs up to the worker's
    shutdown_timeout, then hands the rest back to the server with their checkpoints.
    """
    import logging

    from jobbie.client.worker import load_worker
    from jobbie.logs import setup_logging

    setup_logging(log_level.value)
    if log_level is not LogLevel.debug:
        # httpx logs every request at INFO: one line per fetch and ack is noise here.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        loaded = load_worker(target)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise typer.BadParameter(f"{target}: {exc}", param_hint="TARGET") from None
    loaded.run()
