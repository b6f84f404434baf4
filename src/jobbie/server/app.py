"""The Starlette application: routes, middleware, error mapping and the lifespan that opens the
store and runs the scheduler."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from jobbie.config import Settings
from jobbie.errors import JobbieError
from jobbie.logs import AccessLog
from jobbie.scheduler import Scheduler
from jobbie.server import testclock
from jobbie.server.allow import AllowTable
from jobbie.server.errors import EXCEPTION_HANDLERS
from jobbie.server.event_hub import EventHub
from jobbie.server.fastpath import FastPath
from jobbie.server.history import HistoryRecorder
from jobbie.server.middleware import GuardMiddleware, RequestContextMiddleware
from jobbie.server.openapi import build_document
from jobbie.server.routes import ROUTES, starlette_routes
from jobbie.server.runtime import Runtime
from jobbie.server.sitecheck import SiteGuard
from jobbie.store.base import Store
from jobbie.store.factory import open_store
from jobbie.ui import console_routes

log = logging.getLogger("jobbie.server")


def create_app(settings: Settings) -> JobbieApp:
    """A ready-to-serve app; the database opens when the lifespan starts."""
    rt = Runtime(settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            store = await _open_store(settings, rt)
        except JobbieError as exc:
            # One line an operator can act on (no traceback): e.g. PostgreSQL unreachable.
            log.error("cannot open the database: %s", exc.message)
            raise StartupFailed(exc.message) from None
        rt.store = store
        rt.events = EventHub(store, rt.notifier, rt.metrics, max_streams=settings.max_event_streams)
        described = store.describe()
        if not settings.postgres:
            described["durability"] = "full" if settings.durable else "fast"
        log.info("database ready", extra=described)
        if settings.postgres:
            log.info(
                "--data-dir and --durability do not apply to PostgreSQL: the database's own"
                " settings (synchronous_commit, replication) decide durability"
            )
        if settings.test_clock:
            log.warning("test clock enabled: POST /_test/clock moves this server's time")
        if (warning := exposure_warning(settings)) is not None:
            log.warning(warning)
        rt.scheduler = Scheduler(store, settings.scheduler_interval)
        rt.scheduler.start()
        history = HistoryRecorder(store)
        history.start()
        log.info("scheduler started", extra={"interval_s": settings.scheduler_interval})
        try:
            yield
        finally:
            rt.begin_shutdown()
            await rt.scheduler.stop()
            await history.stop()
            log.info("shutdown: scheduler stopped")
            await rt.events.close()
            await store.close()
            log.info("shutdown: writer flushed, database closed")
            if access is not None:
                access.flush()

    # The access log is written at info level, like the others.
    access = None
    if settings.access_log and logging.getLogger("jobbie.access").isEnabledFor(logging.INFO):
        access = AccessLog(sys.stderr.buffer)
    rt.openapi = msgspec.json.encode(build_document(ROUTES))
    rt.allow = AllowTable(ROUTES)
    routes: list[BaseRoute] = [*starlette_routes(), *console_routes()]
    if settings.test_clock:
        routes.append(Route("/_test/clock", testclock.advance_clock, methods=["POST"]))
    starlette = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    starlette.state.runtime = rt
    # Outermost first: request id, access log and 500s; CORS; Host and Origin checks; API keys
    # and body size; then
    # the worker protocol's fast path, which hands every other route to Starlette.
    asgi: ASGIApp = FastPath(starlette, rt=rt, routes=ROUTES)
    asgi = GuardMiddleware(
        asgi,
        api_keys=settings.keys,
        max_body_bytes=settings.max_body_bytes,
        protect_metrics=settings.protect_metrics,
    )
    asgi = SiteGuard(
        asgi,
        loopback=settings.loopback,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
    )
    if settings.cors_origins:
        asgi = CORSMiddleware(
            asgi,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    asgi = RequestContextMiddleware(asgi, access=access, observe=rt.metrics.observe_request)
    return JobbieApp(asgi, rt)


def exposure_warning(settings: Settings) -> str | None:
    """A warning when anyone who can reach the address may use the whole API."""
    if settings.loopback or settings.api_keys:
        return None
    return (
        f"listening on {settings.bind} without API keys: anyone who can reach this address"
        " can enqueue, read and delete jobs; set --api-key (JOBBIE_API_KEY)"
    )


class JobbieApp:
    """The served ASGI app, with the runtime its server needs at shutdown."""

    def __init__(self, asgi: ASGIApp, runtime: Runtime) -> None:
        self._asgi = asgi
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


class StartupFailed(Exception):
    """The server could not start; the reason is already logged."""


async def _open_store(settings: Settings, rt: Runtime) -> Store:
    return await open_store(
        database=settings.database,
        data_dir=settings.data_dir,
        durable=settings.durable,
        retention=settings.retention,
        clock=rt.clock,
        on_commit=rt.notifier.on_commit,
        node_id=settings.node_id,
        address=settings.bind,
        pool_size=settings.pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
