"""Deployment files agree with each other: compose runs exactly the Procfile's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genblaze_s3 import runtime
from tests.support.workers import procfile_command

ROOT = Path(__file__).resolve().parents[2]


def test_compose_services_run_the_procfile_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "minio", "api", "worker"} <= set(services)
    for service, kind in (("api", "web"), ("worker", "worker")):
        cmd = services[service]["command"][-1].replace("$$", "$")
        assert cmd == "exec " + procfile_command(kind)


def test_the_celery_app_is_importable_as_the_procfile_expects() -> None:
    import workers
    import workers.tasks  # noqa: F401 - registers the tasks, as the worker's include= does

    conf = workers.app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.task_ignore_result
    assert conf.task_time_limit > conf.task_soft_time_limit
    # Deliveries are bounded by the slice: a dead host's message is back within minutes,
    # with room above a slice (a redelivered duplicate would only back off on the lease).
    from genblaze_s3.settings import DEFAULT_SLICE_SECONDS

    vt = conf.broker_transport_options["visibility_timeout"]
    assert 6 * DEFAULT_SLICE_SECONDS <= vt <= 5 * 60
    assert {"genblaze.ingest_asset", "genblaze.finalize_job"} <= set(workers.app.tasks)


def test_worker_warms_the_task_path_before_forking_without_network() -> None:
    import socket

    import workers
    from workers import warmup

    assert "workers.warmup" in workers.app.conf.include
    real_connect = socket.socket.connect

    def no_network(self: socket.socket, address: object) -> None:
        raise AssertionError(f"warm-up must not connect anywhere: {address!r}")

    socket.socket.connect = no_network  # type: ignore[method-assign]
    try:
        warmup.warm()
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    import sys

    assert "genblaze_s3.transfer.copy" in sys.modules and "requests" in sys.modules


def test_worker_copy_settings_come_from_the_environment(monkeypatch: Any) -> None:
    from genblaze_s3.settings import load_settings

    def copy_config_from_env() -> Any:
        return runtime.copy_config(load_settings())

    for name in ("GENBLAZE_CAS_MODE", "GENBLAZE_SPOOL_DIR", "GENBLAZE_SOURCE_READ_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert copy_config_from_env() is None  # CopyConfig's defaults (cas_mode="auto")
    monkeypatch.setenv("GENBLAZE_CAS_MODE", "spool")
    monkeypatch.setenv("GENBLAZE_SPOOL_DIR", "/var/tmp")
    monkeypatch.setenv("GENBLAZE_SOURCE_READ_TIMEOUT", "5")
    cfg = copy_config_from_env()
    assert (cfg.cas_mode, cfg.spool_dir, cfg.read_timeout) == ("spool", "/var/tmp", 5.0)
    monkeypatch.setenv("GENBLAZE_CAS_MODE", "sometimes")
    with pytest.raises(ValueError, match="GENBLAZE_CAS_MODE"):
        copy_config_from_env()


def test_worker_with_an_invalid_copy_setting_refuses_to_start() -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "GENBLAZE_CAS_MODE": "sometimes",
        # Never reached: the check runs before the worker connects anywhere.
        "GENBLAZE_BROKER_URL": "redis://127.0.0.1:9/0",
    }
    out = subprocess.run(
        ["bash", "-c", "exec " + procfile_command("worker")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "invalid setting: GENBLAZE_CAS_MODE: " in out.stderr
    assert "'auto', 'spool' or 'refetch', got 'sometimes'" in out.stderr
