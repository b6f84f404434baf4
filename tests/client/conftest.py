"""Fixtures of the client tests: a `Client` bound to the shared server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobbie import Client
from tests.serverproc import ServerProcess


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    """A `Client` of the session's server."""
    with Client(server.url, timeout=10.0) as c:
        yield c
