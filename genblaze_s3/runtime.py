"""The one composition root: settings in, the objects each process runs on out.

Why one module: the API server, the workers and the CLI build their store, tenants,
policies, signer and copy configuration here from one ``Settings`` (read once, at their
entry point), so two processes of one deployment cannot wire the same setting two ways.
The submit side's wiring is :meth:`IngestService.from_settings`, which the API (through
:func:`ingest_service`) and ``QueuedStorageSink`` share; the types that are built from
one or two settings carry their own ``from_settings`` (``FetchPolicy``,
``DestinationPolicy``, ``StatusStore``, ``registry_from_settings``).

Every builder raises ``SettingsError`` naming the variable for a value it refuses;
:func:`check_worker_settings` runs them all so a worker fails at start, not per job.
Never imports Celery, FastAPI or the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.finalize.signing import ManifestSigner
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.operators import OperatorRegistry, operators_for
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import CelerySender, TaskSender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.tenants import TenantRegistry, registry_from_settings
from genblaze_s3.ingest.worker.asset_copy import WorkerContext
from genblaze_s3.ingest.worker.refresh import SourceRefresher
from genblaze_s3.ingest.worker.sources import SourceRules
from genblaze_s3.settings import Settings, SettingsError, env_name
from genblaze_s3.transfer.config import CopyConfig, FetchPolicy
from genblaze_s3.transfer.fetch import pin_url

# Settings field -> CopyConfig field: the operator's source / CAS overrides.
_COPY_OVERRIDES = {
    "source_read_timeout": "read_timeout",
    "source_min_rate": "min_rate",
    "source_min_rate_grace": "min_rate_grace",
    "source_deadline": "total_deadline",
    "cas_mode": "cas_mode",
    "spool_dir": "spool_dir",
}


def tenant_registry(config: Settings) -> TenantRegistry:
    """The tenants: GENBLAZE_TENANTS_FILE, else GENBLAZE_API_TOKENS (ingest/tenants.py)."""
    return registry_from_settings(config)


def operator_registry(config: Settings) -> OperatorRegistry:
    """The operators of the fleet view: the tenants file's `operators` table, else
    GENBLAZE_OPERATOR_TOKENS (ingest/operators.py); none may share a tenant's token."""
    return operators_for(config, tenant_registry(config))


def copy_config(config: Settings) -> CopyConfig | None:
    """CopyConfig with the operator's source / CAS overrides; None when none is set.

    Raises SettingsError (naming the variables) for a value CopyConfig refuses.
    """
    overrides = {
        field: getattr(config, name)
        for name, field in _COPY_OVERRIDES.items()
        if getattr(config, name) is not None
    }
    if not overrides:
        return None
    try:
        return CopyConfig(**overrides)
    except ValueError as exc:
        names = ", ".join(env_name(n) for n in _COPY_OVERRIDES if getattr(config, n) is not None)
        raise SettingsError(f"{names}: {exc}") from exc


def source_rules(config: Settings) -> SourceRules:
    """How often a worker refreshes a source URL and how long it waits for one."""
    return SourceRules(max_refreshes=config.max_refreshes, ready_wait=config.source_ready_wait)


def manifest_signer(config: Settings) -> ManifestSigner | None:
    """The signer of worker-written manifests, when GENBLAZE_SIGNING_KEY is set.

    Raises SettingsError naming the variable (never its value) for an unreadable key.
    """
    key = config.secret("signing_key")
    if not key:
        return None
    try:
        return ManifestSigner.from_setting(key)
    except ValueError as exc:  # SignatureError: not an Ed25519 key
        raise SettingsError(f"GENBLAZE_SIGNING_KEY: {exc}") from None


def check_worker_settings(config: Settings) -> None:
    """Build everything a worker builds from its settings, so a bad value stops it at
    start (SettingsError naming the variable) instead of failing every job."""
    copy_config(config)
    tenant_registry(config)
    manifest_signer(config)


def store_client(config: Settings, **options: Any) -> redis.Redis:
    """The Redis client of the status store (GENBLAZE_REDIS_URL)."""
    return redis.Redis.from_url(config.redis_url, **options)


def status_store(config: Settings, client: redis.Redis | None = None) -> StatusStore:
    """The status store on GENBLAZE_REDIS_URL, keeping records GENBLAZE_RETENTION_SECONDS."""
    return StatusStore.from_settings(config, client or store_client(config))


def celery_sender(config: Settings, broker_url: str | None = None) -> CelerySender:
    """The producer of the API and the sink: GENBLAZE_BROKER_URL (default: the store's
    Redis), with the workers' visibility timeout."""
    return CelerySender(
        broker_url or config.effective_broker_url, visibility_timeout=config.visibility_timeout
    )


def ingest_service(config: Settings, store: StatusStore, sender: TaskSender) -> IngestService:
    """The submit side of the API (the sink builds the same through from_settings)."""
    return IngestService.from_settings(config, store, sender)


def _refresher(fetch_policy: FetchPolicy, sealer: SourceSealer, tenants: TenantRegistry) -> Any:
    """Fresh source URLs: refresh_url POSTs go through the same SSRF guard as sources and
    are signed with the job's tenant webhook secret, like its webhooks."""
    return SourceRefresher(
        pin=lambda url: pin_url(url, fetch_policy),
        secret_for=lambda tenant: tenants.get(tenant).webhook_secret,
        ca_bundle=fetch_policy.ca_bundle,
        unseal=sealer.unseal,
    )


def worker_context(
    config: Settings, backend_for: Callable[[DestinationSpec], Any]
) -> WorkerContext:
    """What every task of a worker process needs, built once from the worker's settings.

    `backend_for` gives the S3 backend of a destination, signed with the worker's own
    credentials (workers/context.py keeps one per destination).
    """
    client = store_client(config)
    sealer = SourceSealer(config.secret("source_key"))
    tenants = tenant_registry(config)
    fetch_policy = FetchPolicy.from_settings(config)
    return WorkerContext(
        redis=client,
        store=status_store(config, client),
        backend_for=backend_for,
        policy=DestinationPolicy.from_settings(config),
        fetch_policy=fetch_policy,
        copy_config=copy_config(config),
        lease_ttl_ms=config.lease_ttl_ms,
        max_attempts=config.max_attempts,
        max_retries=config.max_retries,
        sealer=sealer,
        slice_seconds=config.slice_seconds or None,
        tenants=tenants,
        refresher=_refresher(fetch_policy, sealer, tenants),
        source_rules=source_rules(config),
        signer=manifest_signer(config),
    )
