"""Console access with API keys: login, sessions across restarts, CSRF, read-only keys, the
audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.serverproc import ServerProcess
from tests.ui.conftest import _require_browser

KEYS = ("--api-key", "ops=full-secret", "--read-only-api-key", "viewer=read-secret")


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[ServerProcess]:
    _require_browser()
    proc = ServerProcess(tmp_path / "data", extra_args=KEYS).start()
    yield proc
    proc.stop()


def _login(page: Any, server: ServerProcess, key: str, path: str = "/ui/") -> None:
    page.goto(server.url + path)
    expect(page).to_have_url(server.url + "/ui/login?next=" + path.replace("/", "%2F"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_login_session_csrf_and_audit(keyed: ServerProcess, new_page: Any) -> None:
    api = httpx.Client(base_url=keyed.url, headers={"authorization": "Bearer full-secret"})
    api.post("/api/v1/enqueue", json={"queue": "mail", "payload": {}})
    page = new_page(allow_errors=True)  # the wrong key and the refused POST answer 4xx
    _login(page, keyed, "not-a-key", "/ui/queues/mail")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.get_by_label("API key").fill("full-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(keyed.url + "/ui/queues/mail")
    assert "secret" not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "jobbie_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "full-secret" not in cookie["value"]

    # A POST without the form's CSRF token is refused, even with a valid session.
    refused = page.request.post(keyed.url + "/ui/queues/mail/pause", form={"x": "1"})
    assert refused.status == 403
    assert api.get("/api/v1/queues/mail").json()["paused"] is False
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#queue-status")).to_have_text("paused")

    page.goto(keyed.url + "/ui/audit")
    first = page.locator("#audit-table tbody tr").first
    expect(first).to_contain_text("queue.pause")
    expect(first).to_contain_text("ops")
    expect(first).to_contain_text("console")

    # The session outlives a restart; removing the key ends it.
    keyed.stop()
    keyed.start()
    page.goto(keyed.url + "/ui/workers")
    expect(page.get_by_role("heading", name="Workers")).to_be_visible()
    keyed.stop()
    keyed.extra_args = ("--api-key", "other=another-secret")
    keyed.start()
    page.goto(keyed.url + "/ui/workers")
    expect(page).to_have_url(keyed.url + "/ui/login?next=%2Fui%2Fworkers")
    api.close()


def test_read_only_key_sees_everything_and_changes_nothing(
    keyed: ServerProcess, new_page: Any
) -> None:
    api = httpx.Client(base_url=keyed.url, headers={"authorization": "Bearer full-secret"})
    job_id = api.post("/api/v1/enqueue", json={"queue": "ro", "payload": {}}).json()["job_id"]
    page = new_page(allow_errors=True)  # the refused action answers 403
    _login(page, keyed, "read-secret")
    expect(page.get_by_role("note")).to_contain_text("read-only")
    for path in ("/ui/", "/ui/queues/ro", f"/ui/jobs/{job_id}", "/ui/jobs", "/ui/audit"):
        page.goto(keyed.url + path)
        expect(page.locator("h1")).to_be_visible()
    page.goto(keyed.url + "/ui/queues/ro")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1")).to_contain_text("may only read")
    assert api.get("/api/v1/queues/ro").json()["paused"] is False
    page.goto(keyed.url + "/ui/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(keyed.url + "/ui/login")
    page.goto(keyed.url + "/ui/")
    expect(page).to_have_url(keyed.url + "/ui/login?next=%2Fui%2F")
    api.close()
