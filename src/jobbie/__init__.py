"""Jobbie: a language-agnostic background-job server (HTTP/JSON, embedded SQLite)."""

from __future__ import annotations

from jobbie.errors import (
    Conflict,
    JobbieError,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "JobbieError",
    "LeaseLost",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationError",
    "__version__",
]
