"""Fixtures of the client tests: a `Client` bound to the shared server, a server that hangs
up on every request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobbie import Client
from tests.client.helpers import RawServer
from tests.serverproc import ServerProcess


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    """A `Client` of the session's server."""
    with Client(server.url, timeout=10.0) as c:
        yield c


@pytest.fixture
def hangs_up() -> Iterator[RawServer]:
    """A server that hangs up on every request."""
    srv = RawServer(close_first=1_000_000)
    yield srv
    srv.close()
