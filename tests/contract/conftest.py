"""The Store contract suite: every test here is written once against the `Store` protocol
(`jobbie.store.base`) and runs against every backend, as huey's `StorageTests` does.

A backend plugs in with one entry in `tests/backends.py` (DATABASES); the `store` fixture
below opens it through the store factory, once per backend, each run tagged with the
backend's marker (`pytest tests/contract -m sqlite` runs one backend only).

Tests are `async def` and move time only through `store.clock.advance(seconds)` followed by
`await store.maintain()` (see `support.advance`); none sleeps. `pytest_pyfunc_call` below runs
each test on the event loop its store was opened on (the SQLite writer answers on that loop),
so the suite needs no asyncio plugin.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from jobbie.clock import Clock
from jobbie.store.base import Store
from jobbie.store.factory import open_store
from tests.backends import DATABASES, PostgresUnavailable
from tests.contract.support import RETENTION, Commits

# A test that has not finished by then is stuck (a lost wake-up, a writer that died).
TEST_TIMEOUT_S = 30.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per test: the store is opened, used and closed on it."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


@pytest.fixture
def commits() -> Commits:
    """What the store reported to its commit callback (the queues that may have new work)."""
    return Commits()


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in DATABASES])
def store(
    request: pytest.FixtureRequest,
    loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    commits: Commits,
) -> Iterator[Store]:
    """A fresh, empty store of one backend, with the wall clock (tests move it forward)."""
    data_dir = tmp_path / "store"
    try:
        database = DATABASES[request.param](data_dir)
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    opening = open_store(
        database=database,
        data_dir=data_dir,
        durable=True,
        retention=RETENTION,
        clock=Clock(),
        on_commit=commits.record,
    )
    opened = loop.run_until_complete(opening)
    yield opened
    loop.run_until_complete(opened.close())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an `async def` test on its `loop` fixture, with a deadline."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    # Every contract test uses `store`, which brings the loop it was opened on.
    event_loop = pyfuncitem.funcargs["loop"]
    assert isinstance(event_loop, asyncio.AbstractEventLoop), "async tests here need `store`"
    names: Iterable[str] = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    event_loop.run_until_complete(asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT_S))
    return True
