"""Several servers on one PostgreSQL database (issue 12, part 4): the loss of a server loses
no job, a new leader takes over, cron fires once, limits hold across servers, and a long-poll
on one server wakes for an enqueue on another.

`JOBBIE_CLUSTER_RUNS` sets how many kill -9 runs the drain test makes (1 by default, 3 in CI,
10 in `make soak`), `JOBBIE_CLUSTER_JOBS` how many jobs each run enqueues.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cluster import (
    advance_all,
    cluster_status,
    leader_address,
    servers,
    shared_database,
    wait_for_leader,
)
from tests.integration.faultload import report
from tests.integration.sse import open_stream
from tests.serverproc import ServerProcess

RUNS = int(os.environ.get("JOBBIE_CLUSTER_RUNS", "3" if os.environ.get("CI") else "1"))
JOBS = int(os.environ.get("JOBBIE_CLUSTER_JOBS", "2000"))
# Short leases, so a job whose fetch answer died with its server comes back soon.
LEASE_S = 5
# Jobs per enqueue request, and per fetch.
BATCH = 20


def by_address(procs: list[ServerProcess], address: str) -> ServerProcess:
    [proc] = [p for p in procs if address == f"127.0.0.1:{p.port}"]
    return proc


# --- kill -9 under load ------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the servers answered, shared by producer and worker threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    enqueued: set[str] = field(default_factory=set)
    completed: Counter[str] = field(default_factory=Counter)  # acks answered `completed`
    lease_lost: int = 0
    connection_errors: int = 0
    unavailable: int = 0  # 503s: allowed (a server between its database and a kill)
    unexpected: list[str] = field(default_factory=list)

    def note(self, what: str, resp: httpx.Response) -> None:
        with self.lock:
            if resp.status_code == 503:
                self.unavailable += 1
            else:
                self.unexpected.append(f"{what} {resp.status_code} {resp.text[:200]}")


class Rotation:
    """A client's list of servers: it moves to the next one when one stops answering."""

    def __init__(self, urls: list[str], start: int) -> None:
        self.urls = urls[start:] + urls[:start]
        self.client = httpx.Client(base_url=self.urls[0], timeout=10)

    def next(self) -> None:
        self.urls = self.urls[1:] + self.urls[:1]
        self.client.close()
        self.client = httpx.Client(base_url=self.urls[0], timeout=10)


def produce(urls: list[str], start: int, numbers: range, queue: str, ledger: Ledger) -> None:
    """Enqueue the numbers' jobs, `BATCH` per request; a batch whose answer is lost is not
    sent again (its jobs may exist unrecorded: they are drained too, but prove nothing)."""
    servers_ = Rotation(urls, start)
    for first in range(numbers.start, numbers.stop, BATCH):
        jobs = [
            {"queue": queue, "payload": n, "max_retries": 20, "retry_backoff": "none"}
            for n in range(first, min(first + BATCH, numbers.stop))
        ]
        try:
            resp = servers_.client.post("/api/v1/enqueue/batch", json={"jobs": jobs})
        except httpx.HTTPError:
            with ledger.lock:
                ledger.connection_errors += 1
            servers_.next()
            continue
        if resp.status_code == 201:
            with ledger.lock:
                ledger.enqueued.update(resp.json()["job_ids"])
        else:
            ledger.note("enqueue", resp)
    servers_.client.close()


def work(urls: list[str], start: int, queue: str, ledger: Ledger, stop: threading.Event) -> None:
    """Fetch up to `BATCH` jobs, ack them in one batch, until stopped."""
    servers_ = Rotation(urls, start)
    worker = f"w{start}-{threading.get_ident()}"
    while not stop.is_set():
        try:
            resp = servers_.client.post(
                "/api/v1/fetch",
                json={"queues": [queue], "worker_id": worker, "timeout": 1, "count": BATCH,
                      "lease_duration": LEASE_S},
            )  # fmt: skip
            if resp.status_code == 204:
                continue
            if resp.status_code != 200:
                ledger.note("fetch", resp)
                stop.wait(0.1)
                continue
            jobs = resp.json()["jobs"]
            acks = [{"job_id": j["job_id"], "worker_id": worker, "attempt": j["attempt"]}
                    for j in jobs]  # fmt: skip
            resp = servers_.client.post("/api/v1/ack/batch", json={"acks": acks})
        except httpx.HTTPError:
            with ledger.lock:
                ledger.connection_errors += 1
            servers_.next()
            continue
        if resp.status_code != 200:
            ledger.note("ack", resp)
            continue
        with ledger.lock:
            for result in resp.json()["results"]:
                if result["status"] == "completed":
                    ledger.completed[result["job_id"]] += 1
                elif result["code"] == "LEASE_LOST":
                    ledger.lease_lost += 1
                else:
                    ledger.unexpected.append(f"ack result {result}")
    servers_.client.close()


