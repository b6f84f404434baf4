"""API keys (spec section 7): every /api/ route needs `Authorization: Bearer <key>`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
UNKNOWN_ID = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"

# One request per kind of /api/ route: reads, writes, path parameters, unknown ids.
API_REQUESTS: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/api/v1/queues", None),
    ("POST", "/api/v1/enqueue", {"queue": "auth.q"}),
    ("POST", "/api/v1/enqueue/batch", {"jobs": [{"queue": "auth.q"}]}),
    ("POST", "/api/v1/fetch", {"queues": ["auth.q"], "worker_id": "w", "timeout": 0}),
    ("POST", "/api/v1/heartbeat", {"jobs": {}}),
    ("POST", f"/api/v1/ack/{UNKNOWN_ID}", {}),
    ("POST", "/api/v1/ack/batch", {"acks": [{"job_id": UNKNOWN_ID}]}),
    ("POST", f"/api/v1/fail/{UNKNOWN_ID}", {"error": "x"}),
    ("POST", f"/api/v1/release/{UNKNOWN_ID}", {}),
    ("GET", f"/api/v1/jobs/{UNKNOWN_ID}", None),
    ("POST", f"/api/v1/jobs/{UNKNOWN_ID}/cancel", None),
    ("POST", "/api/v1/queues/auth.q/pause", None),
    ("POST", "/api/v1/queues/auth.q/resume", None),
    ("POST", "/api/v1/queues/auth.q/concurrency", {"max": 1}),
    ("POST", "/api/v1/queues/auth.q/throttle", {"rate": 1, "period": "1s"}),
    ("DELETE", "/api/v1/queues/auth.q/throttle", None),
    ("GET", "/api/v1/no-such-route", None),
    # Bad input is refused for want of a key before it is validated.
    ("POST", "/api/v1/enqueue", {"queue": ""}),
]

BAD_AUTHORIZATIONS: list[dict[str, str]] = [
    {},
    {"authorization": "Bearer wrong"},
    {"authorization": "Bearer"},
    {"authorization": "Bearer k"},  # a prefix of a key
    {"authorization": "Bearer k1x"},  # a key plus more
    {"authorization": "Bearer k1,k2"},  # the list itself is not a key
    {"authorization": "Basic k1"},
    {"authorization": "k1"},
    {"x-api-key": "k1"},
]


def call(
    client: httpx.Client, method: str, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    return client.request(method, path, json=body, headers=headers)


def assert_unauthorized(resp: httpx.Response) -> None:
    assert resp.status_code == 401, f"{resp.request.method} {resp.request.url}: {resp.text}"
    assert resp.headers.get("content-type", "").startswith("application/json")
    body = resp.json()
    assert body["code"] == "UNAUTHORIZED"
    assert isinstance(body["error"], str)
    assert body["error"]
    assert resp.headers.get("x-request-id")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("auth") / "data", extra_args=("--api-key", "k1,k2")
    ).start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "headers", BAD_AUTHORIZATIONS, ids=[str(h) or "none" for h in BAD_AUTHORIZATIONS]
)
@pytest.mark.parametrize(
    ("method", "path", "body"), API_REQUESTS, ids=[f"{m} {p}" for m, p, _ in API_REQUESTS]
)
def test_api_routes_refuse_missing_or_wrong_key(
    keyed_server: ServerProcess,
    method: str,
    path: str,
    body: object,
    headers: dict[str, str],
) -> None:
    with httpx.Client(base_url=keyed_server.url, timeout=10.0) as client:
        assert_unauthorized(call(client, method, path, body, headers))


def test_refused_writes_write_nothing(keyed_server: ServerProcess) -> None:
    with httpx.Client(base_url=keyed_server.url, timeout=10.0) as client:
        queue = "auth.nothing"
        assert_unauthorized(client.post("/api/v1/enqueue", json={"queue": queue}))
        assert_unauthorized(client.post(f"/api/v1/queues/{queue}.p/pause"))
        assert_unauthorized(
            client.post(
                "/api/v1/enqueue",
                json={"queue": queue},
                headers={"authorization": "Bearer nope"},
            )
        )
        resp = client.get("/api/v1/queues", headers={"authorization": "Bearer k1"})
        assert resp.status_code == 200
        names = {q["name"] for q in resp.json()["queues"]}
        assert queue not in names
        assert f"{queue}.p" not in names


@pytest.mark.parametrize("key", ["k1", "k2"])
def test_each_key_works(keyed_server: ServerProcess, key: str) -> None:
    auth = {"authorization": f"Bearer {key}"}
    queue = f"auth.works.{key}"
    with httpx.Client(base_url=keyed_server.url, headers=auth, timeout=10.0) as client:
        resp = client.post("/api/v1/enqueue", json={"queue": queue, "payload": key})
        assert resp.status_code == 201, resp.text
        job_id = resp.json()["job_id"]
        resp = client.post(
            "/api/v1/fetch", json={"queues": [queue], "worker_id": "w", "timeout": 0}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["job_id"] == job_id
        resp = client.post(f"/api/v1/ack/{job_id}", json={"result": 1})
        assert resp.status_code == 200, resp.text
        resp = client.get(f"/api/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == "completed"
        # With a valid key, errors are the route's own again.
        resp = client.get(f"/api/v1/jobs/{UNKNOWN_ID}")
        assert resp.status_code == 404
        assert resp.json()["code"] == "NOT_FOUND"


def test_healthz_stays_open(keyed_server: ServerProcess) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}):
        resp = httpx.get(f"{keyed_server.url}/healthz", headers=headers, timeout=10.0)
        assert resp.status_code == 200
        assert resp.json() == {"status": "ok"}


def test_env_variable_sets_the_keys(make_server: MakeServer) -> None:
    proc = make_server(env={"JOBBIE_API_KEY": "env-a,env-b"})
    with httpx.Client(base_url=proc.url, timeout=10.0) as client:
        assert_unauthorized(client.get("/api/v1/queues"))
        assert_unauthorized(client.get("/api/v1/queues", headers={"authorization": "Bearer k1"}))
        for key in ("env-a", "env-b"):
            resp = client.get("/api/v1/queues", headers={"authorization": f"Bearer {key}"})
            assert resp.status_code == 200, resp.text
        assert client.get("/healthz").status_code == 200


def test_no_key_configured_means_open(api: httpx.Client) -> None:
    resp = api.get("/api/v1/queues")
    assert resp.status_code == 200
    resp = api.get("/api/v1/queues", headers={"authorization": "Bearer anything"})
    assert resp.status_code == 200
