"""Environment settings for the queue side, read only by entry points.

Entry points (the Celery app, the API app, the CLI, and a QueuedStorageSink
constructed without explicit URLs) call these; library objects receive values.
"""

from __future__ import annotations

import os

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("GENBLAZE_REDIS_URL", DEFAULT_REDIS_URL)


def broker_url() -> str:
    """The broker defaults to the status store's Redis."""
    return os.environ.get("GENBLAZE_BROKER_URL") or redis_url()


def queue_name() -> str:
    return os.environ.get("GENBLAZE_QUEUE", "genblaze-ingest")


def retention_seconds() -> int:
    return int(os.environ.get("GENBLAZE_RETENTION_SECONDS", str(7 * 24 * 3600)))


def webhook_secret() -> str | None:
    return os.environ.get("GENBLAZE_WEBHOOK_SECRET") or None


def broker_url_or(default: str) -> str:
    """GENBLAZE_BROKER_URL when set, else `default` (the store's Redis)."""
    return os.environ.get("GENBLAZE_BROKER_URL") or default


def source_key() -> str | None:
    """Fernet key sealing raw source URLs in Redis (shared by submitters and workers)."""
    return os.environ.get("GENBLAZE_SOURCE_KEY") or None


def batch_max() -> int:
    """Most assets one queue message carries (1: a message per asset, no batching)."""
    return max(1, int(os.environ.get("GENBLAZE_BATCH_MAX", "16")))
