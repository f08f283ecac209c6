"""The ingestion service on one machine: the API and N Celery workers, as the Procfile runs them.

One recipe for the demo, the integration tests (tests/support/workers.py adds the
suite's defaults) and the queue benchmark: an environment naming the store, the
broker, the queue and the worker's own S3 credentials, the Procfile's `web:` line
bound to loopback, and `worker:` lines each waited on until Celery logs "ready.".
Nothing here is used in production.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from genblaze_s3.local.services import LOOPBACK, free_port, http_ok
from genblaze_s3.local.supervisor import ROOT, Process, spawn_procfile
from genblaze_s3.settings import process_environ

DEFAULT_QUEUE = "genblaze-ingest"


class S3Endpoint(Protocol):
    """Where workers write, with the credentials they sign with (a SeaweedS3 fits)."""

    endpoint_url: str
    access_key: str
    secret_key: str


def procfile_env(
    *,
    redis_url: str,
    s3: S3Endpoint,
    broker_url: str | None = None,
    queue: str = DEFAULT_QUEUE,
    concurrency: int = 1,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the Procfile's processes read (the caller's, plus these).

    Without `broker_url` the store's Redis is the broker too (any inherited
    GENBLAZE_BROKER_URL is dropped, so a developer's shell cannot redirect a test).
    """
    env = process_environ() if base is None else dict(base)
    env.update(
        GENBLAZE_REDIS_URL=redis_url,
        GENBLAZE_QUEUE=queue,
        GENBLAZE_WORKER_CONCURRENCY=str(concurrency),
        AWS_ACCESS_KEY_ID=s3.access_key,
        AWS_SECRET_ACCESS_KEY=s3.secret_key,
        AWS_ENDPOINT_URL=s3.endpoint_url,
        AWS_DEFAULT_REGION="us-east-1",
        # `celery` and `python` of this interpreter's environment, this checkout first.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    env.pop("GENBLAZE_BROKER_URL", None)
    if broker_url:
        env["GENBLAZE_BROKER_URL"] = broker_url
    env.update(extra or {})
    return env


def spawn_worker(
    env: Mapping[str, str], log_path: Path, *, name: str, extra_args: str = ""
) -> Process:
    """A worker from the Procfile's `worker:` line, named `name-<random>@host`, not yet ready.

    The random part keeps two stacks on one broker (RabbitMQ is shared by every
    checkout on a machine) from declaring the same exclusive pidbox queue
    (`<node>.celery.pidbox`), which makes the second worker exit at start.
    """
    args = f"-n {name}-{uuid.uuid4().hex[:8]}@%h {extra_args}".strip()
    return spawn_procfile("worker", env=env, log_path=log_path, extra_args=args, name=name)


def wait_workers_ready(workers: list[Process], timeout: float = 60) -> None:
    """Wait until each worker logs "ready." (it consumes from then on)."""
    for w in workers:
        w.wait_for_log("ready.", timeout)


def start_worker(
    env: Mapping[str, str],
    log_path: Path,
    *,
    name: str,
    ready_timeout: float = 60,
    extra_args: str = "",
) -> Process:
    """A worker from the Procfile's `worker:` line, consuming when this returns."""
    proc = spawn_worker(env, log_path, name=name, extra_args=extra_args)
    try:
        wait_workers_ready([proc], ready_timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_api(env: Mapping[str, str], log_path: Path, *, port: int, timeout: float = 30) -> Process:
    """The Procfile's `web:` line on loopback (`--host` overrides its 0.0.0.0), healthy."""
    proc = spawn_procfile(
        "web", env={**env, "PORT": str(port)}, log_path=log_path, extra_args=f"--host {LOOPBACK}"
    )
    try:
        proc.wait_ready(lambda: http_ok(f"http://{LOOPBACK}:{port}/healthz"), timeout, "/healthz")
    except BaseException:
        proc.stop()
        raise
    return proc


@dataclass
class QueueStack:
    """Workers + API (both from the Procfile) on one Redis, writing to one S3 endpoint."""

    redis_url: str
    broker_url: str
    queue: str
    api_url: str
    tokens: dict[str, str]
    env: dict[str, str]
    log_dir: Path
    workers: list[Process] = field(default_factory=list)
    api: Process | None = None

    def add_worker(self, name: str, ready_timeout: float = 60) -> Process:
        h = start_worker(
            self.env, self.log_dir / f"{name}.log", name=name, ready_timeout=ready_timeout
        )
        self.workers.append(h)
        return h

    def worker_logs(self) -> str:
        return "".join(w.log() for w in self.workers)

    def stop(self) -> None:
        """Warm-shut-down every worker and the API side by side, then wait for each."""
        processes = [*self.workers, *([self.api] if self.api is not None else [])]
        for p in processes:
            p.terminate()
        for p in processes:
            p.stop()


def start_stack(
    *,
    redis_url: str,
    s3: S3Endpoint,
    log_dir: Path,
    tokens: Mapping[str, str],
    broker_url: str | None = None,
    queue: str = DEFAULT_QUEUE,
    n_workers: int = 2,
    concurrency: int = 1,
    api: bool = True,
    worker_prefix: str = "w",
    extra_env: Mapping[str, str] | None = None,
) -> QueueStack:
    """Start the API and `n_workers` workers; on any failure stop what started, re-raise."""
    port = free_port()
    env = procfile_env(
        redis_url=redis_url,
        s3=s3,
        broker_url=broker_url,
        queue=queue,
        concurrency=concurrency,
        extra={
            "GENBLAZE_API_TOKENS": ",".join(f"{t}:{k}" for t, k in tokens.items()),
            "PORT": str(port),
            **(extra_env or {}),
        },
    )
    stack = QueueStack(
        redis_url=redis_url,
        broker_url=broker_url or redis_url,
        queue=queue,
        api_url=f"http://{LOOPBACK}:{port}",
        tokens=dict(tokens),
        env=env,
        log_dir=log_dir,
    )
    try:
        # Start everything, then wait: the processes boot side by side.
        for i in range(n_workers):
            name = f"{worker_prefix}{i}"
            stack.workers.append(spawn_worker(env, log_dir / f"{name}.log", name=name))
        if api:
            stack.api = start_api(env, log_dir / "api.log", port=port)
        wait_workers_ready(stack.workers)
    except BaseException:
        stack.stop()
        raise
    return stack
