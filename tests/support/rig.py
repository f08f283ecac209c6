"""One fault row's world: a Redis of its own (store and, by default, broker), the API and
workers from the Procfile, and what the row reads back (the asset record, bytes done).

Why per row and not per module: fault rows kill workers, restart Redis and let
leases expire; a stack that survived one row would carry its state into the next.
The row may replace `Rig.redis` (a Redis restart): the rig stops whichever is current.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis
from tests.support.invariants import Services
from tests.support.workers import QueueStack, delete_queue, start_stack


@dataclass
class Rig:
    stack: QueueStack
    redis: EmbeddedRedis
    svc: Services
    seaweed: SeaweedS3
    bucket: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.tokens['acme']}"}

    def submit(
        self,
        url: str,
        *,
        strategy: str = "hierarchical",
        sha256: str | None = None,
        more: tuple[str, ...] = (),
    ) -> str:
        """Submit `url` (and `more`) as one job to the rig's bucket; its job id.

        `sha256` is the client's claim for the first asset (content-addressable keys).
        """
        assets: list[dict[str, Any]] = [{"url": u, "media_type": "video/mp4"} for u in (url, *more)]
        if sha256:
            assets[0]["sha256"] = sha256
        r = httpx.post(
            f"{self.stack.api_url}/v1/jobs",
            json={
                "assets": assets,
                "destination": {
                    "bucket": self.bucket,
                    "endpoint_url": self.seaweed.endpoint_url,
                    "key_strategy": strategy,
                },
            },
            timeout=10,
            headers=self.auth,
        )
        assert r.status_code == 202, r.text
        return str(r.json()["job_id"])

    def asset(self, job_id: str, index: int = 0) -> Any:
        meta = self.svc.store.get_meta(job_id)
        assert meta is not None
        return self.svc.store.get_asset(job_id, meta.asset_ids[index])

    def wait_bytes(self, job_id: str, n: int, timeout: float = 60) -> Any:
        """The first asset's record once a worker holds it with `n` bytes copied."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self.asset(job_id)
            if rec is not None and rec.bytes_done >= n and rec.worker:
                return rec
            time.sleep(0.05)
        raise TimeoutError(f"copy did not reach {n} bytes: {self.asset(job_id)}")

    def uploads(self) -> list[str]:
        """Keys of the multipart uploads in progress in the rig's bucket."""
        s3 = self.svc.s3
        return [u["Key"] for u in s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def logs(self) -> str:
        return "".join(h.log() for h in self.stack.workers)


@contextlib.contextmanager
def fault_rig(
    seaweed: SeaweedS3,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    *,
    queue_prefix: str,
    broker_url: str | None = None,
    n_workers: int = 1,
    concurrency: int = 1,
    extra_env: Mapping[str, str] | None = None,
    appendonly: bool = False,
    keep_logs_in: Path | None = None,
) -> Iterator[Rig]:
    """Start a rig on a queue `<queue_prefix>-<random>` (unique: RabbitMQ is shared);
    stop it, its Redis and (on RabbitMQ) its queue at the end.

    `keep_logs_in`: copy the processes' logs there (pytest rotates tmp dirs).
    """
    server = start_redis(appendonly=appendonly, data_dir=tmp_path / "redis")
    queue = f"{queue_prefix}-{uuid.uuid4().hex[:8]}"
    try:
        stack = start_stack(
            redis_url=server.url,
            broker_url=broker_url,
            seaweed=seaweed,
            log_dir=tmp_path,
            n_workers=n_workers,
            queue=queue,
            concurrency=concurrency,
            extra_env=extra_env,
        )
        r = Rig(stack, server, Services(redis_url=server.url, s3=s3), seaweed, bucket)
        try:
            yield r
        finally:
            stack.stop()
            r.redis.stop()  # the row may have replaced the server (Redis restart)
            if broker_url and broker_url.startswith("amqp"):
                delete_queue(queue, broker_url)
            if keep_logs_in is not None:
                keep = keep_logs_in / tmp_path.name
                keep.mkdir(parents=True, exist_ok=True)
                for log in tmp_path.glob("*.log"):
                    shutil.copy(log, keep / log.name)
    finally:
        server.stop()
