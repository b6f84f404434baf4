"""The store backends the tests run against: the one place that names them.

Both suites choose their backend here. The Store contract suite (tests/contract) runs every
test once per entry of DATABASES; the HTTP suites start every server on the one backend named
by `JOBBIE_TEST_BACKEND` (default `sqlite`):

    JOBBIE_TEST_BACKEND=postgres make test

A new backend is ONE entry in DATABASES: a function that gives the `--database` URL of a fresh
store for a test directory (creating the database if the backend needs that). The same
directory must give the same URL, so that a restarted server finds its data again; two
directories never share one. It must fail, not skip, when its server is unreachable, so that
CI cannot pass without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote


def sqlite_database(data_dir: Path) -> str:
    """The embedded database in `data_dir` (sqlite:////absolute/path, percent-encoded so a
    `#` or `?` in the directory's name stays part of the path)."""
    return f"sqlite:///{quote(str(data_dir.resolve()))}"


DATABASES: dict[str, Callable[[Path], str]] = {
    "sqlite": sqlite_database,
    # "postgres": postgres_database,  # e.g. CREATE DATABASE named after data_dir
}

TEST_BACKEND = os.environ.get("JOBBIE_TEST_BACKEND", "sqlite")


def check_test_backend() -> None:
    """Refuse an unknown JOBBIE_TEST_BACKEND before any server starts."""
    if TEST_BACKEND not in DATABASES:
        known = ", ".join(sorted(DATABASES))
        raise ValueError(f"JOBBIE_TEST_BACKEND={TEST_BACKEND!r}: expected one of {known}")


def server_database(data_dir: Path) -> str:
    """The `--database` URL of a test server whose data directory is `data_dir`."""
    check_test_backend()
    return DATABASES[TEST_BACKEND](data_dir)
