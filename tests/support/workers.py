"""The queue stack with the suite's defaults, on the one supervisor (genblaze_s3.local).

Workers and the API run the Procfile's lines through genblaze_s3.local.stack, in
their own process groups, with the worker's own S3 credentials; `stop()` ends each
whole group, so no process outlives a test. What the suite adds: two tenants'
tokens, a short lease (a killed worker's asset is picked up within seconds), a
webhook secret and a fixed source key (source URLs sealed at rest, as in production).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from genblaze_s3.local.stack import QueueStack, S3Endpoint, start_worker
from genblaze_s3.local.stack import start_stack as start_local_stack
from genblaze_s3.local.supervisor import Process, procfile_command

__all__ = [
    "Process",
    "QueueStack",
    "StartStack",
    "procfile_command",
    "start_stack",
    "start_worker",
]

# The `start_module_stack` fixture (tests/integration/conftest.py): start_stack's
# keywords, the module's Redis and SeaweedFS filled in.
StartStack = Callable[..., QueueStack]

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
        extra_env={**TEST_ENV, **(extra_env or {})},
    )
