"""One arm of one round of bench/bench_finalize.py, run with the tree under test first
on the import path (``PYTHONPATH=<tree>``, ``PYTHONSAFEPATH=1``).

Creates ``BENCH_WARM + BENCH_COUNT`` fresh jobs whose assets are all stored (the
objects the parent put in the bucket), finalizes each (the warm ones untimed), and
prints one JSON line: ``walls`` and ``cpus`` (seconds per timed finalize, CPU of this
process with its upload threads) and the timed ``job_ids``.

Only what both trees share is used; the module paths moved when ``ingest/`` was split
into rooms (issue 19), so each name is looked up at its new place, then its old one.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any


def _name(*places: str) -> Any:
    """The first of ``module:attr`` places that imports (new layout, then old)."""
    for place in places:
        module, attr = place.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {places} in this tree")


def _job(store: Any, backend: Any, objects: list[list[Any]]) -> str:
    from genblaze_core.models.asset import Asset
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.models.run import Run
    from genblaze_core.models.step import Step

    from genblaze_s3.ingest.models import AssetState, DestinationSpec, LockPolicy
    from genblaze_s3.ingest.provenance import build_provenance
    from genblaze_s3.ingest.sealing import SourceSealer

    build_submission = _name(
        "genblaze_s3.ingest.submit.submission:build_submission",
        "genblaze_s3.ingest.submission:build_submission",
    )
    urls = [f"https://cdn.example/render/{i}.png?X-Amz-Signature=s" for i in range(len(objects))]
    step = Step(
        provider="bench", model="m", assets=[Asset(url=u, media_type="image/png") for u in urls]
    )
    manifest = Manifest.from_run(Run(name="bench-finalize", steps=[step]))
    lock = LockPolicy(retain_until=datetime.now(UTC) + timedelta(days=1))
    sub = build_submission(
        manifest, DestinationSpec(bucket=str(backend.bucket)), tenant="bench", manifest_lock=lock
    )
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    now = datetime.now(UTC)
    for aid, url, (key, digest, size) in zip(sub.meta.asset_ids, urls, objects, strict=True):
        store.finish_asset(
            sub.meta.job_id,
            aid,
            AssetState.STORED,
            key=key,
            url=backend.get_durable_url(key),
            sha256=digest,
            size=size,
            provenance=build_provenance(
                url,
                fetched_at=now,
                validators=None,
                bytes_stored=size,
                attempts=1,
                refreshes=0,
                deduplicated=False,
            ),
        )
    return str(sub.meta.job_id)


def main() -> None:
    import redis
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.ingest.models import JobState

    store_cls = _name(
        "genblaze_s3.ingest.store.status:StatusStore", "genblaze_s3.ingest.status:StatusStore"
    )
    finalize_job = _name(
        "genblaze_s3.ingest.finalize.manifest:finalize_job",
        "genblaze_s3.ingest.finalize:finalize_job",
    )
    signer_cls = _name(
        "genblaze_s3.ingest.finalize.signing:ManifestSigner",
        "genblaze_s3.ingest.signing:ManifestSigner",
    )
    env = os.environ
    backend = S3StorageBackend(
        env["BENCH_BUCKET"],
        endpoint_url=env["BENCH_S3_ENDPOINT"],
        region="us-east-1",
        access_key_id=env["BENCH_S3_KEY"],
        secret_access_key=env["BENCH_S3_SECRET"],
        preflight=False,
    )
    store = store_cls(redis.Redis.from_url(env["BENCH_REDIS_URL"]))
    with open(env["BENCH_OBJECTS"]) as f:
        objects = json.load(f)
    key_hex = env.get("BENCH_SIGNING_KEY", "")
    signer = (
        signer_cls(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key_hex)))
        if key_hex
        else None
    )

    walls: list[float] = []
    cpus: list[float] = []
    job_ids: list[str] = []
    warm, count = int(env.get("BENCH_WARM", "1")), int(env["BENCH_COUNT"])
    for i in range(warm + count):
        job_id = _job(store, backend, objects)
        cpu, started = time.process_time(), time.perf_counter()
        state = finalize_job(store, lambda _d: backend, job_id, signer=signer)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if state != JobState.SUCCEEDED:
            raise SystemExit(f"finalize of {job_id} ended {state}")
        if i >= warm:
            walls.append(wall)
            cpus.append(cpu)
            job_ids.append(job_id)
    print(json.dumps({"walls": walls, "cpus": cpus, "job_ids": job_ids}))


if __name__ == "__main__":
    main()
