"""`jobbie backup`: an online copy under load, restored into a new data directory and served."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import run_jobbie
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.sqlite_only


class Load:
    """Producers enqueueing and a worker acking, until stopped; records every 201 answer."""

    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.answered: list[str] = []  # job ids answered 201, in answer order
        self.completed = 0
        self.threads = [
            threading.Thread(target=self.produce, args=(n,), daemon=True) for n in range(3)
        ] + [threading.Thread(target=self.consume, daemon=True)]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def produce(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as api:
            i = 0
            while not self.stopped.is_set():
                body = {"queue": self.queue, "payload": {"producer": n, "i": i, "pad": "x" * 200}}
                resp = api.post("/api/v1/enqueue", json=body)
                assert resp.status_code == 201, resp.text
                with self.lock:
                    self.answered.append(resp.json()["job_id"])
                i += 1

    def consume(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as api:
            while not self.stopped.is_set():
                body = {"queues": [self.queue], "worker_id": "bk", "timeout": 0.2, "count": 20}
                resp = api.post("/api/v1/fetch", json=body)
                if resp.status_code == 204:
                    continue
                acks = [
                    {"job_id": job["job_id"], "worker_id": "bk", "attempt": job["attempt"]}
                    for job in resp.json()["jobs"]
                ]
                done = api.post("/api/v1/ack/batch", json={"acks": acks})
                assert done.status_code == 200, done.text
                self.completed += len(acks)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.answered)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_backup_under_load_restores_every_acknowledged_job(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server()
    load = Load(server.url, "backup.load").start()
    try:
        deadline = time.monotonic() + 20
        while len(load.snapshot()) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = load.snapshot()
        assert len(before) >= 300, "the load produced too little to test with"
        result = run_jobbie(
            "backup", f"{tmp_path / 'restored'}/", "--data-dir", str(server.data_dir), "-o", "json"
        )
        assert result.code == 0, result.stderr
        # The load went on during the copy: the server kept answering.
        time.sleep(0.3)
        after = load.snapshot()
    finally:
        load.stop()
    assert len(after) > len(before)
    summary = result.json()
    copy = tmp_path / "restored" / "jobbie.db"
    assert summary["path"] == str(copy) and summary["jobs"] >= len(before)
    assert summary["bytes"] == copy.stat().st_size
    # One self-contained file: no WAL beside it.
    assert sorted(p.name for p in copy.parent.iterdir()) == ["jobbie.db"]
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server.stop()

    restored = ServerProcess(tmp_path / "restored").start()
    try:
        with httpx.Client(base_url=restored.url, timeout=30.0) as api:
            search = {"queue": "backup.load", "limit": 1000}
            found: set[str] = set()
            while True:
                page = api.post("/api/v1/jobs/search", json=search).json()
                found.update(job["id"] for job in page["jobs"])
                if not page["has_more"]:
                    break
                search["cursor"] = page["cursor"]
            missing = [job_id for job_id in before if job_id not in found]
            assert not missing, f"{len(missing)} acknowledged jobs missing from the backup"
            # The restored server serves: its jobs can be fetched and acked.
            one = api.post(
                "/api/v1/fetch", json={"queues": ["backup.load"], "worker_id": "r", "timeout": 5}
            )
            if one.status_code == 200:
                job = one.json()
                ack = api.post(
                    f"/api/v1/ack/{job['job_id']}",
                    json={"worker_id": "r", "attempt": job["attempt"]},
                )
                assert ack.status_code == 200, ack.text
            state = api.get(f"/api/v1/jobs/{before[0]}").json()["state"]
            assert state in ("pending", "active", "completed")
    finally:
        restored.stop()


def test_backup_into_a_file_refuses_to_overwrite_without_force(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = make_server()
    httpx.post(f"{server.url}/api/v1/enqueue", json={"queue": "b.one"}).raise_for_status()
    target = tmp_path / "copy.db"
    first = run_jobbie("backup", str(target), "--database", f"sqlite:///{server.data_dir}")
    assert first.code == 0, first.stderr
    assert "backed up 1 jobs" in first.stdout
    again = run_jobbie("backup", str(target), "--data-dir", str(server.data_dir))
    assert again.code == 1 and "--force" in again.stderr
    forced = run_jobbie("backup", str(target), "--data-dir", str(server.data_dir), "--force")
    assert forced.code == 0, forced.stderr
    assert not list(tmp_path.glob(".copy.db.partial-*"))


def test_backup_refuses_postgresql_and_points_to_pg_dump(tmp_path: Path) -> None:
    result = run_jobbie(
        "backup", str(tmp_path / "x.db"), "--database", "postgresql://u@localhost/jobbie"
    )
    assert result.code == 2
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_backup_of_a_missing_database_says_so(tmp_path: Path) -> None:
    result = run_jobbie("backup", str(tmp_path / "x.db"), "--data-dir", str(tmp_path / "none"))
    assert result.code == 1
    assert "no database at" in result.stderr
    assert not (tmp_path / "none").exists()
