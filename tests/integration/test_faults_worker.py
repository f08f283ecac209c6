"""Worker and broker faults with real `celery -A workers worker` processes.

Each row starts its own Redis (store + broker), the API and workers from the
Procfile, copies a slow 64 MiB source (HIERARCHICAL keys: the upload streams with
checkpoints), injects the fault mid-copy, and ends with the shared invariants:
the job ends once, bytes verified, one manifest, no multipart debris, no
stranded broker message.

Broker timing knobs the rows need (read by workers/celery_app.py):
GENBLAZE_VISIBILITY_TIMEOUT (seconds an unacked message stays invisible) and
GENBLAZE_UNACKED_RESTORE_INTERVAL (how often a worker looks for expired ones).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.local.services import SeaweedS3, start_redis
from genblaze_s3.settings import Settings
from tests.support.cdn import BigFile, CDNServer, write_big_file
from tests.support.helpers import wait_for
from tests.support.invariants import (
    assert_invariants,
    stranded_messages,
    wait_terminal,
)
from tests.support.rig import Rig, fault_rig
from workers.celery_app import transport_options

MiB = 1024 * 1024
SIZE = 64 * MiB
PART = 16 * MiB
LOG_DIR = Path(tempfile.gettempdir()) / "genblaze-fault-logs"
FAST_REDELIVERY = {"GENBLAZE_VISIBILITY_TIMEOUT": "8", "GENBLAZE_UNACKED_RESTORE_INTERVAL": "1"}
# The restore sweep's mutex expiry the workers set for FAST_REDELIVERY: a sweep cut short
# by a kill blocks every other sweep this long (kombu's default, before the fix: 300 s).
UNACKED_MUTEX_EXPIRE = transport_options(
    Settings(visibility_timeout=8, unacked_restore_interval=1)
)["unacked_mutex_expire"]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    return write_big_file(tmp_path_factory.mktemp("wbig") / "big.mp4", SIZE)


@pytest.fixture(scope="module")
def cdn(cdn: CDNServer, big: BigFile) -> CDNServer:
    cdn.add("/big.mp4", big.path, content_type="video/mp4")
    return cdn


def rig(
    seaweed: SeaweedS3,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    *,
    extra: dict[str, str] | None = None,
    **kwargs: Any,
) -> contextlib.AbstractContextManager[Rig]:
    """A fault rig whose logs are kept in LOG_DIR after the row."""
    return fault_rig(
        seaweed,
        s3,
        bucket,
        tmp_path,
        queue_prefix="genblaze-wf",
        extra_env=extra,
        keep_logs_in=LOG_DIR,
        **kwargs,
    )


def _pid(rec: Any) -> int:
    return int(rec.worker.rsplit(":", 1)[1])


def _check_success(r: Rig, job_id: str, digest: str, *, done_before: int | None = None) -> Any:
    view = wait_terminal(r.svc, [job_id], timeout=120)[job_id]
    assert view.state.value == "succeeded", view.model_dump_json()
    assert view.assets[0].sha256 == digest
    rec = r.asset(job_id)
    if done_before is not None:
        # resumed, not restarted: the finishing delivery uploaded what was left plus at
        # most the parts that were in flight (copy concurrency 4 + the one being read)
        assert rec.bytes_uploaded is not None
        assert rec.bytes_uploaded <= SIZE - done_before + 5 * PART, rec.bytes_uploaded
        assert rec.bytes_uploaded < SIZE, "everything was uploaded again"
    assert_invariants(r.svc, [job_id])
    return rec


@pytest.mark.slow
def test_sigkill_of_pool_child_mid_copy_resumes_once(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))
        rec = r.wait_bytes(job, int(SIZE * 0.5))
        victim = _pid(rec)
        assert victim not in (w.pid for w in r.stack.workers), "expected a pool child"
        os.kill(victim, signal.SIGKILL)
        rec = _check_success(r, job, big.sha256, done_before=rec.bytes_done)
        assert _pid(rec) != victim


@pytest.mark.slow
@pytest.mark.parametrize("mid_restore_sweep", [False, True], ids=["idle", "holding-restore-mutex"])
def test_sigkill_of_whole_worker_then_fresh_worker_finishes(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
    mid_restore_sweep: bool,
) -> None:
    """A host killed outright: a fresh worker finishes the copy, resuming, once.

    ``holding-restore-mutex``: the host dies inside kombu's unacked-restore sweep, so
    the sweep's mutex (``unacked_mutex``) stays held by nobody. kombu's default expiry
    (300 s) then kept the dead host's message out of the queue for 5 minutes: the
    sweeper finished the job, but the original message sat in ``unacked`` well after
    (a CI failure of the ``idle`` row). The worker bounds the mutex by the visibility
    timeout (workers/celery_app.py); the row recreates that moment deterministically.
    """
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=1, extra=FAST_REDELIVERY) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))
        rec = r.wait_bytes(job, int(SIZE * 0.5))
        w = r.stack.workers[0]
        if mid_restore_sweep:
            # What a sweep holds at that moment: kombu's lock, with the worker's expiry.
            admin = redis.Redis.from_url(r.redis.url)
            admin.set("unacked_mutex", "dead-host-token", ex=UNACKED_MUTEX_EXPIRE)
        os.killpg(w.pid, signal.SIGKILL)  # main process and pool child, no warning
        w.proc.wait(10)
        # Nobody is working on it: the dead worker's lease lapses (no renewal), and
        # the job is still unfinished, waiting for a worker.
        meta = r.svc.store.get_meta(job)
        assert meta is not None
        lease = keys.lease_key(job, meta.asset_ids[0])
        wait_for(lambda: not r.svc.store.redis.exists(lease), 30, what="the lease to lapse")
        assert r.svc.store.job_state(job).value == "running"
        assert r.asset(job).state.value not in ("stored", "deduplicated", "failed")
        r.stack.add_worker("fresh")
        _check_success(r, job, big.sha256, done_before=rec.bytes_done)


@pytest.mark.slow
def test_sigterm_warm_shutdown_finishes_the_copy_once(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=1) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))
        r.wait_bytes(job, int(SIZE * 0.3))
        w = r.stack.workers[0]
        os.kill(w.pid, signal.SIGTERM)  # what a process manager sends on redeploy
        assert w.proc.wait(60) == 0, w.log()[-2000:]  # exits once its copy is done
        rec = r.asset(job)
        assert rec.state.value == "stored", rec  # finished before exiting, not abandoned
        r.stack.add_worker("after-redeploy")  # runs finalize (queued while shutting down)
        rec = _check_success(r, job, big.sha256)
        assert rec.bytes_uploaded == SIZE  # finished by the same delivery, uploaded once


@pytest.mark.slow
def test_source_changed_between_deliveries_restarts_cleanly(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """Killed mid-copy, then the CDN object changes (new ETag): the resumed delivery
    must not stitch old parts to new bytes; it restarts and stores the new object."""
    other = tmp_path / "other.mp4"
    h = hashlib.sha256()
    with open(other, "wb") as f:
        block = os.urandom(MiB)
        for _ in range(SIZE // MiB // 2):
            h.update(block)
            f.write(block)
    cdn.add("/changing.mp4", big.path, content_type="video/mp4")
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2) as r:
        job = r.submit(cdn.url("/changing.mp4", mode="slow", rate=12 * MiB))
        rec = r.wait_bytes(job, int(SIZE * 0.5))
        os.kill(_pid(rec), signal.SIGKILL)
        cdn.add("/changing.mp4", other, content_type="video/mp4")  # new bytes, new ETag
        _check_success(r, job, h.hexdigest())


class _Forwarder:
    """Forwards to the CDN until `expired` is set, then answers 403 (URL expired).

    `drop_range=True` plays a CDN that ignores Range (always 200, whole body).
    """

    def __init__(self, upstream: str, *, drop_range: bool = False) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        outer = self
        self.expired = False

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if outer.expired:
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                keep = () if drop_range else ("range", "if-range")
                fwd = {k: v for k, v in self.headers.items() if k.lower() in keep}
                with requests.get(upstream, headers=fwd, stream=True, timeout=30) as up:
                    self.send_response(up.status_code)
                    for k, v in up.headers.items():
                        if k.lower() not in ("connection", "transfer-encoding"):
                            self.send_header(k, v)
                    self.end_headers()
                    with contextlib.suppress(OSError):
                        for chunk in up.raw.stream(256 * 1024, decode_content=False):
                            if outer.expired:
                                break
                            self.wfile.write(chunk)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mp4"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.slow
def test_source_expiring_on_resume_fails_and_aborts_the_upload(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
) -> None:
    """Killed mid-copy, then the presigned URL expires: the resuming delivery gets 403,
    fails `source_expired` without a retry loop, and aborts the checkpointed upload."""
    src = _Forwarder(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))
    try:
        with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2) as r:
            job = r.submit(src.url)
            rec = r.wait_bytes(job, int(SIZE * 0.5))
            assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")
            src.expired = True
            os.kill(_pid(rec), signal.SIGKILL)
            view = wait_terminal(r.svc, [job], timeout=120)[job]
            assert view.state.value == "failed", view.model_dump_json()
            assert view.assets[0].error is not None
            assert view.assets[0].error.code == "source_expired", view.assets[0].error
            assert_invariants(r.svc, [job])  # includes: no multipart upload left
    finally:
        src.close()


@pytest.mark.slow
def test_resume_against_a_source_that_ignores_range(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """The resuming delivery asks for a range and gets the whole body (200): the object
    must still be exactly right."""
    src = _Forwarder(cdn.url("/big.mp4", mode="slow", rate=12 * MiB), drop_range=True)
    try:
        with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2) as r:
            job = r.submit(src.url)
            rec = r.wait_bytes(job, int(SIZE * 0.5))
            os.kill(_pid(rec), signal.SIGKILL)
            _check_success(r, job, big.sha256)
    finally:
        src.close()


def _received_twice(logs: str) -> bool:
    ids = re.findall(r"Task genblaze\.ingest_asset\[([0-9a-f-]+)\] received", logs)
    return any(ids.count(i) > 1 for i in set(ids))


@pytest.mark.slow
def test_task_longer_than_visibility_timeout_has_no_second_side_effect(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    env = {**FAST_REDELIVERY, "GENBLAZE_VISIBILITY_TIMEOUT": "3"}
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2, extra=env) as r:
        cdn.clear_requests()
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=5 * MiB))  # ~13 s > 3 s
        rec = _check_success(r, job, big.sha256)
        assert _received_twice(r.logs()), "the message was never redelivered: row not exercised"
        # Slices continue with Range: every byte was read from the source once.
        assert cdn.bytes_sent("/big.mp4") == SIZE, cdn.requests
        assert rec.bytes_uploaded == SIZE


@pytest.mark.slow
def test_broker_connection_killed_mid_task_finishes_once(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2, extra=FAST_REDELIVERY) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))
        rec = r.wait_bytes(job, int(SIZE * 0.4))
        admin = redis.Redis.from_url(r.redis.url)
        killed = admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        victim = _pid(rec)
        final = _check_success(r, job, big.sha256)
        if _pid(final) == victim:
            # the delivery survived the reconnect and finished: nothing ran twice
            assert final.bytes_uploaded == SIZE
        else:  # it was canceled and redelivered: the new delivery resumed
            assert final.bytes_uploaded is not None
            assert final.bytes_uploaded <= SIZE - rec.bytes_done + 5 * PART, final.bytes_uploaded


@pytest.mark.slow
def test_redis_restart_keeps_accepted_jobs_and_api_answers_503(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    small = os.urandom(2 * MiB)
    for i in range(4):
        cdn.add(f"/rr{i}.bin", small)
    with rig(
        seaweed, s3_client, bucket, tmp_path, n_workers=1, extra=FAST_REDELIVERY, appendonly=True
    ) as r:
        jobs = [r.submit(cdn.url("/big.mp4", mode="slow", rate=12 * MiB))]
        jobs += [
            r.submit(cdn.url(f"/rr{i}.bin", mode="slow", rate=MiB), strategy="content_addressable")
            for i in range(4)
        ]
        r.wait_bytes(jobs[0], int(SIZE * 0.3))
        old = r.redis
        assert old.process is not None
        os.killpg(old.process.pid, signal.SIGKILL)  # no shutdown save: only the AOF survives
        old.process.wait(10)
        old.process = None
        api, h = r.stack.api_url, {"Authorization": f"Bearer {r.stack.tokens['acme']}"}
        down = [
            httpx.get(f"{api}/v1/jobs/{jobs[1]}", headers=h, timeout=15),
            httpx.post(
                f"{api}/v1/jobs",
                headers=h,
                timeout=15,
                json={
                    "assets": [{"url": cdn.url("/rr0.bin")}],
                    "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
                },
            ),
            httpx.delete(f"{api}/v1/jobs/{jobs[1]}", headers=h, timeout=15),
            httpx.get(f"{api}/v1/jobs/{jobs[1]}/events", headers=h, timeout=15),
            httpx.get(f"{api}/healthz", timeout=15),
        ]
        assert [d.status_code for d in down] == [503] * 5, [d.text for d in down]
        assert r.stack.api is not None and "Traceback" not in r.stack.api.log()
        time.sleep(1)
        r.redis = start_redis(port=old.port, appendonly=True, data_dir=old.data_dir)
        wait_terminal(r.svc, jobs, timeout=150)
        for j in jobs:
            view = r.svc.store.get_job(j)
            assert view is not None and view.state.value == "succeeded", view
        assert_invariants(r.svc, jobs)


@contextlib.contextmanager
def assassin(r: Rig, job: str, index: int = 0) -> Iterator[list[int]]:
    """SIGKILL whichever process picks asset `index` up, on every delivery; yields the
    pids killed so far."""
    killed: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            rec = r.asset(job, index)
            if rec is not None and rec.worker and rec.state.value == "copying":
                pid = _pid(rec)
                if pid not in killed:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.02)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield killed
    finally:
        stop.set()
        t.join(5)


def test_poison_task_fails_after_bounded_attempts(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
) -> None:
    """The asset's process dies on every delivery: Redis counts deliveries and gives up."""
    max_attempts = 3
    env = {
        **FAST_REDELIVERY,
        "GENBLAZE_MAX_ATTEMPTS": str(max_attempts),
        "GENBLAZE_LEASE_TTL_MS": "1500",
    }
    cdn.add("/poison.bin", os.urandom(8 * MiB))
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2, extra=env) as r:
        job = r.submit(cdn.url("/poison.bin", mode="slow", rate=MiB))
        with assassin(r, job) as killed:
            view = wait_terminal(r.svc, [job], timeout=120)[job]
        assert view.state.value == "failed", view.model_dump_json()
        assert view.assets[0].error is not None
        assert view.assets[0].error.code == "too_many_attempts", view.assets[0].error
        assert len(killed) <= max_attempts, f"{len(killed)} deliveries for max {max_attempts}"
        assert_invariants(r.svc, [job])
        # No more deliveries can come: the broker holds no message for the job, neither
        # queued nor unacked (a late-ack task's message stays unacked until it returns,
        # and an unacked message is what the visibility timeout would redeliver).
        broker = redis.Redis.from_url(r.stack.broker_url)
        assert stranded_messages(broker, [job]) == [], "still redelivering"


