"""The Starlette application: routes, middleware, error mapping and the lifespan that opens the
store and runs the scheduler."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from jobbie.config import Settings
from jobbie.logs import AccessLog
from jobbie.scheduler import Scheduler
from jobbie.server.errors import EXCEPTION_HANDLERS
from jobbie.server.fastpath import FastPath
from jobbie.server.middleware import GuardMiddleware, RequestContextMiddleware
from jobbie.server.openapi import build_document
from jobbie.server.routes import ROUTES, starlette_routes
from jobbie.server.runtime import Runtime
from jobbie.store.sqlite.store import SqliteStore

log = logging.getLogger("jobbie.server")


def create_app(settings: Settings) -> Starlette:
    """A ready-to-serve app; the database opens when the lifespan starts."""
    rt = Runtime(settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await SqliteStore.open(
            settings.data_dir,
            durable=settings.durable,
            on_commit=rt.notifier.on_commit,
            retention=settings.retention,
        )
        rt.store = store
        log.info(
            "database ready",
            extra={
                "path": str(store.path.resolve()),
                "durability": "full" if settings.durable else "fast",
            },
        )
        rt.scheduler = Scheduler(store, settings.scheduler_interval)
        rt.scheduler.start()
        log.info("scheduler started", extra={"interval_s": settings.scheduler_interval})
        try:
            yield
        finally:
            rt.begin_shutdown()
            await rt.scheduler.stop()
            log.info("shutdown: scheduler stopped")
            await store.close()
            log.info("shutdown: writer flushed, database closed")
            if access is not None:
                access.flush()

    # The access log is written at info level, like the others.
    access = None
    if settings.access_log and logging.getLogger("jobbie.access").isEnabledFor(logging.INFO):
        access = AccessLog(sys.stderr.buffer)
    middleware = [
        Middleware(
            RequestContextMiddleware,
            access=access,
            observe=rt.metrics.observe_request,
        )
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
            )
        )
    middleware.append(
        Middleware(
            GuardMiddleware,
            api_keys=settings.api_keys,
            max_body_bytes=settings.max_body_bytes,
        )
    )
    # Innermost: the worker protocol skips Starlette's router and request objects.
    middleware.append(Middleware(FastPath, rt=rt, routes=ROUTES))
    rt.openapi = msgspec.json.encode(build_document(ROUTES))
    app = Starlette(
        routes=starlette_routes(),
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    return app
