"""Refuse at submit a job no live worker would write: the tenants configs differ.

Why at submit: a submitter places a job's prefix with its own tenants config and
the workers check it against theirs; when the two differ (a pipeline process
started without GENBLAZE_TENANTS_FILE, an API on an older file) every asset used
to fail `destination_not_allowed` minutes later, on the workers. Here the
submitter asks the workers' published rules (`store/placement.py`) the workers'
own question (`TenantRegistry.owns`) and fails at once, naming the setting.
"""

from __future__ import annotations

import threading
import time

import redis

from genblaze_s3.ingest.errors import StoreUnavailableError, TenantsConfigMismatchError
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.store.placement import Placements
from genblaze_s3.ingest.tenants import TenantRegistry

REFRESH_SECONDS = 30.0  # the workers' rules are read at most this often per process


class WorkerPlacementCheck:
    """`check(tenant, placed)` against the live workers' rules, read once per refresh."""

    def __init__(
        self, client: redis.Redis, registry: TenantRegistry, refresh: float = REFRESH_SECONDS
    ):
        self._placements = Placements(client)
        self._registry = registry
        self._refresh = refresh
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._workers: dict[str, TenantRegistry] = {}
        self._current()  # read with the submitter's setup, not on its first submit

    def _current(self) -> dict[str, TenantRegistry]:
        with self._lock:
            now = time.monotonic()
            if now - self._loaded_at >= self._refresh:
                try:
                    self._workers = self._placements.live()
                except StoreUnavailableError:  # cannot tell now; the store write says why
                    return {}
                self._loaded_at = now
            return self._workers

    def check(self, tenant: str, placed: DestinationSpec) -> None:
        """Raise TenantsConfigMismatchError when no live worker configuration would
        write `placed` for `tenant` (none seen at all: nothing to compare, accepted)."""
        workers = self._current()
        if not workers:
            return
        if any(reg.owns(reg.get(tenant), placed) for reg in workers.values()):
            return
        here = self._registry.placement_fingerprint()
        roots = sorted({repr(reg.get(tenant).prefix_root or "(none)") for reg in workers.values()})
        raise TenantsConfigMismatchError(
            f"tenant {tenant!r}: this process places the job at "
            f"{placed.bucket}/{placed.prefix} with its own tenants config (placement "
            f"{here}), which no live worker accepts (workers' placement "
            f"{', '.join(sorted(workers))}; their prefix root for {tenant!r}: "
            f"{', '.join(roots)}): give this process the workers' GENBLAZE_TENANTS_FILE "
            "or GENBLAZE_API_TOKENS (or pass their TenantRegistry as `tenants=`)"
        )
