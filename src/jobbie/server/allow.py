"""Which methods a path allows: one table for the 405 answers of both HTTP paths (the fast
path and Starlette), so both send the same body and an `Allow` header."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jobbie.models import ErrorBody

_PARAM = re.compile(r"{\w+}")


class AllowTable:
    """Path templates of the route table, matched only when an answer is a 405."""

    def __init__(self, routes: Iterable[Any]) -> None:
        methods: dict[str, set[str]] = {}
        for route in routes:
            methods.setdefault(route.path, set()).add(route.method)
        self._templates = [
            (re.compile("[^/]+".join(map(re.escape, _PARAM.split(path))) + "$"), found)
            for path, found in methods.items()
        ]

    def allowed(self, path: str) -> list[str]:
        """The methods some route accepts at `path` (HEAD wherever GET is), sorted."""
        found: set[str] = set()
        for pattern, methods in self._templates:
            if pattern.match(path):
                found |= methods
        if "GET" in found:
            found.add("HEAD")
        return sorted(found)


def not_allowed(method: str, allowed: list[str]) -> tuple[ErrorBody, list[tuple[bytes, bytes]]]:
    """The 405 body and its Allow header."""
    allow = ", ".join(allowed)
    body = ErrorBody(
        error=f"method {method} not allowed here (allowed: {allow})", code="METHOD_NOT_ALLOWED"
    )
    return body, [(b"allow", allow.encode())]
