"""Failures say what happened, and an asset that is retrying shows it (issue 21, item 5)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import genblaze_s3.transfer as transfer
from genblaze_s3.ingest.models import AssetState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.worker.asset_copy import Action, WorkerContext, process_asset
from genblaze_s3.transfer import CopyConfig, FetchPolicy, SourceUnavailable, TransferError
from genblaze_s3.transfer.errors import map_source_error
from genblaze_s3.transfer.fetch import Fetcher
from genblaze_s3.transfer.models import CopyProgress, Progress
from tests.unit.ingest_fixtures import make_submission, worker_context

POLICY = FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A plain-HTTP server: what an https URL to the wrong port reaches."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _open_error(url: str, **fetcher_kw: Any) -> TransferError:
    with pytest.raises(TransferError) as info:
        Fetcher(POLICY, CopyConfig(), **fetcher_kw).open(url)
    return info.value


def test_https_to_a_plain_http_port_is_a_tls_failure_with_the_tls_reason(
    plain_http_port: int,
) -> None:
    err = _open_error(f"https://127.0.0.1:{plain_http_port}/pic.png?token=SECRET")
    assert err.code == "source_tls_failed" and err.retryable
    assert "WRONG_VERSION_NUMBER" in str(err) and "SECRET" not in str(err)


def test_refused_and_unresolvable_sources_say_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = _open_error(f"http://127.0.0.1:{closed}/a.png")
    assert refused.code == "source_refused" and "Connection refused" in str(refused)

    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    dns = _open_error("https://cdn.example.invalid/a.png", resolver=nxdomain)
    assert dns.code == "source_dns_failed" and "Name or service not known" in str(dns)


def test_lower_errors_keep_their_reason() -> None:
    import requests
    import urllib3.exceptions as u3

    reset = requests.exceptions.ConnectionError(
        u3.ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset"))
    )
    assert map_source_error(reset).code == "source_reset"
    timeout = requests.exceptions.ConnectTimeout("HTTPSConnectionPool(host='x'): timed out")
    assert map_source_error(timeout).code == "source_connect_timeout"


@pytest.fixture
def ctx() -> WorkerContext:
    return worker_context(
        max_attempts=2,  # fewer crashes allowed than retries: retries must not use them up
        max_retries=4,
        lease_ttl_ms=5000,
    )


def test_retries_are_not_crashed_deliveries_and_show_while_they_wait(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five TLS failures in a row: four retries, each visible on the asset (try n of 5,
    the last error, when), then `source_tls_failed` -- never `too_many_attempts`."""

    def copy_url(*a: Any, **kw: Any) -> Any:
        raise transfer.SourceTLSFailed("TLS handshake with the source failed (WRONG_VERSION)")

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    sub = make_submission(1)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id, (aid,) = sub.meta.job_id, sub.meta.asset_ids
    for n in range(1, 5):
        before = datetime.now(UTC)
        step = process_asset(ctx, job_id, aid)
        assert step.action is Action.RETRY
        rec = ctx.store.get_asset(job_id, aid)
        assert rec is not None and rec.retry is not None
        assert (rec.retry.attempt, rec.retry.of) == (n + 1, 5)
        assert rec.retry.last_error.code == "source_tls_failed"
        assert "WRONG_VERSION" in rec.retry.last_error.message
        assert rec.retry.next_try_at > before
        doc = json.loads(ctx.store.get_job_document(job_id) or "{}")
        assert doc["assets"][0]["retry"]["attempt"] == n + 1
    step = process_asset(ctx, job_id, aid)
    assert step.action is Action.DONE and step.failed == "source_tls_failed"
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.FAILED and rec.retry is None
    assert rec.error is not None and "gave up after 5 tries" in rec.error.message


def test_a_crash_after_retries_still_counts_only_crashes(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry, then deliveries that die: the poison guard counts the deaths in a row."""
    failures: list[BaseException] = [SourceUnavailable("503")]

    def copy_url(*a: Any, **kw: Any) -> Any:
        raise failures.pop(0) if failures else SystemExit("killed")

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    sub = make_submission(1)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id, (aid,) = sub.meta.job_id, sub.meta.asset_ids
    assert process_asset(ctx, job_id, aid).action is Action.RETRY
    for _ in range(2):
        with pytest.raises(SystemExit):
            process_asset(ctx, job_id, aid)
    step = process_asset(ctx, job_id, aid)
    assert step.failed == "too_many_attempts"


def test_progress_moves_while_a_block_fills() -> None:
    seen: list[CopyProgress] = []
    progress = Progress(seen.append, 0.0, 16 * 1024 * 1024)
    progress.filling(300_000)
    progress.filling(600_000)
    progress.add(8 * 1024 * 1024)  # the block is full: counted once
    assert [p.bytes_done for p in seen] == [300_000, 600_000, 8 * 1024 * 1024]


def test_watch_and_the_web_page_show_an_asset_that_is_retrying(ctx: WorkerContext) -> None:
    """The CLI's job view and the /ui job page print the retry (same words, one helper)."""
    from io import StringIO

    from genblaze_s3.api.ui.views import retry_text as _retry_text
    from genblaze_s3.cli.output import Output
    from genblaze_s3.cli.view import print_job
    from genblaze_s3.ingest.models import ErrorInfo, RetryInfo

    sub = make_submission(1)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id, (aid,) = sub.meta.job_id, sub.meta.asset_ids
    ctx.store.start_asset(job_id, aid, worker="w:1")
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    error = ErrorInfo(code="source_tls_failed", message="TLS handshake failed (WRONG_VERSION)")
    ctx.store.mark_retrying(
        job_id, aid, RetryInfo(attempt=2, of=6, last_error=error, next_try_at=soon)
    )
    job = ctx.store.get_job(job_id)
    terminal, pipe = StringIO(), StringIO()
    print_job(job, Output(tty=True, out=terminal))  # a person at a terminal
    print_job(job, Output(tty=False, out=pipe))  # a pipe: tab-separated records
    for text in (terminal.getvalue(), pipe.getvalue()):
        assert "retrying: try 2 of 6 in 2" in text, text
        assert "source_tls_failed: TLS handshake failed" in text
    asset_row = pipe.getvalue().splitlines()[1].split("\t")
    assert asset_row[:3] == ["asset", aid, "copying"] and asset_row[4] == "source_tls_failed"
    doc = json.loads(ctx.store.get_job_document(job_id) or "{}")
    assert _retry_text(doc["assets"][0]).startswith("retrying: try 2 of 6 in 2")
