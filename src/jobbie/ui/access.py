"""Who may use the console: CSRF tokens on every form, and key-based sessions.

CSRF is a double-submitted token: a random value in a SameSite=Strict cookie that every form
repeats in a hidden field; a POST whose field does not match the cookie is refused. Another
site can neither read the cookie nor make the browser send it on a cross-site POST.

With API keys, `/ui/login` takes a key and sets a session cookie `<key id>.<expiry>.<mac>`:
the key id is a short fingerprint of the key, the MAC an HMAC keyed by a value derived from
the key. Every server that has the key accepts the cookie, restarts do not matter, and
removing the key from the server ends its sessions. The key itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from jobbie.keys import ApiKey

CSRF_COOKIE = "jobbie_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "jobbie_session"


def key_id(key: str) -> str:
    """A short, stable fingerprint of a key: names it in cookies without revealing it."""
    return hashlib.sha256(b"jobbie-key-id:" + key.encode()).hexdigest()[:16]


def _mac(key: str, message: str) -> str:
    derived = hashlib.sha256(b"jobbie-session:" + key.encode()).digest()
    return hmac.new(derived, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Sessions:
    """Issues and checks session cookies for the server's API keys."""

    keys: tuple[ApiKey, ...]
    ttl_s: int

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def find_key(self, candidate: str) -> ApiKey | None:
        found = None
        for key in self.keys:  # compare with every key: the time taken tells nothing
            if hmac.compare_digest(candidate.encode(), key.secret.encode()):
                found = key
        return found

    def issue(self, key: ApiKey, now_s: float | None = None) -> str:
        expires = int((time.time() if now_s is None else now_s) + self.ttl_s)
        message = f"{key_id(key.secret)}.{expires}"
        return f"{message}.{_mac(key.secret, message)}"

    def check(self, cookie: str | None, now_s: float | None = None) -> ApiKey | None:
        """The key of a valid, unexpired session cookie; None otherwise."""
        if not cookie:
            return None
        kid, _, rest = cookie.partition(".")
        expires, _, mac = rest.partition(".")
        if not expires.isdigit() or int(expires) < (time.time() if now_s is None else now_s):
            return None
        for key in self.keys:
            secret = key.secret
            if key_id(secret) == kid and hmac.compare_digest(_mac(secret, f"{kid}.{expires}"), mac):
                return key
        return None


def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's, or a new one (set by `remember_csrf`)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) != 32 or not token.isalnum():
        token = getattr(request.state, "new_csrf", None) or secrets.token_hex(16)
        request.state.new_csrf = token
    return token


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request made a new token."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", path="/ui", secure=_https(request)
        )


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted and hmac.compare_digest(cookie, submitted))


def set_session(request: Request, response: Response, value: str, ttl_s: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=ttl_s,
        httponly=True,
        samesite="strict",
        path="/ui",
        secure=_https(request),
    )


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
