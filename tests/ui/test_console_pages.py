"""The console clicked through as an operator would: live dashboard, search, bulk, job page,
queue actions, failures, export. (Access control: test_console_access.py.)"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from playwright.sync_api import expect

from tests.serverproc import ServerProcess
from tests.ui.helpers import (
    ack,
    dead_job,
    enqueue,
    enqueue_many,
    fetch,
    heartbeat,
    job_state,
    wait_for,
)


def test_root_redirects_to_the_dashboard(console_server: ServerProcess, page: Any) -> None:
    page.goto(console_server.url + "/")
    expect(page).to_have_url(console_server.url + "/ui/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_dashboard_updates_live_on_enqueue_and_complete(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    page.goto(console_server.url + "/ui/")
    row = page.locator(f'tr[data-queue="{queue}"]')
    expect(row).to_have_count(0)
    enqueue(api, queue, {"n": 1})
    expect(row).to_be_visible()  # arrived over the page's SSE stream, no reload
    pending = row.locator("td.num").nth(1)
    completed = row.locator("td.num").nth(3)
    expect(pending).to_have_text("1")
    ack(api, fetch(api, queue))
    expect(completed).to_have_text("1")
    expect(pending).to_have_text("0")


def test_payload_jq_search_and_its_url(
    console_server: ServerProcess, api: httpx.Client, queue: str, new_page: Any
) -> None:
    ids = {n: enqueue(api, queue, {"user": {"id": n}}) for n in (1, 2, 3)}
    page = new_page()
    page.goto(console_server.url + "/ui/jobs")
    page.get_by_label("Queue", exact=True).fill(queue)
    page.get_by_label("Payload (jq)").fill(".user.id >= 2")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#match-count")).to_have_text("2")
    found = set(page.locator("#jobs-table tbody code").all_inner_texts())
    assert found == {ids[2], ids[3]}
    assert "payload_jq=" in page.url
    # The URL is the bookmark: a new page at it shows the same jobs.
    again = new_page()
    again.goto(page.url)
    expect(again.locator("#jobs-table tbody tr")).to_have_count(2)
    expect(again.get_by_label("Payload (jq)")).to_have_value(".user.id >= 2")


def test_select_rows_and_bulk_retry(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    dead = [dead_job(api, queue, f"ValueError: bad row {i}") for i in range(3)]
    page.goto(f"{console_server.url}/ui/jobs?queue={quote(queue)}&state=dead&order=asc")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(3)
    page.get_by_label(f"Select job {dead[0]}").check()
    page.get_by_label(f"Select job {dead[1]}").check()
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator(".notice")).to_contain_text("Retry: 2 jobs changed")
    assert [job_state(api, j) for j in dead] == ["pending", "pending", "dead"]


def test_retry_all_matching_in_the_background_shows_progress(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    total = 10_050  # above the 10,000 at which bulk runs in the background
    enqueue_many(api, queue, total)
    resp = api.post("/api/v1/jobs/bulk", json={"action": "cancel", "filter": {"queue": queue}})
    assert resp.status_code == 202, resp.text
    progress = resp.json()["progress_url"]
    wait_for(lambda: api.get(progress).json()["status"] == "completed", timeout=60)

    page.goto(f"{console_server.url}/ui/jobs?queue={quote(queue)}&state=cancelled")
    # Counting stops at 10,000 to draw the page; the dry run below counts exactly.
    expect(page.locator("#match-count")).to_have_text("10,000+")
    page.get_by_label("all 10,000+ matching").check()
    page.get_by_role("button", name="Retry", exact=True).click()
    # The dry run: a count to confirm, nothing changed yet.
    expect(page.get_by_role("heading", name=f"Retry {total} jobs?")).to_be_visible()
    assert api.get(f"/api/v1/queues/{queue}").json()["counts"]["cancelled"] == total
    page.get_by_role("button", name="Retry").click()
    expect(page).to_have_url(re.compile(r"/ui/bulk/"))
    expect(page.locator("#bulk-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#bulk-done")).to_have_text(str(total))
    assert page.locator("#bulk-progress").get_attribute("value") == str(total)
    assert api.get(f"/api/v1/queues/{queue}").json()["counts"]["pending"] == total


def test_job_page_shows_progress_moving(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    job_id = enqueue(api, queue, {"file": "big.csv"})
    job = fetch(api, queue)
    page.goto(f"{console_server.url}/ui/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_text("active")
    heartbeat(api, job, {"current": 1, "total": 10})
    bar = page.locator("#job-progress")
    expect(bar).to_have_attribute("value", "1")
    heartbeat(api, job, {"current": 7, "total": 10, "message": "rows"})
    expect(bar).to_have_attribute("value", "7")
    expect(page.locator("#live-job")).to_contain_text("rows")
    ack(api, job)
    expect(page.locator("#job-state")).to_have_text("completed")
    expect(page.locator("#live-job .timeline")).to_contain_text("completed")


def test_cancel_a_running_job(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    job_id = enqueue(api, queue)
    job = fetch(api, queue)
    page.goto(f"{console_server.url}/ui/jobs/{job_id}")
    page.get_by_role("button", name="Cancel").click()  # confirmed in the dialog
    expect(page.locator(".notice")).to_contain_text("Job cancelling")
    expect(page.locator("#live-job")).to_contain_text("cancel requested")
    assert heartbeat(api, job, {"current": 1}) == "cancel"


def test_pause_and_resume_a_queue(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    enqueue(api, queue)
    page.goto(f"{console_server.url}/ui/queues/{queue}")
    expect(page.locator("#queue-status")).to_have_text("running")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#queue-status")).to_have_text("paused")
    assert api.get(f"/api/v1/queues/{queue}").json()["paused"] is True
    assert api.post("/api/v1/fetch", json={"queues": [queue], "worker_id": "w"}).status_code == 204
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#queue-status")).to_have_text("running")
    assert api.get(f"/api/v1/queues/{queue}").json()["paused"] is False


def test_queue_limits_and_clear(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    for _ in range(3):
        enqueue(api, queue)
    page.goto(f"{console_server.url}/ui/queues/{queue}")
    page.get_by_label("Concurrency limit").fill("2")
    page.get_by_role("button", name="Set concurrency").click()
    expect(page.locator(".notice")).to_contain_text("Concurrency of")
    page.get_by_label("Throttle: jobs").fill("5")
    page.get_by_label("per period").fill("1m")
    page.get_by_role("button", name="Set throttle").click()
    got = api.get(f"/api/v1/queues/{queue}").json()
    assert got["max_concurrency"] == 2
    assert got["throttle"] == {"rate": 5, "period": 60.0}
    page.get_by_role("button", name="Clear").click()
    expect(page.locator(".notice")).to_contain_text("Cleared 3 waiting jobs")
    assert api.get(f"/api/v1/queues/{queue}").json()["counts"]["pending"] == 0


def test_fairness_and_per_key_limits_set_on_the_queue_page(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    for n in range(3):
        enqueue(api, queue, {"n": n}, key="acme")
    enqueue(api, queue, {"n": 3}, key="globex")
    enqueue(api, queue, {"n": 4})
    fetch(api, queue)  # the oldest: one of acme's, now active
    page.goto(f"{console_server.url}/ui/queues/{queue}")
    expect(page.locator("#fairness-mode")).to_have_text("FIFO")
    expect(page.locator("#key-limits")).to_contain_text("no per-key concurrency limit")
    rows = page.locator("#keys-table tbody tr")
    expect(rows).to_have_count(2)  # keyed jobs only, busiest first
    expect(rows.nth(0)).to_have_text(re.compile(r"acme\s*2\s*1\s*0"))
    expect(rows.nth(1)).to_have_text(re.compile(r"globex\s*1\s*0\s*0"))

    page.get_by_label("Fairness mode").select_option("round_robin")
    page.get_by_role("button", name="Set fairness").click()
    expect(page.locator(".notice")).to_contain_text("Fairness of")
    expect(page.locator("#fairness-mode")).to_have_text("round robin")
    expect(page.get_by_label("Fairness mode")).to_have_value("round_robin")

    page.get_by_label("Active jobs per key").fill("2")
    page.get_by_role("button", name="Set per-key concurrency").click()
    expect(page.locator(".notice")).to_contain_text("at most 2 active")
    page.get_by_label("Jobs handed out per key").fill("10")
    page.get_by_label("in a sliding window of").fill("1m")
    page.get_by_role("button", name="Set per-key throttle").click()
    expect(page.locator("#key-limits")).to_have_text("at most 2 active per key, 10 per 60s per key")
    got = api.get(f"/api/v1/queues/{queue}").json()
    assert got["fairness"] == "round_robin"
    assert got["key_concurrency"] == 2
    assert got["key_throttle"] == {"rate": 10, "period": 60.0}
    # The queue-wide limits are untouched.
    assert (got["max_concurrency"], got["throttle"]) == (None, None)

    page.get_by_role("button", name="Remove per-key throttle").click()
    expect(page.locator("#key-limits")).to_contain_text("no per-key throttle")
    page.get_by_label("Active jobs per key").fill("")
    page.get_by_role("button", name="Set per-key concurrency").click()
    expect(page.locator("#key-limits")).to_contain_text("no per-key concurrency limit")
    got = api.get(f"/api/v1/queues/{queue}").json()
    assert (got["key_concurrency"], got["key_throttle"]) == (None, None)

    # A key's link lists its jobs; the job page shows the key.
    page.get_by_role("link", name="globex").click()
    expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
    expect(page.get_by_label("Key (fairness)")).to_have_value("globex")
    page.locator("#jobs-table tbody a code").first.click()
    expect(page.locator("#job-key")).to_have_text("globex")


def test_a_bad_fairness_mode_is_refused(
    console_server: ServerProcess, api: httpx.Client, queue: str, new_page: Any
) -> None:
    enqueue(api, queue)
    page = new_page(allow_errors=True)
    page.goto(f"{console_server.url}/ui/queues/{queue}")
    page.locator("#fairness option").first.evaluate("o => o.value = 'lottery'")
    page.get_by_role("button", name="Set fairness").click()
    expect(page.locator("body")).to_contain_text("lottery")
    assert api.get(f"/api/v1/queues/{queue}").json()["fairness"] == "fifo"


def test_failures_grouped_by_signature_and_a_group_retried(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    missing = [dead_job(api, queue, f"KeyError: 'user {n}'") for n in (17, 4242)]
    timeout = dead_job(api, queue, "TimeoutError: no answer after 30.5 s from 10.0.0.7")
    page.goto(console_server.url + "/ui/failures")
    table = page.locator("#failures-table")
    key_row = table.locator("tr", has_text="KeyError: '<str>'")
    expect(key_row).to_have_count(1)
    expect(key_row.locator("td.num")).to_have_text("2")
    time_row = table.locator("tr", has_text="TimeoutError: no answer after <n> s from <n>")
    expect(time_row.locator("td.num")).to_have_text("1")
    key_row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", name="Retry 2 jobs?")).to_be_visible()
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".notice")).to_contain_text("Retry: 2 jobs changed")
    assert [job_state(api, j) for j in missing] == ["pending", "pending"]
    assert job_state(api, timeout) == "dead"


def test_export_the_matching_jobs(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    ids = [enqueue(api, queue, {"n": n}, tags={"team": "a" if n < 2 else "b"}) for n in range(3)]
    page.goto(f"{console_server.url}/ui/jobs?queue={quote(queue)}&tag=team%3Da")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(2)
    with page.expect_download() as info:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert sorted(r["id"] for r in rows) == sorted(ids[:2])
    assert rows[0]["tags"] == '{"team":"a"}'
    assert list(rows[0])[:4] == ["id", "queue", "state", "priority"]


def test_schedule_added_and_run_now(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    page.goto(console_server.url + "/ui/schedules")
    name = f"nightly-{queue}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Queue").fill(queue)
    page.get_by_label("Cron").fill("0 3 * * *")
    page.get_by_label("Payload (JSON)").fill('{"report": "daily"}')
    page.get_by_role("button", name="Add schedule").click()
    expect(page.locator(".notice")).to_contain_text(f"Schedule {name} added")
    page.get_by_role("button", name=f"Run now {name}").click()
    expect(page.locator(".notice")).to_contain_text("Enqueued job")
    job_id = page.locator(".notice").inner_text().split()[-1]
    job = api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["queue"] == queue and job["payload"] == {"report": "daily"}
    page.get_by_role("button", name=f"Pause {name}").click()
    expect(page.locator(".notice")).to_contain_text("paused")
    page.get_by_role("button", name=f"Remove {name}").click()
    expect(page.locator(".notice")).to_contain_text("Schedule removed")


def test_every_page_renders_without_errors(
    console_server: ServerProcess, api: httpx.Client, queue: str, new_page: Any
) -> None:
    """One screenshot per page (tests/ui/artifacts/), light and dark, wide and narrow."""
    job_id = enqueue(api, queue, {"hello": "world"})
    batch = api.post(
        "/api/v1/enqueue/batch",
        json={"jobs": [{"queue": queue, "payload": {}}], "batch": {"callback_queue": queue}},
    ).json()["batch_id"]
    fetch(api, queue, worker="worker-a")
    dead_job(api, queue + ".failing", "RuntimeError: disk 3 full")
    pages = {
        "dashboard": "/ui/",
        "queue": f"/ui/queues/{queue}",
        "jobs": f"/ui/jobs?queue={queue}",
        "job": f"/ui/jobs/{job_id}",
        "failures": "/ui/failures",
        "schedules": "/ui/schedules",
        "batch": f"/ui/batches/{batch}",
        "workers": "/ui/workers",
    }
    from tests.ui.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    for scheme, viewport in (("light", (1280, 800)), ("dark", (390, 844))):
        page = new_page(color_scheme=scheme, viewport={"width": viewport[0], "height": viewport[1]})
        for name, path in pages.items():
            page.goto(console_server.url + path)
            expect(page.locator("h1")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"page-{name}-{scheme}.png"), full_page=True)
        # The toggle flips the theme and remembers it.
        page.get_by_role("button", name="Toggle dark theme").click()
        flipped = "light" if scheme == "dark" else "dark"
        expect(page.locator("html")).to_have_attribute("data-theme", flipped)
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", flipped)
    missing = new_page(allow_errors=True)
    missing.goto(console_server.url + "/ui/jobs/job_nope")
    expect(missing.locator("h1")).to_contain_text("not found")


def test_queue_chart_counts_the_minute_throughput(
    console_server: ServerProcess, api: httpx.Client, queue: str, page: Any
) -> None:
    enqueue(api, queue)
    page.goto(f"{console_server.url}/ui/queues/{queue}")
    for i in range(3):
        if i:
            enqueue(api, queue)
        ack(api, fetch(api, queue))
    # The server snapshots every few seconds; the page's stream redraws the charts.
    hour = page.locator("#live-charts figcaption").first
    expect(hour).to_contain_text("3 completed", timeout=20_000)
    expect(page.locator("#live-charts svg.rate rect.done")).not_to_have_count(0)


# SQLite only: with a 1 ms limit, PostgreSQL may cancel even the indexed page on a busy
# machine (its timer counts planning; statistics of a table filled a moment ago may sort the
# page). The store contract tests the time limit on both backends.
@pytest.mark.sqlite_only
def test_a_search_past_the_time_limit_shows_a_notice(tmp_path: Path, new_page: Any) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=("--search-timeout", "0.001")).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as api:
            enqueue_many(api, "scan", 20_000)
        page = new_page()
        page.goto(server.url + "/ui/jobs?" + urlencode({"payload_jq": ".n == -1"}))
        notice = page.locator("#search-timed-out")
        expect(notice).to_contain_text("time limit")
        expect(notice).to_contain_text("add a queue, a state or a time range")
        expect(page.locator("#jobs-table tbody tr")).to_have_text("No jobs match.")
    finally:
        server.stop()
