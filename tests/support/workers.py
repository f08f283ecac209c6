"""Start `celery -A workers worker` exactly as the Procfile does, and stop it.

Tests (and the demo) run the Procfile's `worker:` line through a shell, in
its own process group, with an environment carrying the worker's own S3
credentials; `stop()` ends the whole group, so no process outlives a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]


def procfile_command(kind: str) -> str:
    """The command of the Procfile line `kind:` (web or worker)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, cmd = line.partition(":")
        if sep and name.strip() == kind:
            return cmd.strip()
    raise KeyError(kind)


def worker_env(
    *,
    redis_url: str,
    broker_url: str | None = None,
    endpoint_url: str,
    access_key: str,
    secret_key: str,
    queue: str = "genblaze-ingest",
    concurrency: int = 1,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GENBLAZE_REDIS_URL=redis_url,
        GENBLAZE_QUEUE=queue,
        GENBLAZE_WORKER_CONCURRENCY=str(concurrency),
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_DEFAULT_REGION="us-east-1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.pop("GENBLAZE_BROKER_URL", None)
    if broker_url:
        env["GENBLAZE_BROKER_URL"] = broker_url
    env.update(extra or {})
    return env


@dataclass
class ProcessHandle:
    """One Procfile process; its log goes to a file for assertions and debugging."""

    proc: subprocess.Popen[Any]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"process exited ({self.proc.returncode}):\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)
        raise TimeoutError(f"{needle!r} not in log after {timeout}s:\n{self.log()[-3000:]}")

    def child_pids(self) -> list[int]:
        """Pool children: processes whose parent is a process in our group."""
        out = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError):
                stat = (p / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                ppid, pgid = int(fields[1]), int(fields[2])
                if pgid == self.proc.pid and ppid != 1 and int(p.name) != self.proc.pid:
                    out.append(int(p.name))
        return out

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


def start_procfile(
    kind: str, env: dict[str, str], log_path: Path, extra_args: str = ""
) -> ProcessHandle:
    log = open(log_path, "wb")  # noqa: SIM115 - closed by ProcessHandle.stop
    cmd = procfile_command(kind) + (" " + extra_args if extra_args else "")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {cmd}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ProcessHandle(proc, log_path, log)


def start_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    name: str,
    ready_timeout: float = 60,
    extra_args: str = "",
) -> ProcessHandle:
    """A worker from the Procfile's `worker:` line, ready to consume when this returns."""
    h = start_procfile("worker", env, log_path, extra_args=f"-n {name}@%h {extra_args}".strip())
    try:
        h.wait_for_log("ready.", ready_timeout)
    except Exception:
        h.stop()
        raise
    return h


@dataclass
class QueueStack:
    """Workers + API (both from the Procfile) on one Redis, writing to one S3 endpoint."""

    redis_url: str
    broker_url: str
    queue: str
    api_url: str
    tokens: dict[str, str]
    workers: list[ProcessHandle]
    api: ProcessHandle | None
    env: dict[str, str]
    log_dir: Path

    def add_worker(self, name: str) -> ProcessHandle:
        h = start_worker(self.env, self.log_dir / f"{name}.log", name=name)
        self.workers.append(h)
        return h

    def stop(self) -> None:
        for h in self.workers:
            h.stop()
        if self.api is not None:
            self.api.stop()


def start_stack(
    *,
    redis_url: str,
    seaweed: Any,
    log_dir: Path,
    broker_url: str | None = None,
    queue: str = "genblaze-ingest",
    n_workers: int = 2,
    concurrency: int = 1,
    api: bool = True,
    tokens: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> QueueStack:
    """Start everything; on any failure stop what was started and re-raise."""
    import httpx

    from genblaze_s3.embedded import free_port

    tokens = tokens or {"acme": "tok-acme", "globex": "tok-globex"}
    port = free_port()
    env = worker_env(
        redis_url=redis_url,
        broker_url=broker_url,
        endpoint_url=seaweed.endpoint_url,
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        queue=queue,
        concurrency=concurrency,
        extra={
            "GENBLAZE_API_TOKENS": ",".join(f"{t}:{k}" for t, k in tokens.items()),
            "PORT": str(port),
            "GENBLAZE_LEASE_TTL_MS": "6000",
            "GENBLAZE_WEBHOOK_SECRET": "whsec-test",
            # A fixed test key (Fernet format): source URLs are sealed at rest in Redis.
            "GENBLAZE_SOURCE_KEY": "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA=",
            **(extra_env or {}),
        },
    )
    stack = QueueStack(
        redis_url,
        broker_url or redis_url,
        queue,
        f"http://127.0.0.1:{port}",
        tokens,
        [],
        None,
        env,
        log_dir,
    )
    try:
        if api:
            stack.api = start_procfile("web", env, log_dir / "api.log")
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{stack.api_url}/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline or stack.api.proc.poll() is not None:
                    raise RuntimeError(f"API did not come up:\n{stack.api.log()[-3000:]}")
                time.sleep(0.1)
        for i in range(n_workers):
            stack.add_worker(f"w{i}")
    except BaseException:
        stack.stop()
        raise
    return stack
