"""Read-only and named API keys, and the audit log of management actions."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from jobbie import Client, Forbidden
from tests.integration.helpers import enqueue
from tests.serverproc import ServerProcess

FULL, READ = "ops=full-secret", "viewer=read-secret"


def _client(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def keyed(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    return make_server(
        "--api-key", FULL, "--read-only-api-key", READ, "--test-clock",
        env={"JOBBIE_RETENTION_AUDIT": "1h"},
    )  # fmt: skip


def test_read_only_key_reads_and_nothing_else(keyed: ServerProcess) -> None:
    with _client(keyed, "full-secret") as full, _client(keyed, "read-secret") as reader:
        job_id = enqueue(full, "ro", payload={})
        assert reader.get("/api/v1/queues").status_code == 200
        assert reader.get(f"/api/v1/jobs/{job_id}").status_code == 200
        assert reader.post("/api/v1/jobs/search", json={"queue": "ro"}).status_code == 200
        refused = [
            reader.post("/api/v1/enqueue", json={"queue": "ro", "payload": {}}),
            reader.post("/api/v1/fetch", json={"queues": ["ro"], "worker_id": "w"}),
            reader.post("/api/v1/queues/ro/pause"),
            reader.post(f"/api/v1/jobs/{job_id}/cancel"),
            reader.post("/api/v1/jobs/bulk", json={"action": "delete", "job_ids": [job_id]}),
            reader.post("/api/v1/jobs/export", json={"queue": "ro"}),
            reader.delete(f"/api/v1/jobs/{job_id}"),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert refused[0].json()["code"] == "FORBIDDEN"
        assert full.get(f"/api/v1/jobs/{job_id}").json()["state"] == "pending"
        # The name part of a named key is not part of the secret.
        with _client(keyed, READ) as whole:
            assert whole.get("/api/v1/queues").status_code == 401
    with Client(keyed.url, api_key="read-secret") as client, pytest.raises(Forbidden):
        client.pause("ro")


def test_audit_log_records_who_did_what(keyed: ServerProcess) -> None:
    with _client(keyed, "full-secret") as full, _client(keyed, "read-secret") as reader:
        ids = [enqueue(full, "aud", payload={}) for _ in range(3)]
        assert full.post("/api/v1/queues/aud/pause").status_code == 200
        bulk = {"action": "cancel", "filter": {"queue": "aud"}}
        dry = full.post("/api/v1/jobs/bulk", json={**bulk, "dry_run": True})
        assert dry.json() == {"matched": 3}
        done = full.post("/api/v1/jobs/bulk", json=bulk)
        assert done.json()["affected"] == 3, done.text
        assert full.delete(f"/api/v1/jobs/{ids[0]}").status_code == 200
        assert full.post("/api/v1/jobs/search", json={"queue": "aud"}).status_code == 200
        entries = reader.get("/api/v1/audit").json()["entries"]
        assert [(e["action"], e["actor"], e["affected"]) for e in entries] == [
            ("job.delete", "ops", 1),
            ("jobs.bulk", "ops", 3),
            ("queue.pause", "ops", None),
        ]  # newest first; the dry run and the search are not recorded
        assert entries[1]["target"] == 'cancel filter {"queue":"aud"}'
        assert entries[2]["target"] == "queue aud" and entries[2]["source"] == "api"
        page = reader.get("/api/v1/audit", params={"limit": 2}).json()
        assert len(page["entries"]) == 2
        older = reader.get("/api/v1/audit", params={"before": page["next_before"]}).json()
        assert [e["action"] for e in older["entries"]] == ["queue.pause"]
        assert reader.get("/api/v1/audit", params={"limit": "x"}).status_code == 400
        # Past the retention (1h here) old entries go as new ones are written.
        assert full.post("/_test/clock", json={"seconds": 7200}).status_code == 200
        assert full.post("/api/v1/queues/aud/resume").status_code == 200
        left = reader.get("/api/v1/audit").json()["entries"]
        assert [e["action"] for e in left] == ["queue.resume"]


def test_without_keys_the_actor_is_anonymous(api: httpx.Client, queue: str) -> None:
    enqueue(api, queue, payload={})
    assert api.post(f"/api/v1/queues/{queue}/drain").status_code == 200
    entries = api.get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
    mine = [e for e in entries if e["target"] == f"queue {queue}"]
    assert [(e["action"], e["actor"]) for e in mine] == [("queue.drain", "anonymous")]
