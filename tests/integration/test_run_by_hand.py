"""docs/RUN_BY_HAND.md, followed step by step with real processes.

Every block of the page runs as written, in order, in `bash -euo pipefail` (Python
blocks in `python -c`), each shell starting from the environment the settings blocks
exported. Long-running steps (S3, Redis, worker, API) are started in their own process
groups, as in their own terminals, and waited for on what the page says shows they are
ready; all are stopped at the end.

What the test changes, and only this: after step 1 runs, its fixed ports and data
directory are replaced by free ports and a temporary directory (other checkouts run
tests on this machine); the first job's internet source is replaced by the local test
CDN, which is plain http on loopback, hence GENBLAZE_ALLOW_HTTP and
GENBLAZE_ALLOW_PRIVATE_HOSTS in the environment. A step added to the page without a
runner here fails `test_the_page_is_followed_step_by_step` at once.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from genblaze_s3.local.services import LOOPBACK, http_ok
from genblaze_s3.local.supervisor import Process, spawn
from tests.support.cdn import CDNServer
from tests.support.docblocks import ROOT, Block, blocks

DOC = "docs/RUN_BY_HAND.md"
STEP_1 = {"GENBLAZE_HOME", "S3_PORT", "REDIS_PORT", "PORT", "WEED_OPTS"}
SAMPLE_SOURCE = "https://upload.wikimedia.org/wikipedia/commons/a/a9/Example.jpg"


def _ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _base_env(home: Path) -> dict[str, str]:
    """A user's shell: this interpreter's bin first on PATH, this checkout importable."""
    return {
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        # The test CDN is http on loopback (see the module docstring).
        "GENBLAZE_ALLOW_HTTP": "1",
        "GENBLAZE_ALLOW_PRIVATE_HOSTS": "127.0.0.1,localhost",
    }


def _exports(block: Block, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """Run a settings block; the environment it leaves behind."""
    script = block.code() + '\nenv -0 > "$__ENV_OUT"\n'
    out = cwd / "env.out"
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**env, "__ENV_OUT": str(out)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    pairs = (item.split("=", 1) for item in out.read_text().split("\0") if "=" in item)
    result = {k: v for k, v in pairs if k not in ("__ENV_OUT", "_", "SHLVL", "PWD", "OLDPWD")}
    out.unlink()
    return result


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    run = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{argv[:2]} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


@pytest.fixture
def terminals() -> Iterator[list[Process]]:
    """The long-running steps, each in its own process group (its own terminal)."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for p in reversed(started):
            p.stop()


def _background(
    block: Block, env: dict[str, str], cwd: Path, name: str, started: list[Process]
) -> Process:
    proc = spawn(
        ["bash", "-euo", "pipefail", "-c", block.code()],
        env=env,
        cwd=cwd,
        log_path=cwd / f"{name}.log",
        name=name,
    )
    started.append(proc)
    return proc


def _s3_answers(env: dict[str, str]) -> bool:
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    try:
        client.list_buckets()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _redis_answers(env: dict[str, str]) -> bool:
    try:
        return bool(redis.Redis.from_url(env["GENBLAZE_REDIS_URL"], socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_the_page_is_followed_step_by_step(
    tmp_path: Path, terminals: list[Process], cdn: CDNServer
) -> None:
    steps = [b for b in blocks() if b.doc == DOC]
    firsts = [b.text.splitlines()[0] for b in steps]
    expected = [
        "pip install",
        "export GENBLAZE_HOME=",
        "mkdir -p",
        'cat > "$GENBLAZE_HOME/s3.json"',
        "REDIS_SERVER=",
        "import os",
        "genblaze-ingest worker",
        "genblaze-ingest api",
        "SOURCE=",
    ]
    assert len(firsts) == len(expected) and all(
        f.startswith(e) for f, e in zip(firsts, expected, strict=True)
    ), firsts
    install, where, settings, s3, redis_step, bucket, worker, api, first_job = steps

    # 0. The extras the page installs exist.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "'genblaze-s3[queue,local]'" in install.text and {"queue", "local"} <= set(extras)

    # 1. Run as written, then its fixed ports and directory become free ones.
    home = tmp_path / "home"
    home.mkdir()
    env = _base_env(home)
    step1 = _exports(where, env, tmp_path)
    assert {k for k in step1 if step1.get(k) != env.get(k)} == STEP_1
    ports = _ports(14)
    weed = dict(
        zip(
            [
                "s3.port.grpc",
                "s3.port.iceberg",
                "s3.port.lance",
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "admin.port",
                "admin.port.grpc",
            ],
            ports[3:],
            strict=True,
        )
    )
    env = {
        **step1,
        "GENBLAZE_HOME": str(tmp_path / "genblaze"),
        "S3_PORT": str(ports[0]),
        "REDIS_PORT": str(ports[1]),
        "PORT": str(ports[2]),
        "WEED_OPTS": " ".join(f"-{k}={v}" for k, v in weed.items()),
    }

    # 2. Settings: every later shell starts from what they exported.
    env = _exports(settings, env, tmp_path)
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{ports[0]}"
    assert env["GENBLAZE_WEBHOOK_SECRET"].startswith("whsec_")

    # 3-4. S3 and Redis, each in its own terminal.
    s3_proc = _background(s3, env, tmp_path, "s3", terminals)
    redis_proc = _background(redis_step, env, tmp_path, "redis", terminals)
    s3_proc.wait_ready(lambda: _s3_answers(env), 90, "a signed ListBuckets answer")
    redis_proc.wait_ready(lambda: _redis_answers(env), 30, "PONG")

    # 5. The bucket: Object Lock and versioning, as the page says it prints.
    out = _run([sys.executable, "-c", bucket.code()], env, tmp_path)
    assert out.splitlines() == ["media object lock: Enabled", "media versioning: Enabled"]

    # 6-7. A worker ("ready.") and the API (/healthz).
    worker_proc = _background(worker, env, tmp_path, "worker", terminals)
    api_proc = _background(api, env, tmp_path, "api", terminals)
    api_proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{env['PORT']}/healthz"), 60, "/healthz")
    worker_proc.wait_for_log("ready.", 90)

    # 8. A first job, its manifest locked and verified.
    source = cdn.add(
        "/by-hand/example.jpg", secrets.token_bytes(300_000), content_type="image/jpeg"
    )
    script = first_job.code([(SAMPLE_SOURCE, source)])
    out = _run(["bash", "-euo", "pipefail", "-c", script], env, tmp_path)
    assert "FAILED" not in out
    verified = [ln for ln in out.splitlines() if ln.startswith("VERIFIED s3://media/genblaze/")]
    assert len(verified) == 1, out
    key = verified[0].split("s3://media/", 1)[1]
    client: Any = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    retention = client.get_object_retention(Bucket="media", Key=key)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
