"""Serving the app with uvicorn, with Jobbie's own graceful shutdown on SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from types import FrameType

import uvicorn

from jobbie.config import Settings
from jobbie.logs import setup_logging
from jobbie.server.app import create_app
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


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT; returns after a clean shutdown."""
    setup_logging(settings.log_level)
    app = create_app(settings)
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
    )
    _Server(config, app.runtime).run()
    log.info("shutdown: complete")
