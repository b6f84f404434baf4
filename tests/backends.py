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

import atexit
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


def sqlite_database(data_dir: Path) -> str:
    """The embedded database in `data_dir` (sqlite:////absolute/path, percent-encoded so a
    `#` or `?` in the directory's name stays part of the path)."""
    return f"sqlite:///{quote(str(data_dir.resolve()))}"


# The PostgreSQL server the tests create their databases on (a superuser's URL).
POSTGRES_URL = os.environ.get(
    "JOBBIE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POSTGRES_HOWTO = (
    "PostgreSQL tests need a server at $JOBBIE_TEST_POSTGRES (default"
    " postgresql://postgres@127.0.0.1:5432/postgres, trust auth); start one or point the"
    " variable at one to run them"
)
# Databases this test process created, dropped when it exits.
_created: set[str] = set()


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server for the tests (a skip outside CI, a failure in CI)."""


def postgres_database(data_dir: Path) -> str:
    """A database of its own for `data_dir` on the test PostgreSQL server, created empty on
    first use (the server migrates it); dropped when the test process exits."""
    import psycopg

    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:20]
    name = f"jobbie_t{os.getpid()}_{digest}"
    if name not in _created:
        try:
            with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            raise PostgresUnavailable(f"{POSTGRES_HOWTO}: {exc}") from exc
        if not _created:
            atexit.register(_drop_created)
        _created.add(name)
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_problem() -> str | None:
    """Why the test PostgreSQL server cannot be used (None when it can)."""
    try:
        import psycopg
    except ImportError:
        return f"{POSTGRES_HOWTO} (and the driver: pip install -e '.[postgres]')"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return f"{POSTGRES_HOWTO}: {exc}".strip()


def _drop_created() -> None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            for name in sorted(_created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # the server went away; nothing to clean


DATABASES: dict[str, Callable[[Path], str]] = {
    "sqlite": sqlite_database,
    "postgres": postgres_database,
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
