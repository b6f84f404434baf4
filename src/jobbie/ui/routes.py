"""The console's URL table (stable: these URLs are part of the interface)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from jobbie.ui import actions, live, login, pages

STATIC_DIR = Path(__file__).parent / "static"
# Static files change only with a release; a day of caching, then a cheap revalidation (ETag).
STATIC_CACHE = "public, max-age=86400"


class CachedStatic(StaticFiles):
    """Static files with a Cache-Control header (Starlette sets ETag and Last-Modified)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = STATIC_CACHE
        return response


async def root(request: Request) -> Response:
    """Browsers asking for the server's root land on the console."""
    return RedirectResponse("/ui/", status_code=307)


async def ui_no_slash(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=307)


def console_routes() -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        Route("/", root, methods=get),
        Route("/ui", ui_no_slash, methods=get),
        Mount(
            "/ui",
            routes=[
                Route("/", pages.dashboard, methods=get),
                Mount("/static", CachedStatic(directory=STATIC_DIR), name="static"),
                Route("/login", login.login_form, methods=get),
                Route("/login", login.login, methods=post),
                Route("/logout", login.logout, methods=post),
                Route("/live/{view}", live.stream, methods=get),
                Route("/queues/{name}", pages.queue, methods=get),
                Route("/queues/{name}/{op}", actions.queue_action, methods=post),
                Route("/jobs", pages.jobs, methods=get),
                Route("/jobs/export", actions.export, methods=get),
                Route("/jobs/bulk", actions.bulk_action, methods=post),
                Route("/jobs/{job_id}", pages.job, methods=get),
                Route("/jobs/{job_id}/{op}", actions.job_action, methods=post),
                Route("/bulk/{bulk_id}", pages.bulk, methods=get),
                Route("/failures", pages.failures, methods=get),
                Route("/schedules", pages.schedules, methods=get),
                Route("/schedules", actions.create_schedule, methods=post),
                Route("/schedules/{schedule_id}/{op}", actions.schedule_action, methods=post),
                Route("/batches/{batch_id}", pages.batch, methods=get),
                Route("/workers", pages.workers, methods=get),
                Route("/audit", pages.audit, methods=get),
                Route("/{rest:path}", pages.not_found, methods=get),
            ],
        ),
    ]
