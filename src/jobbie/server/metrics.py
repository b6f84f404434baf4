"""Prometheus metrics: one registry per app (never the process-global default).

Per-queue job counts and running totals come from the store's cached counters (no table scan
per scrape); fetch wait and request latency are histograms observed on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobbie.models import Queue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)


class _QueueCollector(Collector):
    """Reads the queue snapshot taken just before each scrape."""

    def __init__(self) -> None:
        self.queues: list[Queue] = []
        self.waiting = 0
        self.keys_backlog: Mapping[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "jobbie_jobs", "Jobs by queue and state", labels=["queue", "state"]
        )
        paused = GaugeMetricFamily(
            "jobbie_queue_paused", "1 when the queue is paused", labels=["queue"]
        )
        totals = {
            name: CounterMetricFamily(f"jobbie_jobs_{name}", help_, labels=["queue"])
            for name, help_ in (
                ("enqueued", "Jobs enqueued"),
                ("completed", "Jobs completed"),
                ("failed", "Failed attempts (fail calls and expired leases)"),
                ("dead", "Jobs that died"),
            )
        }
        # Per queue, never per key: a label per key would explode the series count.
        keys = GaugeMetricFamily(
            "jobbie_queue_keys_backlog", "Keys of the queue with pending jobs", labels=["queue"]
        )
        for queue in self.queues:
            for state in queue.counts.__struct_fields__:
                jobs.add_metric([queue.name, state], getattr(queue.counts, state))
            paused.add_metric([queue.name], float(queue.paused))
            for name, family in totals.items():
                family.add_metric([queue.name], getattr(queue.totals, name))
            keys.add_metric([queue.name], self.keys_backlog.get(queue.name, 0))
        yield jobs
        yield paused
        yield keys
        yield from totals.values()
        yield GaugeMetricFamily(
            "jobbie_waiting_fetches", "Long-poll fetches waiting for a job", value=self.waiting
        )


class Metrics:
    """The app's registry and the instruments handlers and middleware observe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.request_latency = Histogram(
            "jobbie_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fetch_wait = Histogram(
            "jobbie_fetch_wait_seconds",
            "How long a fetch waited before it got jobs or timed out",
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.event_reads = Counter(
            "jobbie_event_reads",
            "Reads of the event table for event streams (one per commit, not per stream)",
            registry=self.registry,
        )
        self.event_streams = Gauge(
            "jobbie_event_streams", "Open event streams (SSE)", registry=self.registry
        )
        self.event_streams_dropped = Counter(
            "jobbie_event_streams_dropped",
            "Event streams closed because the client read too slowly",
            registry=self.registry,
        )
        self._latency_children: dict[tuple[str, str, int], Histogram] = {}
        self._queues = _QueueCollector()
        self.registry.register(self._queues)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # labels() takes a lock and builds a key per call; cache the child per label set.
        key = (method, route, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.request_latency.labels(
                method, route, str(status)
            )
        child.observe(seconds)

    def render(
        self, queues: list[Queue], waiting: int, keys_backlog: Mapping[str, int] | None = None
    ) -> bytes:
        """The exposition text, with this snapshot of the queues and of how many keys of each
        have pending jobs (queues left out have none)."""
        self._queues.queues = queues
        self._queues.waiting = waiting
        self._queues.keys_backlog = keys_backlog or {}
        return bytes(generate_latest(self.registry))
