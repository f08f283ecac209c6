"""`genblaze-ingest demo`: the whole product on one machine with only Python.

Starts (or reuses) Redis, starts SeaweedFS with an Object-Lock bucket, real
`celery -A workers worker` processes and the API (the Procfile's commands),
serves sample media from a local CDN, runs a genblaze Pipeline whose sink is
QueuedStorageSink, shows progress, prints the bucket layout and the verified,
locked manifest, then stops everything it started.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FALLBACK_PROCFILE = {
    "web": "python -m genblaze_s3.cli api --host 127.0.0.1 --port ${PORT:-8000}",
    "worker": "celery -A workers worker --loglevel=INFO --pool=${GENBLAZE_WORKER_POOL:-prefork} "
    "--concurrency=${GENBLAZE_WORKER_CONCURRENCY:-2} --without-gossip --without-mingle",
}
BUCKET = "genblaze-demo"


def procfile(kind: str) -> str:
    path = ROOT / "Procfile"
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, cmd = line.partition(":")
            if sep and name.strip() == kind:
                return cmd.strip()
    return FALLBACK_PROCFILE[kind]


# -- sample media -------------------------------------------------------------
def sample_png(w: int = 64, h: int = 64) -> bytes:
    rows = b"".join(
        b"\x00" + bytes(c for x in range(w) for c in (x * 4 % 256, y * 4 % 256, 160))
        for y in range(h)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sample_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import math

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return buf.getvalue()


def sample_mp4(size: int = 3 * 1024 * 1024) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    mdat = os.urandom(size)
    return ftyp + struct.pack(">I", len(mdat) + 8) + b"mdat" + mdat


class _CDN(BaseHTTPRequestHandler):
    files: dict[str, tuple[bytes, str]] = {}

    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        item = self.files.get(self.path.split("?")[0])
        if item is None:
            self.send_error(404)
            return
        data, ctype = item
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def local_cdn() -> Iterator[str]:
    handler = type(
        "CDN",
        (_CDN,),
        {
            "files": {
                "/image.png": (sample_png(), "image/png"),
                "/voice.wav": (sample_wav(), "audio/wav"),
                "/clip.mp4": (sample_mp4(), "video/mp4"),
            }
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- processes ----------------------------------------------------------------
class Started:
    """Everything the demo started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self._stops: list[Any] = []

    def add(self, stop: Any) -> None:
        self._stops.append(stop)

    def stop_all(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()


def _spawn(cmd: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            ["bash", "-c", f"exec {cmd}"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()


def _stop_proc(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def _wait_log(log: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"process exited; see {log}:\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)
    raise TimeoutError(f"{needle!r} did not appear in {log}")


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

    from genblaze_s3 import S3StorageBackend
    from genblaze_s3.cli import watch_progress
    from genblaze_s3.embedded import free_port, redis_reachable, start_redis, start_seaweedfs
    from genblaze_s3.ingest import JobView, QueuedStorageSink
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.settings import process_environ

    console = Console()
    started = Started()
    workdir = Path(tempfile.mkdtemp(prefix="genblaze-demo-"))
    started.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        if redis_reachable("redis://127.0.0.1:6379/0"):
            redis_url = "redis://127.0.0.1:6379/0"
            console.print(f"[green]✓[/] Redis: using the one running at {redis_url}")
        else:
            r = start_redis()
            started.add(r.stop)
            redis_url = r.url
            console.print(f"[green]✓[/] Redis: started embedded Valkey at {redis_url}")
        s3 = start_seaweedfs(workdir / "seaweed")
        started.add(s3.stop)
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
        port = free_port()
        env = process_environ()
        env.update(
            GENBLAZE_REDIS_URL=redis_url,
            GENBLAZE_QUEUE=queue,
            GENBLAZE_WORKER_CONCURRENCY="1",
            AWS_ACCESS_KEY_ID=s3.access_key,
            AWS_SECRET_ACCESS_KEY=s3.secret_key,
            AWS_ENDPOINT_URL=s3.endpoint_url,
            AWS_DEFAULT_REGION="us-east-1",
            GENBLAZE_API_TOKENS=f"demo:{token}",
            PORT=str(port),
            # The sample CDN is plain http on loopback: allowed for this demo only.
            GENBLAZE_ALLOW_HTTP="1",
            GENBLAZE_ALLOW_PRIVATE_HOSTS="127.0.0.1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
        )
        env.pop("GENBLAZE_BROKER_URL", None)
        api = _spawn(procfile("web"), env, workdir / "api.log")
        started.add(lambda: _stop_proc(api))
        procs = []
        for i in range(workers):
            p = _spawn(procfile("worker") + f" -n demo{i}@%h", env, workdir / f"worker{i}.log")
            started.add(lambda p=p: _stop_proc(p))
            procs.append(p)
        for i, p in enumerate(procs):
            _wait_log(workdir / f"worker{i}.log", "ready.", p)
        api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api_url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or api.poll() is not None:
                raise RuntimeError(f"API did not start; see {workdir / 'api.log'}")
            time.sleep(0.1)
        console.print(
            f"[green]✓[/] {workers} workers (celery -A workers worker) and the API at {api_url}"
        )

        with local_cdn() as cdn:
            console.print(f"[green]✓[/] sample media served at {cdn}")
            backend = S3StorageBackend(
                BUCKET,
                endpoint_url=s3.endpoint_url,
                region="us-east-1",
                access_key_id=s3.access_key,
                secret_access_key=s3.secret_key,
                preflight=False,
            )
            lock = ObjectLockConfig(
                retain_until=datetime.now(UTC) + timedelta(days=1), mode="GOVERNANCE"
            )
            sink = QueuedStorageSink(
                backend,
                manifest_lock=lock,
                redis_url=redis_url,
                queue=queue,
                tenant="demo",
                destination_policy=DestinationPolicy.from_env(
                    {"GENBLAZE_ALLOWED_ENDPOINTS": s3.endpoint_url}
                ),
            )
            assets = [
                ("image.png", "image/png"),
                ("voice.wav", "audio/wav"),
                ("clip.mp4", "video/mp4"),
            ]
            provider = MockProvider(
                name="demo",
                assets=lambda step: [Asset(url=f"{cdn}/{n}", media_type=t) for n, t in assets],
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
        started.stop_all()
        console.print("stopped everything the demo started")
