"""HTTP basics: request ids, the OpenAPI document, Swagger UI, CORS and the health check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.serverproc import ServerProcess

MakeServer = Callable[..., ServerProcess]
UNKNOWN_ID = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"

# The worker protocol of spec section 5: (method, path, has a request body).
WORKER_PROTOCOL: list[tuple[str, str, bool]] = [
    ("post", "/api/v1/enqueue", True),
    ("post", "/api/v1/enqueue/batch", True),
    ("post", "/api/v1/fetch", True),
    ("post", "/api/v1/ack/{job_id}", True),
    ("post", "/api/v1/ack/batch", True),
    ("post", "/api/v1/fail/{job_id}", True),
    ("post", "/api/v1/heartbeat", True),
    ("post", "/api/v1/release/{job_id}", True),
]
MANAGEMENT: list[tuple[str, str]] = [
    ("get", "/api/v1/jobs/{job_id}"),
    ("post", "/api/v1/jobs/{job_id}/cancel"),
    ("get", "/api/v1/queues"),
    ("post", "/api/v1/queues/{name}/pause"),
    ("post", "/api/v1/queues/{name}/resume"),
    ("post", "/api/v1/queues/{name}/concurrency"),
    ("post", "/api/v1/queues/{name}/throttle"),
    ("delete", "/api/v1/queues/{name}/throttle"),
    ("post", "/api/v1/queues/{name}/fairness"),
    ("post", "/api/v1/queues/{name}/key-concurrency"),
    ("post", "/api/v1/queues/{name}/key-throttle"),
    ("delete", "/api/v1/queues/{name}/key-throttle"),
    ("get", "/api/v1/queues/{name}/keys"),
    ("get", "/healthz"),
]
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def route_table() -> list[tuple[str, str, bool, list[int]]]:
    """(method, path, has a body, response statuses) for every route the server declares."""
    from jobbie.server.routes import ROUTES

    return [(r.method.lower(), r.path, r.body is not None, sorted(r.responses)) for r in ROUTES]


@pytest.fixture(scope="module")
def openapi(server: ServerProcess) -> dict[str, Any]:
    resp = httpx.get(f"{server.url}/openapi.json", timeout=10.0)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = resp.json()
    return doc


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` to its component."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert part in node, f"dangling $ref {ref}"
        node = node[part]
    assert isinstance(node, dict)
    return node


def refs_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        for item in value.values():
            found |= refs_in(item)
        return found
    if isinstance(value, list):
        return set().union(*(refs_in(v) for v in value)) if value else set()
    return set()


# --- request ids --------------------------------------------------------------------------------


def test_request_id_is_generated(api: httpx.Client) -> None:
    first = api.get("/healthz").headers.get("x-request-id")
    second = api.get("/healthz").headers.get("x-request-id")
    assert first
    assert second
    assert first != second


def test_request_id_is_generated_on_errors(api: httpx.Client) -> None:
    resp = api.get(f"/api/v1/jobs/{UNKNOWN_ID}")
    assert resp.status_code == 404
    assert resp.headers.get("x-request-id")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/healthz", None),
        ("GET", "/api/v1/queues", None),
        ("GET", f"/api/v1/jobs/{UNKNOWN_ID}", None),  # 404
        ("POST", "/api/v1/enqueue", {"queue": ""}),  # 400
        ("POST", "/api/v1/fetch", {"queues": ["rid.q"], "worker_id": "w", "timeout": 0}),  # 204
    ],
)
def test_request_id_is_echoed(api: httpx.Client, method: str, path: str, body: object) -> None:
    rid = "req-1234.abc_DEF"
    resp = api.request(method, path, json=body, headers={"x-request-id": rid})
    assert resp.status_code < 500
    assert resp.headers.get("x-request-id") == rid


def test_request_id_on_415_and_413(api: httpx.Client) -> None:
    resp = api.post(
        "/api/v1/enqueue",
        content=b'{"queue": "rid.q"}',
        headers={"content-type": "text/plain", "x-request-id": "r-415"},
    )
    assert resp.status_code == 415
    assert resp.headers.get("x-request-id") == "r-415"
    resp = api.post(
        "/api/v1/enqueue",
        json={"queue": "rid.q", "payload": "x" * (1 << 21)},
        headers={"x-request-id": "r-413"},
    )
    assert resp.status_code == 413
    assert resp.headers.get("x-request-id") == "r-413"


# --- OpenAPI ------------------------------------------------------------------------------------


def test_openapi_json_is_served(api: httpx.Client) -> None:
    resp = api.get("/openapi.json")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert isinstance(resp.json(), dict)


def test_openapi_is_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    assert openapi["info"]["title"]
    assert openapi["info"]["version"]
    assert isinstance(openapi["paths"], dict)


def test_openapi_describes_every_route_of_the_table(openapi: dict[str, Any]) -> None:
    table = route_table()
    assert table, "the route table is empty"
    for method, path, has_body, statuses in table:
        assert path in openapi["paths"], f"{path} missing from /openapi.json"
        operation = openapi["paths"][path].get(method)
        assert operation is not None, f"{method.upper()} {path} missing from /openapi.json"
        if has_body:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert resolve(openapi, schema), f"{method.upper()} {path}: empty request schema"
        for status in statuses:
            assert str(status) in operation["responses"], f"{method.upper()} {path}: {status}"


def test_openapi_describes_nothing_the_server_does_not_serve(openapi: dict[str, Any]) -> None:
    table = {(m, p) for m, p, _, _ in route_table()}
    documented = {
        (method, path)
        for path, item in openapi["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert documented == table


@pytest.mark.parametrize(("method", "path", "has_body"), WORKER_PROTOCOL)
def test_openapi_has_the_worker_protocol(
    openapi: dict[str, Any], method: str, path: str, has_body: bool
) -> None:
    assert path in openapi["paths"], path
    operation = openapi["paths"][path][method]
    if has_body:
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert resolve(openapi, body).get("type") == "object" or "anyOf" in resolve(openapi, body)
    success = [s for s in operation["responses"] if s.startswith("2") and s != "204"]
    assert success, f"{method.upper()} {path} documents no success response"
    for status in success:
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert resolve(openapi, schema)
    errors = [s for s in operation["responses"] if s.startswith("4")]
    assert "400" in errors
    for status in errors:
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        error = resolve(openapi, schema)
        assert {"error", "code"} <= set(error.get("properties", {})), error


@pytest.mark.parametrize(("method", "path"), MANAGEMENT)
def test_openapi_has_the_management_routes(openapi: dict[str, Any], method: str, path: str) -> None:
    assert path in openapi["paths"], path
    assert method in openapi["paths"][path], f"{method.upper()} {path}"


def test_openapi_fetch_documents_204(openapi: dict[str, Any]) -> None:
    assert "204" in openapi["paths"]["/api/v1/fetch"]["post"]["responses"]


def test_openapi_request_schemas_show_fields_and_bounds(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    enqueue = resolve(
        openapi,
        paths["/api/v1/enqueue"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert "queue" in enqueue.get("required", [])
    props = enqueue["properties"]
    for name in ("queue", "payload", "priority", "max_retries", "scheduled_at", "delay", "tags"):
        assert name in props, name
    fetch = resolve(
        openapi,
        paths["/api/v1/fetch"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert {"queues", "worker_id"} <= set(fetch.get("required", []))


def test_openapi_path_parameters_are_declared(openapi: dict[str, Any]) -> None:
    for path, item in openapi["paths"].items():
        names = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path}"


def test_openapi_refs_all_resolve(openapi: dict[str, Any]) -> None:
    for ref in refs_in(openapi["paths"]) | refs_in(openapi.get("components", {})):
        resolve(openapi, {"$ref": ref})


def test_openapi_operation_ids_are_unique(openapi: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in openapi["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS and "operationId" in op
    ]
    assert len(ids) == len(set(ids))


def test_docs_serves_swagger_ui(api: httpx.Client) -> None:
    resp = api.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    text = resp.text.lower()
    assert "<html" in text
    assert "swagger" in text
    assert "/openapi.json" in text


# --- CORS ---------------------------------------------------------------------------------------

ORIGIN = "http://ui.example.test"


def preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        "/api/v1/enqueue",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )


def test_cors_is_off_by_default(api: httpx.Client) -> None:
    resp = api.get("/api/v1/queues", headers={"origin": ORIGIN})
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers
    resp = preflight(api, ORIGIN)
    assert "access-control-allow-origin" not in resp.headers
    assert "access-control-allow-methods" not in resp.headers


def test_cors_for_a_configured_origin(make_server: MakeServer) -> None:
    proc = make_server("--cors-origin", ORIGIN)
    with httpx.Client(base_url=proc.url, timeout=10.0) as client:
        resp = client.get("/api/v1/queues", headers={"origin": ORIGIN})
        assert resp.status_code == 200
        assert resp.headers.get("access-control-allow-origin") in (ORIGIN, "*")

        resp = preflight(client, ORIGIN)
        assert resp.status_code == 200, resp.text
        assert resp.headers.get("access-control-allow-origin") in (ORIGIN, "*")
        assert "POST" in resp.headers.get("access-control-allow-methods", "")
        assert "content-type" in resp.headers.get("access-control-allow-headers", "").lower()

        # Another origin gets no grant.
        resp = client.get("/api/v1/queues", headers={"origin": "http://evil.example.test"})
        assert resp.status_code == 200
        assert resp.headers.get("access-control-allow-origin") != "http://evil.example.test"
        assert resp.headers.get("access-control-allow-origin") != "*"

        # Errors carry the grant too, so a browser can read the JSON error.
        resp = client.get(f"/api/v1/jobs/{UNKNOWN_ID}", headers={"origin": ORIGIN})
        assert resp.status_code == 404
        assert resp.headers.get("access-control-allow-origin") in (ORIGIN, "*")


# --- health and plain HTTP conventions ----------------------------------------------------------


def test_healthz(api: httpx.Client) -> None:
    resp = api.get("/healthz")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"status": "ok"}


def test_unknown_api_route_is_a_json_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/no-such-route")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == "NOT_FOUND"
    assert body["error"]


def test_wrong_method_is_a_json_error(api: httpx.Client) -> None:
    resp = api.get("/api/v1/enqueue")
    assert resp.status_code in (404, 405)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"]
    assert body["error"]


def test_json_content_type_with_charset_is_accepted(api: httpx.Client, queue: str) -> None:
    resp = api.post(
        "/api/v1/enqueue",
        content=f'{{"queue": "{queue}"}}'.encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 201, resp.text


def test_bodyless_actions_need_no_content_type(api: httpx.Client, queue: str) -> None:
    resp = api.post(f"/api/v1/queues/{queue}/pause")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == queue
    assert body["paused"] is True
    resp = api.post(f"/api/v1/queues/{queue}/resume")
    assert resp.status_code == 200, resp.text
    assert resp.json()["paused"] is False


def test_enqueue_response_has_every_documented_field(api: httpx.Client, queue: str) -> None:
    resp = api.post("/api/v1/enqueue", json={"queue": queue})
    assert resp.status_code == 201
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"job_id", "status", "unique_existing"}
    assert body["job_id"].startswith("job_")
    assert body["status"] == "pending"
    assert body["unique_existing"] is False
