"""`genblaze-ingest demo`: the whole product on one machine with only Python.

Starts (or reuses) Redis, starts SeaweedFS with an Object-Lock bucket, real
`celery -A workers worker` processes and the API (the Procfile's commands, through
genblaze_s3.local.stack), serves sample media from a local CDN, runs a genblaze
Pipeline whose sink is QueuedStorageSink, shows progress, prints the bucket layout
and the verified, locked manifest, then stops everything it started.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BUCKET = "genblaze-demo"
SHARED_REDIS = "redis://127.0.0.1:6379/0"


def run_demo(*, workers: int = 2) -> int:
    """Run the demo; returns 0 when the manifest verified and is locked."""
    import httpx
    import redis
    from genblaze_core.mocks import MockProvider
    from genblaze_core.models.asset import Asset
    from genblaze_core.pipeline import Pipeline
    from genblaze_core.storage.base import ObjectLockConfig
    from genblaze_core.storage.sink import ObjectStorageSink
    from rich.console import Console
    from rich.tree import Tree

    from genblaze_s3.ingest import JobView, QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy, normalize_endpoint
    from genblaze_s3.local.media import SAMPLES, local_cdn
    from genblaze_s3.local.services import redis_reachable, start_redis, start_seaweedfs
    from genblaze_s3.local.stack import start_stack
    from genblaze_s3.local.supervisor import Supervisor
    from genblaze_s3.local.terminal import watch_progress

    console = Console()
    started = Supervisor()
    workdir = Path(tempfile.mkdtemp(prefix="genblaze-demo-"))
    started.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        if redis_reachable(SHARED_REDIS):
            redis_url = SHARED_REDIS
            console.print(f"[green]✓[/] Redis: using the one running at {redis_url}")
        else:
            r = start_redis()
            started.add(r.stop, processes=[r.process])
            redis_url = r.url
            console.print(f"[green]✓[/] Redis: started embedded Valkey at {redis_url}")
        s3 = start_seaweedfs(workdir / "seaweed")
        started.add(s3.stop, processes=[s3.process])
        s3.create_bucket(BUCKET, object_lock=True)
        console.print(
            f"[green]✓[/] S3: SeaweedFS at {s3.endpoint_url}, bucket {BUCKET} (Object Lock on)"
        )

        queue = f"genblaze-demo-{secrets.token_hex(4)}"
        # On a shared Redis, leave no queue bindings behind (job records expire by TTL).
        started.add(
            lambda: redis.Redis.from_url(redis_url).delete(queue, f"_kombu.binding.{queue}")
        )
        token = secrets.token_urlsafe(16)
        stack = start_stack(
            redis_url=redis_url,
            s3=s3,
            log_dir=workdir,
            tokens={"demo": token},
            queue=queue,
            n_workers=workers,
            worker_prefix="demo",
            # The sample CDN is plain http on loopback: allowed for this demo only.
            extra_env={"GENBLAZE_ALLOW_HTTP": "1", "GENBLAZE_ALLOW_PRIVATE_HOSTS": "127.0.0.1"},
        )
        started.add(stack.stop, processes=[*stack.workers, *([stack.api] if stack.api else [])])
        api_url = stack.api_url
        console.print(
            f"[green]✓[/] {workers} workers (celery -A workers worker) and the API at {api_url}"
        )

        with local_cdn() as cdn:
            console.print(f"[green]✓[/] sample media served at {cdn}")
            backend = s3.backend(BUCKET)
            lock = ObjectLockConfig(
                retain_until=datetime.now(UTC) + timedelta(days=1), mode="GOVERNANCE"
            )
            sink = QueuedStorageSink(
                backend,
                manifest_lock=lock,
                redis_url=redis_url,
                queue=queue,
                tenant="demo",
                destination_policy=DestinationPolicy(
                    frozenset({normalize_endpoint(s3.endpoint_url)})
                ),
            )
            provider = MockProvider(
                name="demo",
                assets=lambda step: [
                    Asset(url=f"{cdn}/{name}", media_type=ctype)
                    for name, (ctype, _) in SAMPLES.items()
                ],
            )
            t0 = time.perf_counter()
            result = (
                Pipeline("genblaze-s3 demo")
                .step(provider, model="mock", prompt="a sunrise")
                .run(sink=sink, raise_on_failure=True)
            )
            assert sink.last_job is not None
            console.print(
                f"[green]✓[/] Pipeline ran; write_run enqueued job {sink.last_job.id} "
                f"(pipeline returned in {1000 * (time.perf_counter() - t0):.0f} ms)"
            )
            client = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"})

            job_id = sink.last_job.id

            def fetch() -> JobView:
                return JobView.model_validate_json(client.get(f"/v1/jobs/{job_id}").content)

            view = watch_progress(fetch, interval=0.2)
            console.print(f"job state: [bold]{view.state.value}[/]")
            if view.state.value != "succeeded":
                console.print(view.model_dump_json(indent=2))
                return 1

        tree = Tree(f"s3://{BUCKET}")
        nodes: dict[str, Any] = {}
        for obj in backend.client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            parent = tree
            parts = obj["Key"].split("/")
            for depth in range(1, len(parts)):
                path = "/".join(parts[:depth])
                if path not in nodes:
                    nodes[path] = parent.add(parts[depth - 1] + "/")
                parent = nodes[path]
            parent.add(f"{parts[-1]}  ({obj['Size']:,} bytes)")
        console.print(tree)
        manifest = ObjectStorageSink(backend).read_manifest(result.run)
        head = backend.client.head_object(Bucket=BUCKET, Key=view.manifest.key)
        n_assets = sum(len(s.assets) for s in manifest.run.steps)
        console.print(
            f"[green]✓[/] manifest {view.manifest.key}: canonical hash verified "
            f"({manifest.canonical_hash[:16]}…), {n_assets} assets with sha256"
        )
        console.print(
            f"[green]✓[/] Object Lock {head.get('ObjectLockMode')} until "
            f"{head.get('ObjectLockRetainUntilDate')}"
        )
        for a in manifest.run.steps[0].assets:
            console.print(f"    {a.media_type:10} {a.size_bytes:>9,} B  sha256 {a.sha256}  {a.url}")
        return 0
    finally:
        processes = started.processes()
        started.stop_all()
        pids = ", ".join(f"{p.name} {p.pid}" for p in processes)
        console.print(f"stopped everything the demo started (process groups: {pids})")
