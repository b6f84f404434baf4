"""Prefixed, sortable identifiers: `job_`, `batch_`, `sched_`, `bulk_` + ULID."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    """A fresh id such as `job_01J...`."""
    return f"{prefix}_{ULID()}"


def new_job_id() -> str:
    return new_id("job")


def new_batch_id() -> str:
    return new_id("batch")
