"""SIGKILL a copying process at ~60% of 256 MiB; a new process resumes from its checkpoint.

Proves: the object ends complete and correct, the upload id survived in the
FileCheckpointStore, and the resumed run re-uploads at most (in-flight + 1)
parts' worth of bytes that the killed run had already sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from genblaze_s3.local.services import drop_bucket
from genblaze_s3.local.supervisor import Process, spawn
from genblaze_s3.transfer import FileCheckpointStore
from tests.support.cdn import CDNServer, write_big_file
from tests.support.s3proxy import debris, make_backend

MiB = 1024 * 1024
SIZE = 256 * MiB
PART = 8 * MiB
CONCURRENCY = 3

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from genblaze_s3 import S3StorageBackend
from genblaze_s3.transfer import (CopyConfig, Destination, FetchPolicy, FileCheckpointStore,
    copy_url)
endpoint, ak, sk, bucket, url, cpdir = sys.argv[2:8]
backend = S3StorageBackend(bucket, endpoint_url=endpoint, access_key_id=ak,
    secret_access_key=sk, region="us-east-1", preflight=False)
r = copy_url(backend, url, Destination(key="big/object.bin"),
    policy=FetchPolicy(allow_http=True, allow_private_hosts=frozenset({"127.0.0.1"})),
    config=CopyConfig(part_size=PART_SIZE, concurrency=CONCURRENCY),
    checkpoint_store=FileCheckpointStore(cpdir), checkpoint_id="job:big")
print(json.dumps({"sha256": r.sha256, "size": r.size, "bytes_uploaded": r.bytes_uploaded,
    "parts_uploaded": r.parts_uploaded}))
""".replace("PART_SIZE", str(PART)).replace("CONCURRENCY", str(CONCURRENCY))


def _child(seaweed: Any, bucket: str, url: str, cpdir: Path, log: Path) -> Process:
    """The copy in a process of its own (the one supervisor: own group, log file)."""
    root = str(Path(__file__).resolve().parents[2])
    args = [root, seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, bucket, url]
    return spawn([sys.executable, "-c", CHILD, *args, str(cpdir)], log_path=log, name="copy")


@pytest.mark.slow
def test_killed_copy_resumes_from_checkpoint_in_new_process(
    seaweed: Any, bucket: str, tmp_path: Path, cdn: CDNServer
) -> None:
    big = write_big_file(tmp_path / "big.bin", SIZE)
    cpdir = tmp_path / "checkpoints"
    store = FileCheckpointStore(cpdir)
    total_parts = SIZE // PART
    cdn.add("/big.bin", big.path)
    # Throttled so the kill lands mid-copy on a fast machine.
    url = cdn.url("/big.bin", mode="slow", rate=48 * MiB)
    proc = _child(seaweed, bucket, url, cpdir, tmp_path / "first.log")
    done_at_kill = 0

    def far_enough() -> bool:
        nonlocal done_at_kill
        cp = store.load("job:big")
        done_at_kill = len(cp.parts) if cp is not None else 0
        return done_at_kill >= int(total_parts * 0.6)

    try:
        proc.wait_ready(far_enough, 120, "60% of the parts checkpointed", interval=0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.stop()
    assert proc.proc.returncode == -signal.SIGKILL, proc.log()[-3000:]
    assert done_at_kill >= int(total_parts * 0.6)
    client = make_backend(seaweed, bucket).client
    assert debris(client, bucket) == ([], ["big/object.bin"])  # nothing at the final key

    resumed = _child(seaweed, bucket, cdn.url("/big.bin"), cpdir, tmp_path / "resumed.log")
    try:
        assert resumed.wait(timeout=300) == 0, resumed.log()[-3000:]
    finally:
        resumed.stop()
    out = [line for line in resumed.log().splitlines() if line.startswith("{")]
    result = json.loads(out[-1])
    assert result["sha256"] == big.sha256 and result["size"] == SIZE
    missing_at_kill = total_parts - done_at_kill
    assert result["parts_uploaded"] <= missing_at_kill
    again = result["bytes_uploaded"] - (missing_at_kill - (CONCURRENCY + 1)) * PART
    assert again <= (CONCURRENCY + 1) * PART
    body = client.get_object(Bucket=bucket, Key="big/object.bin")["Body"]
    check = hashlib.sha256()
    for chunk in iter(lambda: body.read(8 * MiB), b""):
        check.update(chunk)
    assert check.hexdigest() == big.sha256
    assert debris(client, bucket) == (["big/object.bin"], [])
    assert store.load("job:big") is None
    drop_bucket(client, bucket)
