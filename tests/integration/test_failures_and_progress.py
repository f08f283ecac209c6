"""Failures say what happened, retries show, progress moves (issue 21, item 5), through
the real queue with the default retry settings.

- https to a port that speaks plain HTTP: the asset shows it is retrying (try n of 6,
  `source_tls_failed` with the TLS library's reason, when) in the API document and
  the CLI, then fails `source_tls_failed` after its retries, never `too_many_attempts`.
- a 1.3 MB/s source shows bytes moving within 5 s of its first byte, in each phase
  (the hash pass of a CAS copy, a multipart upload, a spooled CAS copy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import wait_for
from tests.support.invariants import Services, wait_terminal
from tests.support.workers import QueueStack

MiB = 1024 * 1024


def _submit(stack: QueueStack, seaweed: SeaweedS3, bucket: str, url: str, strategy: str) -> str:
    r = httpx.post(
        f"{stack.api_url}/v1/jobs",
        json={
            "assets": [{"url": url, "media_type": "video/mp4"}],
            "destination": {
                "bucket": bucket,
                "endpoint_url": seaweed.endpoint_url,
                "key_strategy": strategy,
            },
        },
        headers=_auth(stack),
        timeout=10,
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _auth(stack: QueueStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.tokens['acme']}"}


def _asset(stack: QueueStack, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_auth(stack), timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json()["assets"][0])


@pytest.mark.slow
def test_https_to_a_plain_http_port_retries_visibly_then_fails_as_a_tls_failure(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    url = cdn.add("/tls.mp4", os.urandom(4096), content_type="video/mp4")
    job_id = _submit(stack, seaweed, bucket, url.replace("http://", "https://"), "hierarchical")
    wait_for(lambda: _asset(stack, job_id)["retry"] is not None, timeout=30)
    retry = _asset(stack, job_id)["retry"]
    assert retry["attempt"] == 2 and retry["of"] == 6  # GENBLAZE_MAX_RETRIES=5: 6 tries
    assert retry["last_error"]["code"] == "source_tls_failed"
    assert "WRONG_VERSION_NUMBER" in retry["last_error"]["message"]
    assert retry["next_try_at"]
    cli = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "status", job_id],
        env={
            **os.environ,
            "GENBLAZE_API_URL": stack.api_url,
            "GENBLAZE_API_TOKEN": stack.tokens["acme"],
            "COLUMNS": "250",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "retrying: try " in cli.stdout and "source_tls_failed" in cli.stdout, cli.stdout
    view = wait_terminal(Services(stack.redis_url, s3_client), [job_id], timeout=150)[job_id]
    asset = view.assets[0]
    assert asset.error is not None and asset.error.code == "source_tls_failed", asset
    assert "gave up after 6 tries" in asset.error.message and asset.retry is None
    assert "too_many_attempts" not in stack.worker_logs()


@pytest.mark.parametrize(
    ("phase", "strategy", "mode"),
    [
        ("hash_pass", "content_addressable", "slow"),
        ("upload", "hierarchical", "slow"),
        # no ETag / Last-Modified: a CAS copy spools instead of reading the source twice
        ("spool", "content_addressable", "no_validators"),
    ],
)
def test_a_slow_download_shows_progress_within_five_seconds(
    phase: str,
    strategy: str,
    mode: str,
    stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
) -> None:
    """1.3 MB/s, blocks of 8-16 MiB: without progress inside a block the API showed
    `0 B / ?` for more than 5 s."""
    path = f"/progress-{phase}.mp4"
    cdn.add(path, os.urandom(24 * MiB), content_type="video/mp4")
    url = cdn.url(path, mode=mode, rate=1_300_000)
    job_id = _submit(stack, seaweed, bucket, url, strategy)
    wait_for(lambda: bool(cdn.bodies(path)), timeout=30)
    first_byte = cdn.bodies(path)[0].started
    wait_for(
        lambda: (
            _asset(stack, job_id)["bytes_done"] > 0
            and _asset(stack, job_id)["bytes_total"] is not None
        ),
        timeout=10,
    )
    shown = time.monotonic() - first_byte
    print(f"{phase}: progress shown {shown:.2f}s after the first byte")
    assert shown < 5.0, f"{phase}: no progress for {shown:.1f}s"
    r = httpx.delete(f"{stack.api_url}/v1/jobs/{job_id}", headers=_auth(stack))
    assert r.status_code == 200
    wait_for(lambda: _asset(stack, job_id)["state"] == "canceled", timeout=30)
