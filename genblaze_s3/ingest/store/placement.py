"""The workers' tenant placement rules, published in the store for the submitters.

Why: a submitter (the API, a `QueuedStorageSink` in a pipeline process) places a
job's prefix under its tenant's root with *its own* tenants config; a worker checks
the placed destination against *its* config before it signs anything. When the two
configs differ, every asset fails `destination_not_allowed` minutes later, on the
workers. Workers write their rules here (no tokens, no secrets) keyed by their
fingerprint, with when they last said so; a submitter asks whether any live
worker would accept the destination it placed, and refuses at submit if none
would, naming the setting. No worker ever seen: nothing to compare, accepted.

| key                          | type | TTL | what                                   |
|------------------------------|------|-----|----------------------------------------|
| {ns}:placement:rules         | hash | -   | fingerprint -> rules JSON               |
| {ns}:placement:seen          | hash | -   | fingerprint -> unix time last published |
"""

from __future__ import annotations

import json
import time

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary
from genblaze_s3.ingest.tenants import TenantRegistry

# Workers publish every PUBLISH_EVERY seconds; rules not published for LIVE_FOR are a
# configuration no worker runs any more (a rolling deploy's old side, gone).
PUBLISH_EVERY = 60.0
LIVE_FOR = 600.0


@store_boundary
class Placements:
    """The workers' published placement rules (see the module doc); behind the store's
    boundary like every Redis object (StoreUnavailableError when Redis is away)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def publish(self, registry: TenantRegistry, now: float | None = None) -> str:
        """A worker says which placement rules it checks jobs with; returns their
        fingerprint."""
        fp = registry.placement_fingerprint()
        rules = json.dumps(registry.placement_rules(), sort_keys=True, separators=(",", ":"))
        p = self._redis.pipeline(transaction=False)
        p.hset(keys.placement_rules_key(), fp, rules)
        p.hset(keys.placement_seen_key(), fp, repr(time.time() if now is None else now))
        p.execute()
        return fp

    def live(self, now: float | None = None) -> dict[str, TenantRegistry]:
        """The registry of every worker configuration published within LIVE_FOR, by
        fingerprint (empty: no live worker has said anything)."""
        now = time.time() if now is None else now
        seen = self._redis.hgetall(keys.placement_seen_key())
        live = [_s(fp) for fp, ts in seen.items() if now - float(_s(ts)) <= LIVE_FOR]
        if not live:
            return {}
        raw = self._redis.hmget(keys.placement_rules_key(), live)
        return {
            fp: TenantRegistry.from_placement_rules(json.loads(r))
            for fp, r in zip(live, raw, strict=True)
            if r is not None
        }


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
