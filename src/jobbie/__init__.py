"""Jobbie: a language-agnostic background-job server (HTTP/JSON, embedded SQLite).

The client (`Client`, `AsyncClient`, `Worker`, ...) is imported on first use, so the server
and the `jobbie` command do not pay for the HTTP client libraries at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobbie.errors import (
    Conflict,
    Forbidden,
    JobbieError,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
)

if TYPE_CHECKING:
    from jobbie.client import (
        AsyncClient,
        Client,
        Job,
        JobContext,
        SearchPage,
        ServerUnreachable,
        Worker,
    )

__version__ = "0.1.0"

_CLIENT_NAMES = frozenset(
    {"AsyncClient", "Client", "Job", "JobContext", "SearchPage", "ServerUnreachable", "Worker"}
)

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "Forbidden",
    "Job",
    "JobContext",
    "JobbieError",
    "LeaseLost",
    "NotFound",
    "PayloadTooLarge",
    "SearchPage",
    "ServerUnreachable",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationError",
    "Worker",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """Import the client lazily on first access of one of its names."""
    if name in _CLIENT_NAMES:
        import jobbie.client

        return getattr(jobbie.client, name)
    raise AttributeError(f"module 'jobbie' has no attribute {name!r}")
