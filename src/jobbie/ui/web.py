"""Rendering pages: the Jinja2 environment, the page wrapper, notices and error pages."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

import jinja2
import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from jobbie.errors import JobbieError
from jobbie.keys import ApiKey
from jobbie.server import audit
from jobbie.server.runtime import runtime
from jobbie.store.base import Store
from jobbie.ui import access

NOTICE_COOKIE = "jobbie_notice"
Page = Callable[[Request], Awaitable[Response]]


def _age(seconds: float | None) -> str:
    """A short human duration: 42s, 5m, 3h 10m, 2d 4h."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _since(stamp: str | None) -> str:
    if not stamp:
        return "-"
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return _age(max(0.0, time.time() - at)) + " ago"


def _pretty_json(raw: Any) -> str:
    if raw is None:
        return "null"
    value = msgspec.json.decode(bytes(raw)) if isinstance(raw, msgspec.Raw | bytes) else raw
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _seconds(value: float) -> str:
    """A window in seconds as a duration the forms accept back: `60s`, `0.5s`."""
    return f"{value:g}s"


def _is_null(raw: Any) -> bool:
    return raw is None or (isinstance(raw, msgspec.Raw) and bytes(raw) in (b"", b"null"))


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("jobbie.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    age=_age, since=_since, pretty_json=_pretty_json, urlquote=quote, seconds=_seconds
)
ENV.tests["null"] = _is_null


def store_of(request: Request) -> Store:
    st = runtime(request).store
    assert st is not None, "the store is opened in the lifespan"
    return st


def render_fragment(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page with the layout's shared context (CSRF token, notice, session)."""
    cookie = request.cookies.get(NOTICE_COOKIE)
    notice = unquote(cookie) if cookie else None
    body = ENV.get_template(name).render(
        request=request,
        csrf=access.csrf_token(request),
        notice=notice,
        signed_in=session_key(request),
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    access.remember_csrf(request, response)
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/ui")
    return response


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    """Post/redirect/get, with a one-shot notice shown on the next page."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE, quote(notice), max_age=60, httponly=True, samesite="strict", path="/ui"
        )
    return response


def sessions(request: Request) -> access.Sessions:
    settings = runtime(request).settings
    return access.Sessions(keys=settings.keys, ttl_s=settings.session_ttl_s)


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status, title="Error", code=code, message=message)


def _signed_in(request: Request) -> bool:
    """Open without API keys (like the API); with keys, a valid session cookie is needed."""
    checker = sessions(request)
    if not checker.required:
        return True
    key = checker.check(request.cookies.get(access.SESSION_COOKIE))
    request.state.session = key
    if key is not None:
        request.state.actor = key.actor
    return key is not None


def session_key(request: Request) -> ApiKey | None:
    key: ApiKey | None = getattr(request.state, "session", None)
    return key


def page(handler: Page) -> Page:
    """A console GET: sends visitors without a session to the login page; domain errors
    become an error page with the same status."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        if not _signed_in(request):
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe=""
            )
            return RedirectResponse(f"/ui/login?next={target}", status_code=303)
        try:
            return await handler(request)
        except JobbieError as exc:
            return error_page(request, exc.status, exc.code, exc.message)

    return wrapped


Action = Callable[[Request, FormData], Awaitable[Response]]


def action(handler: Action) -> Page:
    """A console POST: needs a session (with keys) and the form's CSRF token; domain errors
    become an error page."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        if not _signed_in(request):
            return error_page(request, 401, "UNAUTHORIZED", "sign in first")
        key = session_key(request)
        if key is not None and key.read_only:
            return error_page(request, 403, "FORBIDDEN", "this session's key may only read")
        form = await request.form()
        token = form.get(access.CSRF_FIELD)
        if not access.csrf_ok(request, token if isinstance(token, str) else None):
            return error_page(
                request,
                403,
                "CSRF",
                "the form's security token is missing or stale; reload the page and try again",
            )
        try:
            response = await handler(request, form)
        except JobbieError as exc:
            return error_page(request, exc.status, exc.code, exc.message)
        done: tuple[str, str, int | None] | None = getattr(request.state, "audit", None)
        if done is not None:
            await audit.record(request, *done, "console")
        return response

    return wrapped


def audited(request: Request, action: str, target: str, affected: int | None) -> None:
    """Mark a console action for the audit log (recorded once it has succeeded)."""
    request.state.audit = (action, target, affected)
