"""Signing in to the console with an API key, and out again."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobbie.ui import access
from jobbie.ui.web import error_page, render, sessions


def _next(target: str | None) -> str:
    """Only a console path: never send a signed-in browser to another site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui/"


async def login_form(request: Request) -> Response:
    if not sessions(request).required:
        return RedirectResponse("/ui/", status_code=303)
    return render(
        request, "login.html", title="Sign in", target=_next(request.query_params.get("next"))
    )


async def login(request: Request) -> Response:
    checker = sessions(request)
    form = await request.form()
    token = form.get(access.CSRF_FIELD)
    if not access.csrf_ok(request, token if isinstance(token, str) else None):
        return error_page(request, 403, "CSRF", "the form's security token is missing or stale")
    target = _next(str(form.get("next") or ""))
    key = checker.find_key(str(form.get("api_key") or "").strip()) if checker.required else None
    if key is None:
        return render(request, "login.html", 401, title="Sign in", target=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    access.set_session(request, response, checker.issue(key), checker.ttl_s)
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    token = form.get(access.CSRF_FIELD)
    if not access.csrf_ok(request, token if isinstance(token, str) else None):
        return error_page(request, 403, "CSRF", "the form's security token is missing or stale")
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(access.SESSION_COOKIE, path="/ui")
    return response
