"""The operator's fleet view in a real headless Chromium, on the real stack.

Two Celery workers (started as the Procfile does) beat into the store; an operator
signs in with an operator token, sees both workers live and the queue depth move
while a job of slow assets drains, counts the failed jobs of a filter (dry run),
retries exactly those, and finds the action in the audit log. The same numbers are
then read three ways, /v1/fleet, /metrics and `genblaze-ingest fleet --json`, and
must agree. Screenshots go to the test's artifacts (GENBLAZE_TEST_ARTIFACTS) and,
with GENBLAZE_UPDATE_DOCS=1, to docs/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genblaze_s3.local.services import SeaweedS3
from tests.integration.test_operator_ui import _text, _until, artifacts, browser  # noqa: F401
from tests.support.cdn import CDNServer
from tests.support.workers import QueueStack, StartStack

ROOT = Path(__file__).resolve().parents[2]
OPERATORS = "ops:tok-ops:admin,watch:tok-watch:viewer"


@pytest.fixture(scope="module")
def fleet_stack(start_module_stack: StartStack) -> QueueStack:
    return start_module_stack(n_workers=2, extra_env={"GENBLAZE_OPERATOR_TOKENS": OPERATORS})


def _api(stack: QueueStack, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _submit(
    client: httpx.Client, urls: list[str], bucket: str, endpoint: str, **labels: str
) -> str:
    body = {
        "assets": [{"url": u} for u in urls],
        "destination": {"bucket": bucket, "endpoint_url": endpoint},
        "labels": labels,
    }
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _state(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/v1/jobs/{job_id}").json()["state"])


def test_operator_sees_the_fleet_and_bulk_retries_a_filter_in_chromium(
    fleet_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    browser: Any,  # noqa: F811
    artifacts: Path,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    stack, endpoint = fleet_stack, seaweed.endpoint_url
    acme = _api(stack, stack.tokens["acme"])
    globex = _api(stack, stack.tokens["globex"])
    ops = _api(stack, "tok-ops")

    # Two jobs whose source is not there yet (404: source_not_found), one of another
    # tenant failing for another reason: the filter must pick the first two only.
    missing = [_submit(acme, [cdn.url(f"/later-{i}.png")], bucket, endpoint) for i in range(2)]
    other = _submit(globex, [cdn.url("/x.png", mode="expired")], bucket, endpoint)
    for j in missing:
        _wait(lambda j=j: _state(acme, j) == "failed", 60, f"job {j} fails")
    _wait(lambda: _state(globex, other) == "failed", 60, "globex job fails")

    # Sign in as the operator: the fleet page, both workers live.
    browser.set_window_size(1280, 1400)  # the whole page in each screenshot
    browser.get(f"{stack.api_url}/ui/login")
    browser.find_element(By.ID, "token").send_keys("tok-ops")
    browser.find_element(By.ID, "sign-in").click()
    _until(browser, lambda: "/ui/fleet" in browser.current_url, 20, "fleet page")
    _until(browser, lambda: _text(browser, "#workers-alive") == "2", 30, "two live workers")
    rows = browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr")
    assert len(rows) == 2 and all("alive" in r.text and "prefork" in r.text for r in rows)

    # A job of slow assets: the queue's depth moves on the page as the workers drain it.
    for i in range(16):
        cdn.add(f"/slow-{i}.bin", os.urandom(256 * 1024))
    slow = _submit(
        acme,
        [cdn.url(f"/slow-{i}.bin", mode="slow", rate=128 * 1024) for i in range(16)],
        bucket,
        endpoint,
        suite="fleet",
    )
    depths: list[int] = []

    def depth_moved() -> bool:
        text = _text(browser, "#queues [data-depth]")
        if text.isdigit() and (not depths or depths[-1] != int(text)):
            depths.append(int(text))
            busy = any(
                e.text != "0" for e in browser.find_elements(By.CSS_SELECTOR, "[data-active]")
            )
            if len(depths) >= 2 and busy and not (artifacts / "fleet-01-live.png").exists():
                browser.save_screenshot(str(artifacts / "fleet-01-live.png"))
        shot = (artifacts / "fleet-01-live.png").exists()
        return len(depths) >= 3 and max(depths) > 0 and shot

    (artifacts / "fleet-01-live.png").unlink(missing_ok=True)
    _until(browser, depth_moved, 90, "queue depth moving")
    assert any(b < a for a, b in zip(depths, depths[1:], strict=False)), depths
    _wait(lambda: _state(acme, slow) == "succeeded", 120, "slow job succeeds")

    # Bulk retry: count the failed jobs with source_not_found first (dry run).
    browser.get(f"{stack.api_url}/ui/fleet")
    Select(browser.find_element(By.ID, "bulk-action")).select_by_value("retry")
    browser.find_element(By.ID, "bulk-code").send_keys("source_not_found")
    browser.find_element(By.ID, "dry-run").click()
    _until(browser, lambda: _text(browser, "#match-count") == "2", 20, "dry-run count")
    assert all(j in _text(browser, "#dry-run-result") for j in missing)
    assert other not in _text(browser, "#dry-run-result")
    browser.save_screenshot(str(artifacts / "fleet-02-dry-run.png"))

    # The sources exist now; retry exactly those two.
    for i in range(2):
        cdn.add(f"/later-{i}.png", os.urandom(30_000), content_type="image/png")
    browser.find_element(By.ID, "confirm-action").click()
    _until(browser, lambda: "retry: 2 of 2 jobs" in _text(browser, "#notice"), 20, "notice")
    audit = _text(browser, "#audit")
    assert "ops" in audit and "retry" in audit and "error_code=source_not_found" in audit
    assert "retry_dry_run" in audit and "sign_in" in audit
    browser.save_screenshot(str(artifacts / "fleet-03-audit.png"))
    for j in missing:
        _wait(lambda j=j: _state(acme, j) == "succeeded", 60, f"retried job {j} succeeds")
    assert _state(globex, other) == "failed"

    # A viewer sees the same page and cannot act.
    viewer = ops.post(
        "/v1/fleet/actions",
        json={"action": "retry", "dry_run": False, "expected_count": 1},
        headers={"Authorization": "Bearer tok-watch"},
    )
    assert viewer.status_code == 403

    # Same numbers everywhere: /v1/fleet, /metrics, and the CLI.
    def quiet() -> dict[str, Any] | None:
        snap = ops.get("/v1/fleet").json()
        idle = snap["queues"][0]["depth"] == 0 and all(w["active"] == 0 for w in snap["workers"])
        return snap if idle else None

    snap = _wait(quiet, 30, "an idle fleet")
    families = {
        f.name: f
        for f in text_string_to_metric_families(httpx.get(f"{stack.api_url}/metrics").text)
    }

    def metric(name: str, **labels: str) -> float:
        for s in families[name].samples:
            if not s.name.endswith("_created") and all(
                s.labels.get(k) == v for k, v in labels.items()
            ):
                return float(s.value)
        raise AssertionError(f"{name} {labels}")

    totals = snap["totals"]
    assert (
        metric("genblaze_assets", state="stored") + metric("genblaze_assets", state="deduplicated")
        == totals["assets_stored"]
    )
    assert metric("genblaze_assets", state="failed") == totals["assets_failed"] == 3
    assert metric("genblaze_ingested_bytes") == totals["bytes_ingested"]
    assert metric("genblaze_assets_failed_by_code", code="source_not_found") == 2
    assert snap["failures_by_code"] == {"source_expired": 1, "source_not_found": 2}
    assert metric("genblaze_workers_alive") == 2 == sum(w["alive"] for w in snap["workers"])
    assert metric("genblaze_queue_depth") == snap["queues"][0]["depth"] == 0
    cli = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "fleet", "--json"],
        env={**os.environ, "GENBLAZE_API_URL": stack.api_url, "GENBLAZE_API_TOKEN": "tok-watch"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    from_cli = json.loads(cli.stdout)
    assert from_cli["totals"] == totals
    assert from_cli["failures_by_code"] == snap["failures_by_code"]
    assert [w["host"] for w in from_cli["workers"]] == [w["host"] for w in snap["workers"]]
    table = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "fleet"],
        env={**os.environ, "GENBLAZE_API_URL": stack.api_url, "GENBLAZE_API_TOKEN": "tok-watch"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert all(w["host"] in table.stdout for w in snap["workers"])
    assert "source_not_found" in table.stdout

    if os.environ.get("GENBLAZE_UPDATE_DOCS") == "1":
        shutil.copy(artifacts / "fleet-01-live.png", ROOT / "docs" / "ui-fleet.png")
        shutil.copy(artifacts / "fleet-02-dry-run.png", ROOT / "docs" / "ui-fleet-dry-run.png")
        shutil.copy(artifacts / "fleet-03-audit.png", ROOT / "docs" / "ui-fleet-audit.png")
