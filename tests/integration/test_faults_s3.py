"""S3 faults through the queue: workers write to SeaweedFS via a fault-injecting proxy.

The proxy is tests/support/s3proxy.py's S3FaultProxy, extended here with the
faults that need more than a status code: a 200 answer carrying an <Error> body
(S3 does this on CompleteMultipartUpload), a response lost *after* the upstream
succeeded (the retry then meets NoSuchUpload), and faults chosen by key (the
manifest's PutObject). The job names the proxy as its endpoint (allow-listed);
the invariants read SeaweedFS directly.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from genblaze_s3.local.services import SeaweedS3
from tests.support import s3proxy
from tests.support.cdn import CDNServer
from tests.support.helpers import wait_for
from tests.support.invariants import Services, assert_invariants, wait_broker_clear, wait_terminal
from tests.support.workers import QueueStack, StartStack

MiB = 1024 * 1024
_ERROR_200 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


@dataclass
class KeyFault:
    operation: str
    kind: str  # "error200" | "lost" | "status"
    times: int
    key_contains: str = ""
    status: int = 503
    code: str = "SlowDown"


class _Handler(s3proxy._ProxyHandler):
    def _handle(self) -> None:
        st = self.server.state
        op, part = s3proxy.s3_operation(self.command, self.path)
        fault = None
        with st.lock:
            for f in st.key_faults:  # type: ignore[attr-defined]
                if f.times > 0 and f.operation == op and f.key_contains in self.path:
                    f.times -= 1
                    fault = f
                    break
        if fault is None:
            super()._handle()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if fault.kind == "status":
            payload = _ERROR_200.replace(b"InternalError", fault.code.encode())
            status = fault.status
        elif fault.kind == "error200":
            payload, status = _ERROR_200, 200
        else:  # "lost": the upstream does the work, the client never hears of it
            conn = http.client.HTTPConnection(st.upstream_host, st.upstream_port, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
            with st.lock:
                st.log.append(s3proxy.ProxyLogEntry(op, part, -status, len(body)))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            return
        with st.lock:
            st.log.append(s3proxy.ProxyLogEntry(op, part, status, len(body)))
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815


class _Server(s3proxy._ProxyServer):
    def __init__(self, state: Any) -> None:
        self.state = state
        ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), _Handler)


class FaultProxy(s3proxy.S3FaultProxy):
    """S3FaultProxy plus key-selected, 200-error and lost-response faults."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._state.key_faults = []  # type: ignore[attr-defined]

    def __enter__(self) -> FaultProxy:
        import threading

        self._server = _Server(self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def fail_key(
        self,
        operation: str,
        kind: str,
        *,
        times: int = 1,
        key_contains: str = "",
        status: int = 503,
        code: str = "SlowDown",
    ) -> None:
        with self._state.lock:
            self._state.key_faults.append(  # type: ignore[attr-defined]
                KeyFault(operation, kind, times, key_contains, status, code)
            )

    def reset(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
            self._state.key_faults.clear()  # type: ignore[attr-defined]
            self._state.log.clear()


@pytest.fixture(scope="module")
def proxy(seaweed: SeaweedS3) -> Iterator[FaultProxy]:
    with FaultProxy(seaweed.endpoint_url) as p:
        yield p


@pytest.fixture(scope="module")
def s3_stack(start_module_stack: StartStack, seaweed: SeaweedS3, proxy: FaultProxy) -> QueueStack:
    return start_module_stack(
        queue="genblaze-s3f",
        n_workers=1,
        concurrency=2,
        extra_env={"GENBLAZE_ALLOWED_ENDPOINTS": f"{seaweed.endpoint_url},{proxy.endpoint_url}"},
    )


@pytest.fixture
def fresh(proxy: FaultProxy) -> Iterator[FaultProxy]:
    proxy.reset()
    yield proxy
    proxy.reset()


def _submit(
    stack: QueueStack,
    proxy: FaultProxy,
    bucket: str,
    urls: list[str],
    lock: bool = False,
    strategy: str = "content_addressable",
) -> str:
    body: dict[str, Any] = {
        "assets": [{"url": u} for u in urls],
        "destination": {
            "bucket": bucket,
            "endpoint_url": proxy.endpoint_url,
            "key_strategy": strategy,
        },
    }
    if lock:
        until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        body["manifest_lock"] = {"mode": "GOVERNANCE", "retain_until": until.isoformat()}
    r = httpx.post(
        f"{stack.api_url}/v1/jobs",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {stack.tokens['acme']}"},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _run(
    stack: QueueStack,
    proxy: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3: Any,
    name: str,
    size: int = 40 * MiB,
    lock: bool = False,
    expect: str = "succeeded",
) -> Any:
    url = cdn.add(f"/{name}.bin", os.urandom(size))
    job = _submit(stack, proxy, bucket, [url], lock=lock)
    svc = Services(redis_url=stack.redis_url, s3=s3)
    view = wait_terminal(svc, [job], timeout=120)[job]
    assert view.state.value == expect, view.model_dump_json()
    facts = assert_invariants(svc, [job])
    return job, view, facts[job]


def _ops(proxy: FaultProxy, op: str) -> list[int]:
    return [e.status for e in proxy.log if e.operation == op]


@pytest.mark.parametrize("status,code", [(503, "SlowDown"), (500, "InternalError")])
def test_upload_part_5xx_is_retried_to_a_correct_object(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
    status: int,
    code: str,
) -> None:
    fresh.fail("UploadPart", part=2, status=status, code=code, times=2)
    _run(s3_stack, fresh, cdn, bucket, s3_client, f"p5xx{status}")
    assert _ops(fresh, "UploadPart").count(status) == 2


def test_connection_reset_mid_part_is_retried(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
) -> None:
    fresh.fail("UploadPart", part=1, kind="reset", times=1)
    _run(s3_stack, fresh, cdn, bucket, s3_client, "preset")
    assert 0 in _ops(fresh, "UploadPart")


def test_error_body_with_200_on_complete_is_retried(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
) -> None:
    fresh.fail_key("CompleteMultipartUpload", "error200", times=1)
    _run(s3_stack, fresh, cdn, bucket, s3_client, "c200")
    assert _ops(fresh, "CompleteMultipartUpload")[0] == 200
    assert len(_ops(fresh, "CompleteMultipartUpload")) >= 2


@pytest.mark.parametrize("server", ["forgets_the_upload", "idempotent_complete"])
def test_lost_complete_response_is_resolved_by_head_compare(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
    server: str,
) -> None:
    fresh.fail_key("CompleteMultipartUpload", "lost", times=1)
    if server == "forgets_the_upload":
        # AWS S3 answers a repeated Complete with NoSuchUpload; SeaweedFS answers 200 again,
        # so the proxy plays S3 for the retry.
        fresh.fail_key(
            "CompleteMultipartUpload", "status", times=1, status=404, code="NoSuchUpload"
        )
    _run(s3_stack, fresh, cdn, bucket, s3_client, f"clost-{server}")
    completes = _ops(fresh, "CompleteMultipartUpload")
    assert completes[0] == -200, completes  # upstream completed, the answer was dropped
    if server == "forgets_the_upload":
        assert completes[1] == 404, completes  # the retry met NoSuchUpload, then HEAD compared
        assert "HeadObject" in [e.operation for e in fresh.log]


def test_permanent_upload_part_error_fails_and_aborts(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
) -> None:
    fresh.fail("UploadPart", part=2, status=403, code="AccessDenied", times=1000)
    job, view, _ = _run(s3_stack, fresh, cdn, bucket, s3_client, "p403", expect="failed")
    assert view.assets[0].error.code == "storage_error", view.assets[0].error
    assert "AbortMultipartUpload" in [e.operation for e in fresh.log]


def test_manifest_put_failing_is_retried_to_one_locked_version(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    locked_bucket: str,
    s3_client: Any,
) -> None:
    fresh.fail_key("PutObject", "status", times=4, key_contains="/manifests/", status=503)
    _, view, facts = _run(
        s3_stack, fresh, cdn, locked_bucket, s3_client, "mput", size=MiB, lock=True
    )
    puts = [e.status for e in fresh.log if e.operation == "PutObject"]
    assert puts.count(503) == 4, puts
    assert view.manifest.locked_until is not None


def test_object_lock_second_finalize_adds_no_version_and_locked_version_cannot_be_deleted(
    s3_stack: QueueStack,
    fresh: FaultProxy,
    cdn: CDNServer,
    locked_bucket: str,
    s3_client: Any,
    seaweed: SeaweedS3,
) -> None:
    import redis
    from botocore.exceptions import ClientError

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.ingest.finalize.manifest import write_manifest
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.submit.enqueue import FINALIZE_JOB, CelerySender

    job, view, facts = _run(
        s3_stack, fresh, cdn, locked_bucket, s3_client, "lock2", size=MiB, lock=True
    )
    key = view.manifest.key

    def versions() -> list[dict]:
        resp = s3_client.list_object_versions(Bucket=locked_bucket, Prefix=key)
        return [v for v in resp.get("Versions", []) if v["Key"] == key]

    first = versions()
    assert len(first) == 1
    # 1. a redelivered finalize task for the finished job: wait until both ran to the
    # end (the worker logs each success; late acks clear the broker after the return)
    finalized = re.compile(rf"{FINALIZE_JOB}\[[0-9a-f-]+\] succeeded")
    n_before = len(finalized.findall(s3_stack.worker_logs()))
    sender = CelerySender(s3_stack.broker_url)
    try:
        sender.send(FINALIZE_JOB, [job], s3_stack.queue)
        sender.send(FINALIZE_JOB, [job, 3], s3_stack.queue)
    finally:
        sender.close()
    wait_for(
        lambda: len(finalized.findall(s3_stack.worker_logs())) >= n_before + 2,
        60,
        what="both finalize deliveries to succeed",
    )
    wait_broker_clear(s3_stack.broker_url, [job])
    # 2. a finalize that got past the state check (raced) writes again in-process
    store = StatusStore(redis.Redis.from_url(s3_stack.redis_url))
    meta = store.get_meta(job)
    assert meta is not None
    backend = S3StorageBackend(
        locked_bucket,
        endpoint_url=seaweed.endpoint_url,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        preflight=False,
    )
    assets = {a.asset_id: a for a in store.get_assets(job, meta.asset_ids)}
    info = write_manifest(backend, meta, store.payload(job) or "", assets)
    assert info.key == key
    assert versions() == first, "a second finalize created another manifest version"
    # 3. the locked version cannot be deleted (GOVERNANCE, no bypass)
    with pytest.raises(ClientError) as exc:
        s3_client.delete_object(Bucket=locked_bucket, Key=key, VersionId=first[0]["VersionId"])
    err = exc.value.response["Error"]
    assert err["Code"] in ("AccessDenied", "ObjectLocked"), err
    assert versions() == first
    svc = Services(redis_url=s3_stack.redis_url, s3=s3_client)
    assert svc.store.job_state(job).value == "succeeded"
    assert_invariants(svc, [job])
