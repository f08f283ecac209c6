"""The /ui page in a real headless Chromium (Debian's chromium + chromium-driver).

Signs in with a tenant token, submits a job through the page, watches its progress
bar reach 100%, lets a job fail on an expired source, retries that asset with a
fresh URL from the page, and saves screenshots of every step under the test's
artifacts (GENBLAZE_TEST_ARTIFACTS, default ./test-artifacts/ui). With
GENBLAZE_UPDATE_DOCS=1 the jobs-list and job-page screenshots also go to docs/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.workers import QueueStack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("GENBLAZE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    out = base / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver; missing binaries fail, never skip."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(
            "chromium and chromedriver are required (apt-get install chromium chromium-driver; "
            ".ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,860",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _until(driver: Any, check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Wait on what the page shows (re-finding elements: the page reloads at the end)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def probe(_: Any) -> Any:
        try:
            return check()
        except WebDriverException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(probe, message=what)


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _submit_from_page(driver: Any, api: str, urls: list[str], bucket: str, endpoint: str) -> str:
    from selenium.webdriver.common.by import By

    driver.get(f"{api}/ui")
    driver.find_element(By.CSS_SELECTOR, "#new-job summary").click()
    driver.find_element(By.ID, "urls").send_keys("\n".join(urls))
    driver.find_element(By.ID, "bucket").send_keys(bucket)
    driver.find_element(By.ID, "endpoint").send_keys(endpoint)
    driver.find_element(By.ID, "labels").send_keys("suite=ui")
    driver.find_element(By.ID, "submit-job").click()
    _until(driver, lambda: "/ui/jobs/" in driver.current_url, 20, "job page after submit")
    return str(driver.current_url.rsplit("/", 1)[-1])


def test_operator_signs_in_submits_watches_and_retries_in_chromium(
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    browser: Any,
    artifacts: Path,
) -> None:
    from selenium.webdriver.common.by import By

    api = stack.api_url
    token = stack.tokens["acme"]
    big = os.urandom(3 * 1024 * 1024)
    cdn.add("/ui-video.mp4", big, content_type="video/mp4")
    cdn.add("/ui-image.png", os.urandom(40_000), content_type="image/png")
    cdn.add("/ui-expiring.png", os.urandom(20_000), content_type="image/png")
    # Slow enough that the page shows progress moving, fast enough for CI.
    slow = cdn.url("/ui-video.mp4", mode="slow", rate=2 * 1024 * 1024)

    # Sign in (a wrong token first: the page says so).
    browser.get(f"{api}/ui")
    _until(browser, lambda: "/ui/login" in browser.current_url, 20, "redirect to sign-in")
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    browser.find_element(By.ID, "sign-in").click()
    _until(browser, lambda: "unknown token" in _text(browser, "#login-error"), 10)
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    _until(browser, lambda: browser.find_element(By.ID, "jobs"), 10, "jobs list")
    browser.save_screenshot(str(artifacts / "01-signed-in.png"))

    # Submit from the page and watch the bar reach 100%.
    job1 = _submit_from_page(
        browser, api, [slow, cdn.url("/ui-image.png")], bucket, seaweed.endpoint_url
    )
    seen: set[str] = set()

    def progress_done() -> bool:
        seen.add(_text(browser, "#pct"))
        # The page reloads itself once the job ends: the manifest line then appears.
        return bool(browser.find_elements(By.ID, "manifest"))

    _until(browser, progress_done, 90, "job 1 succeeded")
    assert _text(browser, "#summary [data-state]") == "succeeded"
    assert _text(browser, "#pct") == "100%"
    assert len(seen) >= 2, f"progress never moved: {seen}"
    browser.save_screenshot(str(artifacts / "02-job-succeeded.png"))

    # A job with an expired source fails; retry that asset from the page with a fresh URL.
    job2 = _submit_from_page(
        browser,
        api,
        [cdn.url("/ui-image.png"), cdn.url("/ui-expiring.png", mode="expired")],
        bucket,
        seaweed.endpoint_url,
    )
    _until(browser, lambda: browser.find_elements(By.ID, "retry"), 90, "job 2 fails")
    assert _text(browser, "#summary [data-state]") == "failed"
    assert "source_expired" in _text(browser, "#assets")
    # Partly failed: the bar shows both parts, the failed half red.
    red = browser.find_element(By.CSS_SELECTOR, "#summary [data-bar-failed]")
    blue = browser.find_element(By.CSS_SELECTOR, "#summary [data-bar]")
    assert red.get_attribute("style") == "width: 50%;" and "(214, 69, 69" in (
        red.value_of_css_property("background-color")
    )
    assert blue.get_attribute("style") == "width: 50%;"
    browser.save_screenshot(str(artifacts / "03-job-failed.png"))
    fresh = browser.find_element(By.CSS_SELECTOR, "input.replace")
    fresh.send_keys(cdn.url("/ui-expiring.png"))
    browser.find_element(By.ID, "retry").click()
    _until(
        browser,
        lambda: browser.find_elements(By.ID, "manifest"),
        90,
        "job 2 succeeds after retry",
    )
    assert _text(browser, "#summary [data-state]") == "succeeded"
    assert _text(browser, "#pct") == "100%" and "source_expired" not in _text(browser, "#assets")
    browser.save_screenshot(str(artifacts / "04-job-retried.png"))

    # The jobs list shows both, with their state and full bars.
    browser.get(f"{api}/ui")
    _until(browser, lambda: _text(browser, f"#job-{job2} [data-state]") == "succeeded", 20)
    assert _text(browser, f"#job-{job1} [data-pct]") == "100%"
    browser.save_screenshot(str(artifacts / "05-jobs-list.png"))

    # What the page showed is what the API says; the manifest was written on retry.
    doc = httpx.get(
        f"{api}/v1/jobs/{job2}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert doc["state"] == "succeeded" and doc["manifest"]["key"]
    assert doc["counts"]["stored"] + doc["counts"]["deduplicated"] == 2

    if os.environ.get("GENBLAZE_UPDATE_DOCS") == "1":
        shutil.copy(artifacts / "05-jobs-list.png", ROOT / "docs" / "ui-jobs.png")
        shutil.copy(artifacts / "03-job-failed.png", ROOT / "docs" / "ui-job.png")
