"""Bounded deliveries (issue 11), with real workers started as the Procfile starts them.

No job waits on a dead host, a broker's clock or a Redis blip: each row injects the
fault with the *default* settings of the Procfile (lease TTL, slice, visibility
timeout, sweeper) unless it names one, and checks what an operator would: the job's
state, the bytes in the bucket, zero multipart uploads, the worker still alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.local.services import SeaweedS3, start_redis
from genblaze_s3.settings import DEFAULT_SLICE_SECONDS
from tests.support.cdn import BigFile, CDNServer, write_big_file
from tests.support.invariants import (
    sha256_of_object,
    wait_terminal,
)
from tests.support.rig import Rig, fault_rig
from tests.support.workers import AMQP_URL, start_worker

MiB = 1024 * 1024
SIZE = 256 * MiB
# The Procfile's defaults: start_stack shortens the lease for its other users; not here.
DEFAULTS = {"GENBLAZE_LEASE_TTL_MS": "30000"}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    return write_big_file(tmp_path_factory.mktemp("bounded") / "big.mp4", SIZE)


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
    """A fault rig with the Procfile's defaults (its concurrency and lease TTL)."""
    return fault_rig(
        seaweed,
        s3,
        bucket,
        tmp_path,
        queue_prefix="genblaze-bounded",
        concurrency=2,  # the Procfile's default
        extra_env={**DEFAULTS, **(extra or {})},
        **kwargs,
    )


def _pid(rec: Any) -> int:
    return int(rec.worker.rsplit(":", 1)[1])


def _assert_stored_once(r: Rig, job_id: str, digest: str) -> Any:
    view = r.svc.store.get_job(job_id)
    assert view is not None and view.state.value == "succeeded", view
    a = view.assets[0]
    assert a.sha256 == digest and sha256_of_object(r.svc.s3, r.bucket, a.key) == digest
    assert view.manifest.key
    versions = r.svc.s3.list_object_versions(Bucket=r.bucket, Prefix=view.manifest.key)
    assert len(versions.get("Versions", [])) == 1  # finalized once
    assert r.uploads() == []  # zero multipart uploads left
    return view


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_whole_worker_killed_mid_copy_a_fresh_worker_finishes_within_minutes(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
    broker: str,
) -> None:
    """SIGKILL of the whole worker group 30% into 256 MiB (host loss, OOM kill of the main
    process, spot preemption), a fresh worker 5 s later: done within 240 s of its start,
    and the CDN served at most the object plus one slice."""
    rate = 12 * MiB
    with rig(
        seaweed, s3_client, bucket, tmp_path, broker_url=AMQP_URL if broker == "rabbitmq" else None
    ) as r:
        cdn.clear_requests()
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=rate))
        r.wait_bytes(job, int(SIZE * 0.3))
        w = r.stack.workers[0]
        os.killpg(w.pid, signal.SIGKILL)  # main process and pool children, no warning
        w.proc.wait(10)
        time.sleep(5)  # the row's own timing: the replacement arrives 5 s later
        started = time.monotonic()
        r.stack.add_worker("fresh")
        wait_terminal(r.svc, [job], timeout=240)
        took = time.monotonic() - started
        assert took <= 240
        _assert_stored_once(r, job, big.sha256)
        served = cdn.bytes_sent("/big.mp4")
        assert served <= SIZE + rate * DEFAULT_SLICE_SECONDS, (served, took)


def _rabbit_env(expr: str) -> str:
    out = subprocess.run(
        ["rabbitmqctl", "eval", expr], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


@contextlib.contextmanager
def rabbit_consumer_timeout(ms: int) -> Iterator[None]:
    """Lower RabbitMQ's consumer_timeout for channels opened from now on; reset after."""
    before = _rabbit_env("application:get_env(rabbit, consumer_timeout).")
    _rabbit_env(f"application:set_env(rabbit, consumer_timeout, {ms}).")
    try:
        yield
    finally:
        if before.startswith("{ok,"):
            _rabbit_env(f"application:set_env(rabbit, consumer_timeout, {before[4:-1]}).")
        else:
            _rabbit_env("application:unset_env(rabbit, consumer_timeout).")


@pytest.mark.slow
def test_a_copy_longer_than_rabbitmqs_consumer_timeout_succeeds_once(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """consumer_timeout 20 s, a 256 MiB copy at 4 MB/s (~64 s): no delivery lives that
    long, so RabbitMQ never closes the channel and the worker never dies."""
    with (
        rabbit_consumer_timeout(20_000),
        rig(seaweed, s3_client, bucket, tmp_path, broker_url=AMQP_URL) as r,
    ):
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=4_000_000))
        wait_terminal(r.svc, [job], timeout=180)
        _assert_stored_once(r, job, big.sha256)
        assert r.asset(job).bytes_uploaded == SIZE  # every part once
        assert r.stack.workers[0].proc.poll() is None, "the worker died"
        assert "PreconditionFailed" not in r.logs()
        received = re.findall(r"genblaze\.ingest_asset\[[0-9a-f-]+\] received", r.logs())
        assert len(received) >= 2, "not sliced: the row was not exercised"