def job_state(url: str, job_id: str) -> str | None:
    """The job's state as a server sees it (None when it cannot say)."""
    try:
        resp = httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=10)
    except httpx.HTTPError:
        return None
    return str(resp.json()["state"]) if resp.status_code == 200 else None


def wait_until(condition: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


@pytest.mark.parametrize("run", range(RUNS))
def test_no_job_is_lost_when_a_server_is_killed(tmp_path: Path, run: int) -> None:
    queue = f"cluster.drain.{run}"
    ledger = Ledger()
    started = time.monotonic()
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        urls = [p.url for p in procs]
        victim = by_address(procs, wait_for_leader(urls[0]))
        stop = threading.Event()
        workers = [
            threading.Thread(target=work, args=(urls, i % 3, queue, ledger, stop), daemon=True)
            for i in range(6)
        ]
        share = JOBS // 3
        producers = [
            threading.Thread(
                target=produce,
                args=(
                    urls,
                    i,
                    range(i * share, JOBS if i == 2 else (i + 1) * share),
                    queue,
                    ledger,
                ),
                daemon=True,
            )
            for i in range(3)
        ]
        for thread in workers + producers:
            thread.start()
        try:
            # Kill the leader (it also serves a third of the clients) a third of the way in.
            assert wait_until(lambda: sum(ledger.completed.values()) >= JOBS // 3, 60), ledger
            victim.kill()
            killed_at = time.monotonic()
            for thread in producers:
                thread.join(timeout=60)
            assert not any(t.is_alive() for t in producers), "a producer hung"

            def drained() -> bool:
                with ledger.lock:
                    left = [j for j in ledger.enqueued if not ledger.completed[j]]
                if len(left) > 2 * BATCH:
                    return False
                # An ack batch the victim committed but never answered: its jobs are completed
                # without the ledger knowing (the audit below allows for them too).
                survivor = next(p for p in procs if p is not victim)
                return all(job_state(survivor.url, job_id) == "completed" for job_id in left)

            # Jobs whose fetch answer died with the victim come back when their lease runs out.
            assert wait_until(drained, 60 + LEASE_S, step=0.2), (
                f"{len([j for j in ledger.enqueued if not ledger.completed[j]])} jobs left"
            )
        finally:
            stop.set()
            for thread in workers:
                thread.join(timeout=15)
        assert not any(t.is_alive() for t in workers), "a worker hung"
        drained_s = time.monotonic() - killed_at
        survivor = next(p for p in procs if p is not victim)
        audit = audit_jobs(survivor.url, queue, ledger)
        # The drain may end before the victim's leader lease runs out (nothing it leased was
        # left to wait for): a survivor takes over within seconds of the kill all the same.
        victim_address = f"127.0.0.1:{victim.port}"
        took_over = wait_until(
            lambda: leader_address(survivor.url) not in (None, victim_address), 15, step=0.1
        )
    assert not ledger.unexpected, ledger.unexpected[:10]
    assert len(ledger.enqueued) >= JOBS * 0.9, "too few enqueues were answered"
    assert took_over, "no survivor took the leadership over"
    report(
        "cluster-kill-9",
        run=run,
        answered_enqueues=len(ledger.enqueued),
        completed_once=audit["completed"],
        redelivered_after_lease_loss=audit["redelivered"],
        lease_lost_acks=ledger.lease_lost,
        connection_errors=ledger.connection_errors,
        unavailable=ledger.unavailable,
        killed_after_s=round(killed_at - started, 1),
        drained_s_after_kill=round(drained_s, 1),
        total_s=round(time.monotonic() - started, 1),
        jobs_lost=0,
    )


def audit_jobs(url: str, queue: str, ledger: Ledger) -> dict[str, int]:
    """Every answered enqueue exists and is completed, never twice; a job run more than
    once lost its lease each time before (a `lease_expired` error for each earlier attempt)."""
    jobs: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        cursor = None
        while True:
            resp = client.post(
                "/api/v1/jobs/search", json={"queue": queue, "limit": 1000, "cursor": cursor}
            )
            assert resp.status_code == 200, resp.text
            page = resp.json()
            jobs.update((job["id"], job) for job in page["jobs"])
            if (cursor := page["cursor"]) is None:
                break
        lost = sorted(ledger.enqueued - set(jobs))
        assert not lost, f"{len(lost)} answered enqueues lost, e.g. {lost[:3]}"
        redelivered = 0
        for job_id in sorted(ledger.enqueued):
            job = jobs[job_id]
            assert job["state"] == "completed", job
            # 0: the ack committed but its answer died with the victim.
            assert ledger.completed[job_id] <= 1, (ledger.completed[job_id], job)
            if job["attempt"] > 1:
                redelivered += job["attempt"] - 1
                detail = client.get(f"/api/v1/jobs/{job_id}").json()
                expired = [e["attempt"] for e in detail["errors"] if e["error"] == "lease_expired"]
                assert sorted(expired) == list(range(1, job["attempt"])), detail
    return {"completed": len(ledger.enqueued), "redelivered": redelivered}


# --- leadership ------------------------------------------------------------------------------


def test_a_new_leader_takes_over_within_seconds_of_a_kill_9(tmp_path: Path) -> None:
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        old = wait_for_leader(procs[0].url)
        victim = by_address(procs, old)
        survivors = [p for p in procs if p is not victim]
        victim.kill()
        killed = time.monotonic()
        while (new := leader_address(survivors[0].url)) in (None, old):
            assert time.monotonic() - killed < 10, cluster_status(survivors[0].url)
            time.sleep(0.05)
        failover_s = time.monotonic() - killed
        # Every survivor agrees, and the victim drops out of the list once unseen for ~10 s.
        assert leader_address(survivors[1].url) == new
        assert wait_until(
            lambda: len(cluster_status(survivors[1].url)["nodes"]) == 2, 20, step=0.5
        ), cluster_status(survivors[1].url)
        assert new in {f"127.0.0.1:{p.port}" for p in survivors}
        # A leader that shuts down cleanly hands over at once: the last server leads at its
        # next pass, without waiting for the lease to run out.
        leaving = by_address(procs, new)
        [last] = [p for p in survivors if p is not leaving]
        assert leaving.terminate() == 0
        stopped = time.monotonic()
        assert wait_until(lambda: leader_address(last.url) == f"127.0.0.1:{last.port}", 10)
        handover_s = time.monotonic() - stopped
    report("leader-failover", failover_s=round(failover_s, 2), handover_s=round(handover_s, 2))
    print(f"leader failover after kill -9: {failover_s:.2f} s; after SIGTERM: {handover_s:.2f} s")


def test_cluster_status_lists_every_server_and_the_leader(tmp_path: Path) -> None:
    # A password in the URL (trust authentication ignores it) must show nowhere.
    database = shared_database(tmp_path).replace("postgres@", "postgres:hunter2-secret@", 1)
    with servers(tmp_path, database) as procs:
        wait_for_leader(procs[0].url)
        addresses = {f"127.0.0.1:{p.port}" for p in procs}
        for proc in procs:
            resp = httpx.get(f"{proc.url}/api/v1/cluster/status", timeout=10)
            assert "hunter2" not in resp.text
            status = resp.json()
            assert (status["mode"], status["backend"]) == ("cluster", "postgres")
            assert {n["address"] for n in status["nodes"]} == addresses
            assert sum(n["leader"] for n in status["nodes"]) == 1
            assert len({n["id"] for n in status["nodes"]}) == 3
        cli = subprocess.run(
            [sys.executable, "-m", "jobbie", "status"],
            env={**os.environ, "JOBBIE_URL": procs[1].url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert "(postgres, 3 nodes)" in cli.stdout, cli.stdout
        node_lines = [line for line in cli.stdout.splitlines() if line.startswith("node ")]
        assert len(node_lines) == 3, cli.stdout
        assert sum("(leader)" in line for line in node_lines) == 1, cli.stdout
        assert all(any(a in line for a in addresses) for line in node_lines), cli.stdout
    for proc in procs:
        assert "hunter2" not in proc.log()


# --- cron --------------------------------------------------------------------------------------


def test_cron_fires_once_per_fire_time_across_servers(tmp_path: Path) -> None:
    queue = "cluster.cron"
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        wait_for_leader(procs[0].url)
        resp = httpx.post(
            f"{procs[1].url}/api/v1/schedules",
            json={"name": "every-minute", "queue": queue, "cron": "* * * * *"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        for _ in range(5):
            # Each server runs a pass after moving its clock, all at once: one fire per minute.
            advance_all(procs, 60)
        counts = [
            httpx.get(f"{p.url}/api/v1/queues/{queue}", timeout=10).json()["counts"]["pending"]
            for p in procs
        ]
    assert counts == [5, 5, 5]


# --- limits across servers ------------------------------------------------------------------


def test_a_throttle_holds_its_rate_across_servers(tmp_path: Path) -> None:
    queue, rate, jobs = "cluster.throttled", 5, 25
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        api = httpx.Client(base_url=procs[0].url, timeout=30)
        assert api.post(
            f"/api/v1/queues/{queue}/throttle", json={"rate": rate, "period": 1}
        ).is_success
        resp = api.post(
            "/api/v1/enqueue/batch", json={"jobs": [{"queue": queue} for _ in range(jobs)]}
        )
        assert resp.status_code == 201, resp.text

        def drain(proc: ServerProcess, worker: str) -> list[str]:
            got: list[str] = []
            with httpx.Client(base_url=proc.url, timeout=30) as client:
                while True:
                    resp = client.post(
                        "/api/v1/fetch",
                        json={"queues": [queue], "worker_id": worker, "timeout": 2, "count": 3},
                    )
                    if resp.status_code == 204:
                        return got
                    assert resp.status_code == 200, resp.text
                    for job in resp.json()["jobs"]:
                        got.append(job["job_id"])
                        client.post(f"/api/v1/ack/{job['job_id']}", json={})

        with ThreadPoolExecutor(6) as pool:
            fetched = [
                job_id
                for got in pool.map(drain, procs * 2, [f"w{i}" for i in range(6)])
                for job_id in got
            ]
        assert sorted(fetched) == sorted(set(fetched)) and len(fetched) == jobs
        # When each job was handed out, by the database clock every server judges by.
        started = sorted(
            ts_ms(api.get(f"/api/v1/jobs/{job_id}").json()["started_at"]) for job_id in fetched
        )
        api.close()
    # No window of one second (less a few ms of measurement) holds more than `rate` of them.
    gaps = [later - earlier for earlier, later in zip(started, started[rate:], strict=False)]
    assert min(gaps) >= 1000 - 20, gaps
    assert len({p.url for p in procs}) == 3


def ts_ms(value: str) -> int:
    from tests.integration.helpers import ts_epoch

    return round(ts_epoch(value) * 1000)


def held_spans(
    procs: list[ServerProcess], queue: str, workers: int, hold_s: float
) -> list[tuple[str | None, float, float]]:
    """`workers` workers spread over the servers fetch from `queue` until it is empty, each
    holding its job `hold_s` before the ack: (key, start, end) of each job's active time, from
    the fetch's answer to sending the ack."""
    spans: list[tuple[str | None, float, float]] = []
    lock = threading.Lock()

    def run(proc: ServerProcess, worker: str) -> None:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            while True:
                resp = client.post(
                    "/api/v1/fetch", json={"queues": [queue], "worker_id": worker, "timeout": 2}
                )
                if resp.status_code == 204:
                    return
                assert resp.status_code == 200, resp.text
                got = time.monotonic()
                time.sleep(hold_s)
                done = time.monotonic()
                job = resp.json()
                acked = client.post(f"/api/v1/ack/{job['job_id']}", json={})
                assert acked.status_code == 200, acked.text
                with lock:
                    spans.append((job["key"], got, done))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, (procs * workers)[:workers], [f"w{i}" for i in range(workers)]))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of the (start, end) spans that overlap."""
    edges = sorted([(t, 1) for t, _ in spans] + [(t, -1) for _, t in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_a_concurrency_limit_holds_across_servers(tmp_path: Path) -> None:
    queue, limit, jobs = "cluster.limited", 3, 30
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        api = httpx.Client(base_url=procs[0].url, timeout=30)
        assert api.post(f"/api/v1/queues/{queue}/concurrency", json={"max": limit}).is_success
        resp = api.post(
            "/api/v1/enqueue/batch", json={"jobs": [{"queue": queue} for _ in range(jobs)]}
        )
        assert resp.status_code == 201, resp.text
        api.close()
        spans = held_spans(procs, queue, workers=9, hold_s=0.2)
    assert len(spans) == jobs
    most = most_at_once([(start, end) for _, start, end in spans])
    assert most <= limit
    assert most == limit, "the limit was never reached: the test proves nothing"


# --- wake-ups across servers ---------------------------------------------------------------


def waiting_fetches(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    [line] = [ln for ln in text.splitlines() if ln.startswith("jobbie_waiting_fetches ")]
    return int(float(line.split()[1]))


def test_a_long_poll_on_one_server_wakes_for_an_enqueue_on_another(tmp_path: Path) -> None:
    queue = "cluster.wake"
    latencies = []
    with servers(tmp_path, shared_database(tmp_path), count=2) as (a, b):
        # An event stream on B hears of A's commits too.
        stream = open_stream(b.url, f"/api/v1/events?queue={queue}&type=enqueued")
        for round_ in range(5):
            with ThreadPoolExecutor(1) as pool:
                parked = pool.submit(
                    httpx.post,
                    f"{b.url}/api/v1/fetch",
                    json={"queues": [queue], "worker_id": "w", "timeout": 10},
                    timeout=30,
                )
                assert wait_until(lambda: waiting_fetches(b.url) == 1, 10)
                enqueued_at = time.monotonic()
                resp = httpx.post(
                    f"{a.url}/api/v1/enqueue", json={"queue": queue, "payload": round_}, timeout=10
                )
                assert resp.status_code == 201, resp.text
                got = parked.result(timeout=20)
                latencies.append(time.monotonic() - enqueued_at)
            assert got.status_code == 200, got.text
            assert got.json()["job_id"] == resp.json()["job_id"]
        seen = b""
        while seen.count(b"event: enqueued") < 5:
            chunk = stream.recv(1 << 16)
            assert chunk, seen
            seen += chunk
        stream.close()
    # Well under the fallback poll's period (1.5 s): the notification woke it. (Generous
    # bounds: this includes the enqueue's own round trip on a shared, busy machine.)
    assert max(latencies) < 1.0, latencies
    assert statistics.median(latencies) < 0.5, latencies
    report("cross-server-wake", median_ms=round(statistics.median(latencies) * 1000, 1))


def test_a_per_key_concurrency_limit_holds_across_servers(tmp_path: Path) -> None:
    queue, per_key, keys, jobs_per_key = "cluster.fair", 2, ["k0", "k1", "k2"], 8
    with servers(tmp_path, shared_database(tmp_path)) as procs:
        api = httpx.Client(base_url=procs[0].url, timeout=30)
        assert api.post(f"/api/v1/queues/{queue}/fairness", json={"mode": "round_robin"}).is_success
        assert api.post(f"/api/v1/queues/{queue}/key-concurrency", json={"max": per_key}).is_success
        batch = [{"queue": queue, "key": key} for key in keys for _ in range(jobs_per_key)]
        assert api.post("/api/v1/enqueue/batch", json={"jobs": batch}).status_code == 201
        api.close()
        # Eight workers, spread over the three servers.
        spans = held_spans(procs, queue, workers=8, hold_s=0.15)
    peaks = {}
    for key in keys:
        mine = [(start, end) for k, start, end in spans if k == key]
        assert len(mine) == jobs_per_key, key
        peaks[key] = most_at_once(mine)
    assert max(peaks.values()) == per_key, f"a key passed or never reached its limit: {peaks}"