def test_a_poison_asset_in_a_chunk_fails_alone_and_its_chunk_mates_land(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
) -> None:
    """40 assets travel as chunks of 4; the first asset of the first chunk kills its
    process on every delivery. Redelivered chunks skip what is done, the poison asset
    fails after the bounded attempts, and every other asset lands exactly once."""
    max_attempts = 3
    env = {**FAST_REDELIVERY, "GENBLAZE_MAX_ATTEMPTS": str(max_attempts)}
    env["GENBLAZE_LEASE_TTL_MS"] = "1500"
    cdn.add("/chunk-poison.bin", os.urandom(8 * MiB))
    blobs = [os.urandom(MiB)] + [os.urandom(3000 + i) for i in range(38)]
    urls = [cdn.add(f"/chunk-mate-{i}.bin", b) for i, b in enumerate(blobs)]
    # The poison's chunk mate is slow too, so it is surely mid-copy beside the poison
    # (chunk threads) when the first kill lands.
    urls[0] = cdn.url("/chunk-mate-0.bin", mode="slow", rate=512 * 1024)
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=2, extra=env) as r:
        job = r.submit(cdn.url("/chunk-poison.bin", mode="slow", rate=MiB), more=tuple(urls))
        with assassin(r, job) as killed:
            view = wait_terminal(r.svc, [job], timeout=120)[job]
        assert "genblaze.ingest_assets" in r.logs()  # it really travelled in chunks
        assert view.state.value == "failed", view.model_dump_json()
        poison = view.assets[0]
        assert poison.error is not None and poison.error.code == "too_many_attempts"
        assert len(killed) <= max_attempts, f"{len(killed)} deliveries for max {max_attempts}"
        # Landed once each: stored, or (a small mate whose PUT landed just before a kill
        # took its process) found already there by its next delivery: deduplicated.
        landed = {"stored", "deduplicated"}
        stored = {a.sha256 for a in view.assets[1:] if a.state.value in landed}
        others = [
            (i, a.state.value, a.error.code if a.error else None, a.attempts)
            for i, a in enumerate(view.assets[1:])
            if a.state.value not in landed
        ]
        assert stored == {hashlib.sha256(b).hexdigest() for b in blobs}, others
        # The poison's chunk mate ran beside it (threads) only on the first delivery;
        # redelivered, the chunk runs in turn, so the mate is not killed again and again.
        # (Its delivery count as its stored record shows it: the Redis counter itself is
        # dropped once the asset is stored.)
        meta = r.svc.store.get_meta(job)
        assert meta is not None
        mate = next(a for a in view.assets if a.asset_id == meta.asset_ids[1])
        assert mate.state.value == "stored" and 1 <= mate.attempts <= 2, mate
        assert_invariants(r.svc, [job])


def test_invariants_see_a_stranded_broker_message(tmp_path: Path) -> None:
    """The broker check is not vacuous: a queued task for a job is found (body decoded)."""
    from genblaze_s3.ingest.submit.enqueue import INGEST_ASSET, CelerySender
    from tests.support.invariants import stranded_messages

    server = start_redis(data_dir=tmp_path / "r")
    try:
        sender = CelerySender(server.url)
        try:
            sender.send(INGEST_ASSET, ["feedface" * 4, "asset-1"], "genblaze-probe")
        finally:
            sender.close()
        found = stranded_messages(redis.Redis.from_url(server.url), ["feedface" * 4])
        assert found, "a queued message for the job was not seen"
        assert not stranded_messages(redis.Redis.from_url(server.url), ["0" * 32])
    finally:
        server.stop()