@pytest.mark.slow
def test_redis_killed_mid_copy_the_same_worker_finishes_after_it_returns(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """Redis (store and broker) SIGKILLed mid-copy, back 5 s later on its port (AOF):
    the same worker process survives (kombu: see workers/celery_app.py) and finishes."""
    with rig(seaweed, s3_client, bucket, tmp_path, appendonly=True) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=16 * MiB))
        r.wait_bytes(job, int(SIZE * 0.3))
        old = r.redis
        assert old.process is not None
        os.killpg(old.process.pid, signal.SIGKILL)
        old.process.wait(10)
        old.process = None
        time.sleep(5)  # the row's own timing: Redis is back 5 s later
        r.redis = start_redis(port=old.port, appendonly=True, data_dir=old.data_dir)
        wait_terminal(r.svc, [job], timeout=180)
        _assert_stored_once(r, job, big.sha256)
        w = r.stack.workers[0]
        assert w.proc.poll() is None, "the worker's main process died:\n" + w.log()[-3000:]
        assert "Unrecoverable error" not in w.log()


def test_failures_for_good_and_cancels_leave_zero_uploads(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """A source declaring 36 MiB that sends 20 MiB, with one retry (HIERARCHICAL, and CAS
    with the sha256 given), ends source_truncated; a canceled copy ends canceled; neither
    leaves a multipart upload."""
    data = big.path.read_bytes()[: 36 * MiB]
    digest = hashlib.sha256(data).hexdigest()
    cdn.add("/short.mp4", data, content_type="video/mp4")
    truncated = cdn.url("/short.mp4", mode="truncate", at=20 * MiB)
    with rig(
        seaweed, s3_client, bucket, tmp_path, extra={"GENBLAZE_MAX_RETRIES": "1"}, n_workers=2
    ) as r:
        jobs = [
            r.submit(truncated),
            r.submit(truncated, strategy="content_addressable", sha256=digest),
        ]
        slow = r.submit(cdn.url("/big.mp4", mode="slow", rate=16 * MiB))
        r.wait_bytes(slow, 40 * MiB)
        assert httpx.delete(f"{r.stack.api_url}/v1/jobs/{slow}", headers=r.auth).status_code < 300
        views = wait_terminal(r.svc, [*jobs, slow], timeout=120)
        for j in jobs:
            a = views[j].assets[0]
            assert views[j].state.value == "failed" and a.error is not None, views[j]
            assert a.error.code == "source_truncated", a.error
        assert views[slow].state.value == "canceled"
        deadline = time.monotonic() + 30  # the canceled copy aborts as it stops
        while r.uploads() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.uploads() == []


def test_a_worker_with_another_source_key_fails_the_asset_in_one_delivery(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
) -> None:
    cdn.add("/k.png", os.urandom(4096), content_type="image/png")
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=0) as r:
        env = {**r.stack.env, "GENBLAZE_SOURCE_KEY": "b3RoZXIta2V5LW5vdC10aGUtc3VibWl0dGVycy0wMDA="}
        r.stack.workers.append(start_worker(env, tmp_path / "other-key.log", name="otherkey"))
        job = r.submit(cdn.url("/k.png"))
        view = wait_terminal(r.svc, [job], timeout=60)[job]
        assert view.state.value == "failed", view
        err = view.assets[0].error
        assert err is not None and err.code == "source_unreadable", err
        assert "GENBLAZE_SOURCE_KEY" in err.message
        received = re.findall(r"genblaze\.ingest_asset\[[0-9a-f-]+\] received", r.logs())
        assert len(received) == 1, received  # one delivery, no retry loop


def _delete_broker_messages(client: redis.Redis, job_id: str) -> int:
    """What an operator's hand does: drop every queued or unacked message of the job."""
    n = 0
    for k in client.scan_iter(count=1000):
        t = client.type(k)
        if t == b"list":
            for item in client.lrange(k, 0, -1):
                if job_id.encode() in item or _body_has(item, job_id):
                    n += client.lrem(k, 0, item)
        elif t == b"hash" and k == b"unacked":
            for tag, item in client.hgetall(k).items():
                if _body_has(item, job_id):
                    n += client.hdel(k, tag)
                    client.zrem("unacked_index", tag)
    return n


def _body_has(item: bytes, job_id: str) -> bool:
    import base64
    import json

    with contextlib.suppress(Exception):
        doc = json.loads(item)
        msg = doc[0] if isinstance(doc, list) else doc
        return job_id in base64.b64decode(msg["body"]).decode(errors="replace")
    return False


@pytest.mark.slow
def test_the_sweeper_re_enqueues_an_asset_whose_message_was_lost_once(
    seaweed: SeaweedS3,
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    cdn: CDNServer,
    big: BigFile,
) -> None:
    """The copying worker killed and its message deleted by hand (no broker will ever
    bring it back): the sweeper re-enqueues the asset and the job succeeds; the two
    surviving workers both run a sweeper, and the work is done once. The row names
    short sweeper and lease settings so it runs in seconds, not minutes."""
    env = {
        "GENBLAZE_SWEEP_INTERVAL": "1",
        "GENBLAZE_SWEEP_GRACE": "6",
        "GENBLAZE_LEASE_TTL_MS": "3000",
    }
    with rig(seaweed, s3_client, bucket, tmp_path, n_workers=3, extra=env) as r:
        job = r.submit(cdn.url("/big.mp4", mode="slow", rate=32 * MiB))
        rec = r.wait_bytes(job, int(SIZE * 0.3))
        victim = next(w for w in r.stack.workers if _pid(rec) in (w.pid, *w.child_pids()))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.proc.wait(10)
        r.stack.workers.remove(victim)
        assert _delete_broker_messages(redis.Redis.from_url(r.redis.url), job) >= 1
        wait_terminal(r.svc, [job], timeout=120)
        _assert_stored_once(r, job, big.sha256)
        stats = r.svc.store.stats()
        assert stats.get("swept_assets_total") == 1, stats
        assert not r.svc.store.redis.zcard(keys.inflight_key())
        victim.stop()
