"""What request handlers share: the store, the notifier, settings and the shutdown flag."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from starlette.requests import Request

from jobbie.clock import Clock
from jobbie.config import Settings
from jobbie.notifier import Notifier
from jobbie.scheduler import Scheduler
from jobbie.server.allow import AllowTable
from jobbie.server.event_hub import EventHub
from jobbie.server.metrics import Metrics
from jobbie.server.validation import Limits
from jobbie.store.base import Store

log = logging.getLogger("jobbie.server")


@dataclass
class Runtime:
    """Per-app state, reachable from a request as `runtime(request)`."""

    settings: Settings
    clock: Clock = field(default_factory=Clock)
    notifier: Notifier = field(default_factory=Notifier)
    store: Store | None = None
    scheduler: Scheduler | None = None
    # The one reader of the event table that feeds every SSE stream.
    events: EventHub | None = None
    draining: bool = False
    openapi: bytes = b"{}"
    metrics: Metrics = field(default_factory=Metrics)
    allow: AllowTable = field(default_factory=lambda: AllowTable(()))

    @property
    def limits(self) -> Limits:
        return Limits(max_payload_bytes=self.settings.max_payload_bytes)

    def begin_shutdown(self) -> None:
        """Refuse new long-polls and answer the waiting ones with 204."""
        if self.draining:
            return
        self.draining = True
        waiting = self.notifier.waiting
        self.notifier.close()
        log.info("shutdown: draining, answered %d waiting long-polls with 204", waiting)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def store(request: Request) -> Store:
    st = runtime(request).store
    assert st is not None, "the store is opened in the lifespan"
    return st
