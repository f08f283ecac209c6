"""Every Redis key the ingest side uses, one function each, one namespace.

Read this file to know the whole Redis footprint. Types and TTLs:

| key                                   | type   | TTL              |
|---------------------------------------|--------|------------------|
| {ns}:job:{job}                        | hash   | retention        |
| {ns}:job:{job}:asset:{asset}          | string | retention        | AssetRecord JSON
| {ns}:job:{job}:sources                | hash   | retention        | sealed sources, until done
| {ns}:job:{job}:payload                | string | retention        | manifest JSON to finalize
| {ns}:job:{job}:done                   | set    | retention        | assets in a terminal state
| {ns}:idem:{tenant}:{key}              | string | retention        | Idempotency-Key -> job id
| {ns}:ckpt:{checkpoint_id}             | string | retention        | copy-engine checkpoint
| {ns}:lease:{job}:{asset}              | string | lease TTL (PX)   | one live worker per asset
| {ns}:attempts:{job}:{asset}           | string | retention        | deliveries seen (poison guard)
| {ns}:stats                            | hash   | none             | counters for /metrics
"""

from __future__ import annotations

NAMESPACE = "genblaze"
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600


def job_key(job_id: str) -> str:
    return f"{NAMESPACE}:job:{job_id}"


def asset_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:job:{job_id}:asset:{asset_id}"


def sources_key(job_id: str) -> str:
    return f"{NAMESPACE}:job:{job_id}:sources"


def payload_key(job_id: str) -> str:
    return f"{NAMESPACE}:job:{job_id}:payload"


def done_key(job_id: str) -> str:
    return f"{NAMESPACE}:job:{job_id}:done"


def idempotency_key(tenant: str, key: str) -> str:
    return f"{NAMESPACE}:idem:{tenant}:{key}"


def checkpoint_key(checkpoint_id: str) -> str:
    return f"{NAMESPACE}:ckpt:{checkpoint_id}"


def lease_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:lease:{job_id}:{asset_id}"


def attempts_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:attempts:{job_id}:{asset_id}"


def stats_key() -> str:
    return f"{NAMESPACE}:stats"
