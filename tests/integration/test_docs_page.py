"""/docs: Swagger UI served from the files shipped in the package, with no CDN."""

from __future__ import annotations

import re

import httpx

from jobbie.server.openapi import SWAGGER_UI_VERSION


def test_docs_page_loads_swagger_ui_from_the_server_itself(api: httpx.Client) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls, page.text
    assert all(url.startswith("/docs/") for url in urls), urls  # nothing from the internet
    for url in urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    bundle = api.get(f"/docs/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content
    css = api.get("/docs/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    assert 'data-url="/openapi.json"' in page.text
    init = api.get("/docs/jobbie-init.js").text
    assert "SwaggerUIBundle(" in init and "dataset.url" in init
    # Swagger UI's licence is shipped and served beside it.
    assert "Apache License" in api.get("/docs/LICENSE").text


def test_docs_serves_only_its_own_files(api: httpx.Client) -> None:
    for name in ("nope.js", "README.md", "..%2Fopenapi.py", "%2e%2e"):
        resp = api.get(f"/docs/{name}")
        assert resp.status_code == 404, name
        assert resp.json()["code"] == "NOT_FOUND"
