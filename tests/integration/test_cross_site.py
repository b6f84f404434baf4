"""Cross-site protection and exposure: a page on another site cannot change state, a foreign
Host is refused by a loopback-bound server (DNS rebinding), non-browser clients are unaffected,
and `--protect-metrics` puts /metrics and /openapi.json behind the keys."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from jobbie.config import Settings
from jobbie.server.app import exposure_warning
from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
EVIL = "https://evil.example"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def enqueue(api: httpx.Client, queue: str) -> None:
    assert api.post("/api/v1/enqueue", json={"queue": queue}).status_code == 201


def pending(api: httpx.Client, queue: str) -> int:
    [found] = [q for q in api.get("/api/v1/queues").json()["queues"] if q["name"] == queue]
    count: int = found["counts"]["pending"]
    return count


def assert_forbidden(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": EVIL, **FORM},
        {"origin": "null", **FORM},
        {"sec-fetch-site": "cross-site", **FORM},
        {"origin": EVIL, "sec-fetch-site": "cross-site", "content-type": "application/json"},
    ],
    ids=["origin", "null-origin", "fetch-metadata", "json"],
)
def test_a_foreign_page_cannot_change_state(
    api: httpx.Client, queue: str, headers: dict[str, str]
) -> None:
    enqueue(api, queue)
    assert_forbidden(api.post(f"/api/v1/queues/{queue}/clear", headers=headers))
    assert_forbidden(api.post("/api/v1/enqueue", json={"queue": queue}, headers=headers))
    assert pending(api, queue) == 1
    # Reads stay open (the browser keeps their answers from the page without CORS).
    assert api.get("/api/v1/queues", headers=headers).status_code == 200


def test_same_origin_pages_and_non_browser_clients_pass(
    api: httpx.Client, server: ServerProcess, queue: str
) -> None:
    enqueue(api, queue)
    own = {"origin": server.url, "sec-fetch-site": "same-origin"}
    assert api.post(f"/api/v1/queues/{queue}/pause", headers=own).status_code == 200
    localhost = {"origin": f"http://localhost:{server.port}", "host": f"localhost:{server.port}"}
    assert api.post(f"/api/v1/queues/{queue}/resume", headers=localhost).status_code == 200
    resp = api.post(f"/api/v1/queues/{queue}/clear")  # no Origin: curl, SDKs, workers
    assert resp.json() == {"cleared": 1}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "10.0.0.1:8080"])
def test_a_loopback_server_refuses_foreign_host_names(api: httpx.Client, host: str) -> None:
    assert_forbidden(api.get("/api/v1/queues", headers={"host": host}))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:1", "[::1]:8080", "app.localhost"])
def test_loopback_host_names_pass(api: httpx.Client, host: str) -> None:
    assert api.get("/api/v1/queues", headers={"host": host}).status_code == 200


def test_cors_origin_and_allowed_host_open_the_checks(make_server: MakeServer) -> None:
    server = make_server("--cors-origin", "https://app.example", "--allowed-host", "jobs.internal")
    with httpx.Client(base_url=server.url, timeout=10.0) as api:
        ok = {"origin": "https://app.example", "host": "jobs.internal:8080"}
        assert api.post("/api/v1/enqueue", json={"queue": "q"}, headers=ok).status_code == 201
        assert_forbidden(api.post("/api/v1/enqueue", json={"queue": "q"}, headers={"origin": EVIL}))
        assert_forbidden(api.get("/api/v1/queues", headers={"host": "evil.example"}))


def test_protect_metrics_needs_the_key(make_server: MakeServer) -> None:
    open_server = make_server("--api-key", "k1")
    assert httpx.get(f"{open_server.url}/metrics").status_code == 200
    server = make_server("--api-key", "k1", "--protect-metrics")
    key = {"authorization": "Bearer k1"}
    for path in ("/metrics", "/openapi.json"):
        assert httpx.get(f"{server.url}{path}").status_code == 401
        assert httpx.get(f"{server.url}{path}", headers=key).status_code == 200
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_binding_beyond_loopback_without_keys_warns() -> None:
    assert exposure_warning(Settings.build({"bind": "127.0.0.1:8080"}, {})) is None
    assert exposure_warning(Settings.build({"bind": "[::1]:8080"}, {})) is None
    exposed = Settings.build({"bind": "0.0.0.0:8080"}, {})
    assert "without API keys" in (exposure_warning(exposed) or "")
    keyed = Settings.build({"bind": "0.0.0.0:8080"}, {"JOBBIE_API_KEY": "k"})
    assert exposure_warning(keyed) is None


def test_the_host_check_answers_the_same_every_time(api: httpx.Client) -> None:
    # Judged hosts are remembered: a refused one stays refused, an accepted one accepted,
    # also after more distinct hosts than are remembered.
    for round_ in range(2):
        assert_forbidden(api.get("/api/v1/queues", headers={"host": "evil.example"}))
        assert api.get("/api/v1/queues", headers={"host": "localhost"}).status_code == 200
        for i in range(300 * round_):
            api.get("/api/v1/queues", headers={"host": f"h{i}.example"})
