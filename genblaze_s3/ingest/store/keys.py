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
| {ns}:retries:{job}:{asset}            | string | retention        | retryable failures retried
| {ns}:finalize-lease:{job}             | string | lease TTL (PX)   | one live finalizer per job
| {ns}:finalize-retries:{job}           | string | retention        | failed manifest writes retried
| {ns}:inflight                         | zset   | none             | started assets, by next check
| {ns}:finalize-due                     | zset   | none             | finalizable jobs, next check
| {ns}:queued                           | zset   | none             | jobs with queued assets
| {ns}:queued-resends                   | hash   | none             | sweeper resends per job
| {ns}:sweeper                          | string | sweep interval   | one sweep per interval
| {ns}:placement:rules / :seen          | hash   | none             | workers' placement rules
| {ns}:stats                            | hash   | none             | counters for /metrics
| {ns}:active:{tenant}                  | zset   | none (pruned)    | a tenant's unfinished jobs
| {ns}:job:{job}:assets                 | zset   | retention        | every asset, score = seq
| {ns}:job:{job}:assets:{state}         | zset   | retention        | assets in one state
| {ns}:tenant:{tenant}:jobs             | zset   | 2 x retention    | job ids by created time
| {ns}:tenant:{tenant}:jobs:{state}     | zset   | 2 x retention    | the same, one job state
| {ns}:tenant:{tenant}:label:{k}={v}    | zset   | 2 x retention    | the same, one label
| {ns}:events:{job}                     | pubsub | -                | deltas for SSE watchers
| {ns}:tenants                          | set    | none             | every tenant that submitted
| {ns}:workers                          | hash   | none (pruned)    | worker host -> heartbeat JSON
| {ns}:series:{hour}                    | hash   | 25 h             | per-minute finished counters
| {ns}:audit                            | stream | none (capped)    | operator actions, newest last
| {ns}:ui-session:{sha256(session id)}  | hash   | session lifetime | a /ui sign-in

The per-job counters that make a poll O(1) (asset counts by state, bytes, error
codes) live as fields of the job hash, next to its version (see ingest/counters.py).
A sorted set cannot expire its members, so tenant indexes are trimmed by age at each
submit and by absence of the job hash at each listing; the set itself expires when
nothing was added to it for twice the retention.
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


def asset_checkpoint_id(job_id: str, asset_id: str) -> str:
    """The copy engine's checkpoint id of one asset's copy."""
    return f"{job_id}:{asset_id}"


def checkpoint_key(checkpoint_id: str) -> str:
    return f"{NAMESPACE}:ckpt:{checkpoint_id}"


def lease_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:lease:{job_id}:{asset_id}"


def attempts_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:attempts:{job_id}:{asset_id}"


def stats_key() -> str:
    return f"{NAMESPACE}:stats"


def retries_key(job_id: str, asset_id: str) -> str:
    return f"{NAMESPACE}:retries:{job_id}:{asset_id}"


def finalize_retries_key(job_id: str) -> str:
    return f"{NAMESPACE}:finalize-retries:{job_id}"


def finalize_lease_key(job_id: str) -> str:
    return f"{NAMESPACE}:finalize-lease:{job_id}"


def inflight_key() -> str:
    """Assets a delivery started (member ``"{job} {asset}"``), scored by when the sweeper
    should next look at them; an asset leaves when it reaches a terminal state."""
    return f"{NAMESPACE}:inflight"


def finalize_due_key() -> str:
    """Jobs whose assets are all terminal, scored by when the sweeper should next look;
    a job leaves when it is terminal."""
    return f"{NAMESPACE}:finalize-due"


def queued_jobs_key() -> str:
    """Jobs that have (or had) assets no delivery has started, scored by when the sweeper
    should next look; a job leaves once none of its assets is queued (or it is terminal).
    Why: a queued asset has no lease and is in no other set, so a lost message (a Redis
    broker restarted without persistence, a purged queue) would leave it queued forever."""
    return f"{NAMESPACE}:queued"


def queued_resends_key() -> str:
    """How often the sweeper re-sent each queued job's assets (its backoff)."""
    return f"{NAMESPACE}:queued-resends"


def placement_rules_key() -> str:
    """Workers' tenant placement rules by fingerprint (store/placement.py)."""
    return f"{NAMESPACE}:placement:rules"


def placement_seen_key() -> str:
    """When each placement fingerprint was last published by a worker (unix time)."""
    return f"{NAMESPACE}:placement:seen"


def sweeper_lock_key() -> str:
    return f"{NAMESPACE}:sweeper"


def active_jobs_key(tenant: str) -> str:
    return f"{NAMESPACE}:active:{tenant}"


def job_assets_key(job_id: str, state: str | None = None) -> str:
    base = f"{NAMESPACE}:job:{job_id}:assets"
    return base if state is None else f"{base}:{state}"


def tenant_jobs_key(tenant: str, state: str | None = None) -> str:
    base = f"{NAMESPACE}:tenant:{tenant}:jobs"
    return base if state is None else f"{base}:{state}"


def tenant_label_key(tenant: str, label: str) -> str:
    """`label` is 'key=value' (or a bare 'key')."""
    return f"{NAMESPACE}:tenant:{tenant}:label:{label}"


def events_channel(job_id: str) -> str:
    return f"{NAMESPACE}:events:{job_id}"


def tenants_key() -> str:
    """Every tenant name a job was recorded for (the fleet view's bulk actions look
    through these tenants' indexes; open tenants have no registry entry)."""
    return f"{NAMESPACE}:tenants"


def workers_key() -> str:
    """Worker host name -> its last heartbeat (JSON), written by each worker's main process."""
    return f"{NAMESPACE}:workers"


SERIES_TTL_SECONDS = 25 * 3600  # the fleet view charts the last hours; a day is kept


def series_key(hour: int) -> str:
    """Finished-asset counters of one hour (`hour` = epoch seconds // 3600), one field
    per minute and counter (`{minute}:{name}`): a chart of N hours reads N + 1 hashes."""
    return f"{NAMESPACE}:series:{hour}"


def audit_key() -> str:
    return f"{NAMESPACE}:audit"


def ui_session_key(session_digest: str) -> str:
    """Keyed by the digest of the session id: a reader of Redis cannot sign in with it."""
    return f"{NAMESPACE}:ui-session:{session_digest}"
