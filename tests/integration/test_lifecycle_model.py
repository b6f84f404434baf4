"""A hypothesis state machine of the job lifecycle against a real server and a model.

Rules: enqueue, fetch, ack, fail, heartbeat, release, cancel, retry (each with the right and
with a stale lease where it applies), and the clock: `tick` runs a scheduler pass without
moving time, `jump` moves the server's clock (`--test-clock`) far past every lease (30 s)
and every retry delay (20 s, fixed), then runs a pass. The model predicts every answer and
every job's state and attempt; any divergence fails with the shortest sequence that shows it.
Bounded (`JOBBIE_MODEL_EXAMPLES`, 20 by default; 200 in `make soak`) to stay near a minute.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tests.integration.faultload import report
from tests.serverproc import ServerProcess

EXAMPLES = int(os.environ.get("JOBBIE_MODEL_EXAMPLES", "20"))
WORKERS = ("w1", "w2")
WAITING = {"pending", "retrying"}
FINISHED = {"completed", "dead", "cancelled"}
_queues = itertools.count()
_server: ServerProcess | None = None
_steps = itertools.count()


@dataclass
class Job:
    """The model of one job."""

    id: str
    max_retries: int
    state: str = "pending"
    attempt: int = 0
    worker: str | None = None
    cancel_requested: bool = False


class Lifecycle(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        assert _server is not None
        self.client = httpx.Client(base_url=_server.url, timeout=30.0)
        self.queue = f"model.{next(_queues)}"
        self.model: dict[str, Job] = {}
        self.order: list[str] = []  # enqueue order: the fetch order among pending jobs

    def teardown(self) -> None:
        self.client.close()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        next(_steps)
        resp = self.client.post(path, json=body) if body is not None else self.client.post(path)
        assert resp.status_code < 500, f"{path}: {resp.status_code} {resp.text}"
        return resp

    # --- producers and operators ---------------------------------------------------------

    @rule(target=jobs, max_retries=st.integers(0, 2))
    def enqueue(self, max_retries: int) -> str:
        resp = self._post(
            "/api/v1/enqueue",
            {
                "queue": self.queue,
                "max_retries": max_retries,
                "retry_backoff": "fixed",
                "retry_base_delay": 20,
                "retry_max_delay": 20,
            },
        )
        assert resp.status_code == 201, resp.text
        job_id: str = resp.json()["job_id"]
        self.model[job_id] = Job(id=job_id, max_retries=max_retries)
        self.order.append(job_id)
        return job_id

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        job = self.model[job_id]
        resp = self._post(f"/api/v1/jobs/{job_id}/cancel")
        if job.state in WAITING:
            assert (resp.status_code, resp.json()["status"]) == (200, "cancelled"), resp.text
            job.state = "cancelled"
        elif job.state == "active":
            assert (resp.status_code, resp.json()["status"]) == (200, "cancelling"), resp.text
            job.cancel_requested = True
        else:
            assert resp.status_code == 409, resp.text

    @rule(job_id=jobs)
    def retry(self, job_id: str) -> None:
        job = self.model[job_id]
        resp = self._post(f"/api/v1/jobs/{job_id}/retry")
        if job.state in FINISHED:
            assert resp.status_code == 200, resp.text
            job.state, job.attempt, job.worker = "pending", 0, None
            job.cancel_requested = False
        else:
            assert resp.status_code == 409, resp.text

    # --- workers ---------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS))
    def fetch(self, worker: str) -> None:
        resp = self._post(
            "/api/v1/fetch",
            {"queues": [self.queue], "worker_id": worker, "timeout": 0, "lease_duration": 30},
        )
        pending = [j for j in self.order if self.model[j].state == "pending"]
        if not pending:
            assert resp.status_code == 204, resp.text
            return
        assert resp.status_code == 200, resp.text
        got = resp.json()
        job = self.model[got["job_id"]]
        # Retried and reclaimed jobs keep their place; any pending one may come first
        # among equals, so the model checks membership, then the attempt it must carry.
        assert job.state == "pending", (job, got)
        job.state, job.worker = "active", worker
        job.attempt += 1
        assert got["attempt"] == job.attempt, (job, got)

    def _fence(self, job: Job, stale: bool) -> dict[str, Any]:
        """The holder's lease, or another worker's; a job never fetched shows attempt 1."""
        attempt = max(job.attempt, 1)
        if stale:
            other = "w2" if job.worker == "w1" else "w1"
            return {"worker_id": other, "attempt": attempt}
        return {"worker_id": job.worker or "w1", "attempt": attempt}

    @rule(job_id=jobs, stale=st.booleans())
    def ack(self, job_id: str, stale: bool) -> None:
        job = self.model[job_id]
        resp = self._post(f"/api/v1/ack/{job_id}", self._fence(job, stale))
        if job.state != "active" or stale:
            assert resp.status_code == 409, resp.text
            return
        expected = "cancelled" if job.cancel_requested else "completed"
        assert (resp.status_code, resp.json()["status"]) == (200, expected), resp.text
        job.state, job.worker = expected, None

    @rule(job_id=jobs, stale=st.booleans())
    def fail(self, job_id: str, stale: bool) -> None:
        job = self.model[job_id]
        resp = self._post(f"/api/v1/fail/{job_id}", {"error": "boom", **self._fence(job, stale)})
        if job.state != "active" or stale:
            assert resp.status_code == 409, resp.text
            return
        assert resp.status_code == 200, resp.text
        self._failed(job)
        assert resp.json()["status"] == job.state, (resp.text, job)

    def _failed(self, job: Job) -> None:
        """A failed attempt (a fail call or a reclaimed lease)."""
        job.worker = None
        if job.cancel_requested:
            job.state = "cancelled"
        elif job.attempt > job.max_retries:
            job.state = "dead"
        else:
            job.state = "retrying"

    @rule(job_id=jobs, stale=st.booleans())
    def release(self, job_id: str, stale: bool) -> None:
        job = self.model[job_id]
        resp = self._post(f"/api/v1/release/{job_id}", self._fence(job, stale))
        if job.state != "active" or stale:
            assert resp.status_code == 409, resp.text
            return
        assert resp.status_code == 200, resp.text
        if job.cancel_requested:
            job.state = "cancelled"
        else:
            job.state = "pending"
            job.attempt -= 1  # a release uses no retry
        job.worker = None
        assert resp.json()["status"] == job.state

    @rule(worker=st.sampled_from(WORKERS), job_ids=st.lists(jobs, max_size=3, unique=True))
    def heartbeat(self, worker: str, job_ids: list[str]) -> None:
        if not job_ids:
            return
        resp = self._post(
            "/api/v1/heartbeat", {"worker_id": worker, "jobs": {j: {} for j in job_ids}}
        )
        assert resp.status_code == 200, resp.text
        answers = {j: s["status"] for j, s in resp.json()["jobs"].items()}
        for job_id in job_ids:
            job = self.model[job_id]
            if job.state == "active" and job.worker == worker:
                expected = "cancel" if job.cancel_requested else "ok"
            else:
                expected = "lost"
            assert answers[job_id] == expected, (job, answers)

    # --- time ----------------------------------------------------------------------------

    @rule()
    def tick(self) -> None:
        """A scheduler pass without moving the clock: nothing is due."""
        resp = self._post("/_test/clock", {"seconds": 0})
        assert resp.status_code == 200, resp.text

    @rule()
    def jump(self) -> None:
        """Past every lease and retry delay: due retries become pending, then expired leases
        are reclaimed (those wait for the next jump)."""
        resp = self._post("/_test/clock", {"seconds": 1000})
        assert resp.status_code == 200, resp.text
        for job in self.model.values():
            if job.state == "retrying":
                job.state = "pending"
        for job in self.model.values():
            if job.state == "active":
                self._failed(job)

    # --- the check ---------------------------------------------------------------------------

    @invariant()
    def server_agrees(self) -> None:
        if not self.model:
            return
        resp = self.client.post("/api/v1/jobs/search", json={"queue": self.queue, "limit": 100})
        assert resp.status_code == 200, resp.text
        seen = {j["id"]: (j["state"], j["attempt"]) for j in resp.json()["jobs"]}
        expected = {j.id: (j.state, j.attempt) for j in self.model.values()}
        assert seen == expected


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    global _server
    data = tmp_path_factory.mktemp("model") / "data"
    _server = ServerProcess(
        Path(data), scheduler_interval=3600, extra_args=("--test-clock",)
    ).start()
    yield _server
    _server.stop()
    _server = None


def test_the_job_lifecycle_matches_its_model(model_server: ServerProcess) -> None:
    Lifecycle.TestCase.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    before = next(_steps)
    Lifecycle.TestCase().runTest()
    report("lifecycle-model", examples=EXAMPLES, requests=next(_steps) - before - 1, divergences=0)
