"""The queue stack with the suite's defaults, on the one supervisor (genblaze_s3.local).

Workers and the API run the Procfile's lines through genblaze_s3.local.stack, in
their own process groups, with the worker's own S3 credentials; `stop()` ends each
whole group, so no process outlives a test. What the suite adds: two tenants'
tokens, a short lease (a killed worker's asset is picked up within seconds), a
webhook secret and a fixed source key (source URLs sealed at rest, as in production).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from genblaze_s3.local.stack import QueueStack, S3Endpoint, start_worker
from genblaze_s3.local.stack import start_stack as start_local_stack
from genblaze_s3.local.supervisor import Process, procfile_command

__all__ = [
    "AMQP_URL",
    "Process",
    "QueueStack",
    "StartStack",
    "delete_queue",
    "procfile_command",
    "require_rabbitmq",
    "start_stack",
    "start_worker",
]

# The `start_module_stack` fixture (tests/integration/conftest.py): start_stack's
# keywords, the module's Redis and SeaweedFS filled in.
StartStack = Callable[..., QueueStack]

# The machine's RabbitMQ (shared by every checkout on it): queue and node names must be unique.
AMQP_URL = os.environ.get("GENBLAZE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

TEST_TOKENS = {"acme": "tok-acme", "globex": "tok-globex"}
TEST_ENV = {
    "GENBLAZE_LEASE_TTL_MS": "6000",
    "GENBLAZE_WEBHOOK_SECRET": "whsec-test",
    # A fixed test key (Fernet format): source URLs are sealed at rest in Redis.
    "GENBLAZE_SOURCE_KEY": "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA=",
}


def start_stack(
    *,
    redis_url: str,
    seaweed: S3Endpoint,
    log_dir: Path,
    broker_url: str | None = None,
    queue: str = "genblaze-ingest",
    n_workers: int = 2,
    concurrency: int = 1,
    api: bool = True,
    tokens: Mapping[str, str] | None = None,
    worker_prefix: str = "w",
    extra_env: Mapping[str, str] | None = None,
) -> QueueStack:
    """Start the API and workers; on any failure stop what was started and re-raise."""
    return start_local_stack(
        redis_url=redis_url,
        s3=seaweed,
        log_dir=log_dir,
        tokens=tokens or TEST_TOKENS,
        broker_url=broker_url,
        queue=queue,
        n_workers=n_workers,
        concurrency=concurrency,
        api=api,
        worker_prefix=worker_prefix,
        extra_env={**TEST_ENV, **(extra_env or {})},
    )


def require_rabbitmq(url: str = AMQP_URL) -> None:
    """Fail the test loudly when RabbitMQ is unreachable: its rows must run, never skip."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the same verdict
        pytest.fail(f"RabbitMQ at {url} is unreachable: {exc!r}")


def delete_queue(queue: str, url: str = AMQP_URL) -> None:
    """Delete a test's queue on the shared RabbitMQ (after its workers stopped)."""
    from kombu import Connection

    with Connection(url) as conn:
        conn.default_channel.queue_delete(queue)
