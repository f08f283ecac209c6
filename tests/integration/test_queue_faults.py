"""A worker killed mid-copy of a 256 MiB asset: another delivery resumes and finishes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from genblaze_core.storage.base import KeyStrategy

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.ingest.submit.submission import run_from_urls
from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, no_multipart_uploads, policy_for, wait_for
from tests.support.workers import QueueStack, start_stack

SIZE = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    import hashlib

    path = tmp_path_factory.mktemp("big") / "big.mp4"
    h = hashlib.sha256()
    with open(path, "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(SIZE // len(block)):
            chunk = block[:-8] + i.to_bytes(8, "big")
            h.update(chunk)
            f.write(chunk)
    yield path, h.hexdigest()
    path.unlink()


@pytest.fixture
def kill_stack(
    module_redis: EmbeddedRedis, seaweed: SeaweedS3, tmp_path: Path
) -> Iterator[QueueStack]:
    s = start_stack(
        redis_url=module_redis.url,
        seaweed=seaweed,
        log_dir=tmp_path,
        n_workers=2,
        api=False,
        queue="genblaze-kill",
    )
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [KeyStrategy.HIERARCHICAL, KeyStrategy.CONTENT_ADDRESSABLE])
def test_killed_worker_resumes_upload(
    kill_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
    big_file: tuple[Path, str],
    strategy: KeyStrategy,
) -> None:
    path, digest = big_file
    url = cdn.add("/big.mp4", path, content_type="video/mp4")
    # HIERARCHICAL: the key is known before the hash, so the upload streams with
    # checkpoints. CAS (default cas_mode="auto"): a hash pass, then the same streamed,
    # checkpointed upload to the CAS key; progress counts each pass for half.
    two_pass = strategy == KeyStrategy.CONTENT_ADDRESSABLE
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=kill_stack.redis_url,
        key_strategy=strategy,
        queue=kill_stack.queue,
        destination_policy=policy_for(seaweed),
    )
    from genblaze_core.models.manifest import Manifest

    run = run_from_urls(
        [(cdn.url("/big.mp4", mode="slow", rate=64 * 1024 * 1024), "video/mp4", None)]
    )
    sink.write_run(run, Manifest.from_run(run))
    job = sink.last_job
    assert job is not None and url
    asset_id = run.steps[0].assets[0].asset_id
    # Kill ~48 MiB into the upload (for CAS: after the hash pass, the first half).
    upload_mark = 48 * 1024 * 1024 + (SIZE // 2 if two_pass else 0)
    wait_for(lambda: job.status().progress.bytes_done >= upload_mark, timeout=60)
    rec = sink.store.get_asset(job.id, asset_id)
    assert rec is not None and rec.worker
    victim_pid = int(rec.worker.rsplit(":", 1)[1])
    progress = job.status().progress.bytes_done
    os.kill(victim_pid, signal.SIGKILL)
    done_before_kill = 2 * progress - SIZE if two_pass else progress  # bytes of the upload pass

    final = job.wait(timeout=180)
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    a = final.assets[0]
    assert a.sha256 == digest and a.key is not None
    if two_pass:
        assert digest in a.key
    head = s3_client.head_object(Bucket=bucket, Key=a.key)  # type: ignore[attr-defined]
    assert head["ContentLength"] == SIZE
    rec = sink.store.get_asset(job.id, asset_id)
    assert rec is not None and rec.worker and int(rec.worker.rsplit(":", 1)[1]) != victim_pid
    assert no_multipart_uploads(s3_client, bucket)
    # Resumed, not restarted: the source is re-read (SHA-256 needs every byte) but the
    # parts already in the bucket are not uploaded again.
    # The re-upload is bounded: the finishing delivery uploaded what was left, plus at
    # most the parts in flight when the first one died (part size x concurrency).
    assert rec.bytes_uploaded is not None
    assert rec.bytes_uploaded <= SIZE - done_before_kill + 5 * 16 * 1024 * 1024
    assert rec.bytes_uploaded < SIZE, f"re-uploaded everything ({rec.bytes_uploaded})"
