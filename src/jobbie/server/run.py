"""Serving the app with uvicorn, with Jobbie's own graceful shutdown on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import Iterator
from types import FrameType

import uvicorn

from jobbie.config import Settings
from jobbie.logs import setup_logging
from jobbie.server.app import create_app
from jobbie.server.protocol import ConnectionLimits, protocol_class
from jobbie.server.runtime import Runtime

log = logging.getLogger("jobbie.server")


class _Server(uvicorn.Server):
    """On a signal: first mark the server draining and answer long-polls (ours), then let
    uvicorn stop accepting and close connections, then the lifespan closes the store."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if not self.should_exit:
            log.info("jobbie ready", extra={"url": f"http://{self.config.host}:{self.config.port}"})

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the signal after shutdown, which kills the process with -15;
            # our shutdown is complete and graceful, so the process exits 0 instead.
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.info("shutdown: signal %s received", sig)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._runtime.begin_shutdown)
        super().handle_exit(sig, frame)


def _raise_file_limit(connections: int) -> None:
    """Make room for `connections` sockets plus the database's files, within the hard limit."""
    wanted = connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            log.warning(
                "open-file limit %d is below --max-connections + 256; lower"
                " --max-connections or raise the limit (ulimit -n)",
                new,
            )


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT; returns after a clean shutdown."""
    setup_logging(settings.log_level)
    app = create_app(settings)
    limits = ConnectionLimits(
        max_connections=settings.max_connections,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
    )
    _raise_file_limit(settings.max_connections)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace),
        server_header=False,
        # Jobbie logs no client addresses, so X-Forwarded-* rewriting would be wasted work.
        proxy_headers=False,
        # Connection limits and deadlines are the protocol's (server/protocol.py).
        http=protocol_class(limits),
        timeout_keep_alive=max(1, round(settings.keep_alive)),
        backlog=min(settings.max_connections, 4096),
    )
    server = _Server(config, app.runtime)
    server.run()
    if not server.started:
        # The lifespan failed (e.g. the database could not be opened); it logged why.
        raise SystemExit(3)
    log.info("shutdown: complete")
