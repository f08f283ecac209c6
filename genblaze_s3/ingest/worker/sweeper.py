"""The sweeper: re-enqueue what a broker lost.

A Redis broker restarted without persistence, or a message an operator deleted,
leaves work no delivery will ever do. The store knows better than the broker:

- an asset in ``{ns}:inflight`` (a delivery started it) that is not terminal, has no
  live lease and was last looked at more than ``grace`` seconds ago gets a new
  ``ingest_asset`` message;
- a job in ``{ns}:finalize-due`` (its assets are all terminal) that is still not
  terminal, with no live finalizer, gets a new ``finalize_job`` message;
- a job in ``{ns}:queued`` (recorded at submit and at each retry) that was looked at
  more than ``grace`` seconds ago and still has assets in the ``queued`` state gets
  a new message for each of those nobody holds a lease on: a message lost before
  any worker took it (a Redis broker restarted without persistence, a purged
  RabbitMQ queue) delays its job by at most ``grace`` + ``interval``, never strands
  it. A job leaves the set once none of its assets is queued. In a backlog longer
  than ``grace`` this sends duplicates, further and further apart (2, 4 ... 32 x
  ``grace``): a duplicate finds the asset started or done.

Exactly one sweep runs per interval across the fleet: the first worker to take the
``{ns}:sweeper`` lock (SET NX PX, left to expire, never released) sweeps, every
other one skips, so no beat process is needed. A sweep is idempotent: each entry
it acts on is re-scored ``now``, so the next sweep leaves it alone for another
``grace`` seconds, and a duplicate message is harmless anyway (leases, terminal
states). Its work is counted in the store's stats, which ``/metrics`` exports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genblaze_s3.ingest.errors import StoreUnavailableError
from genblaze_s3.ingest.models import TERMINAL_ASSET_STATES, TERMINAL_JOB_STATES, AssetState
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.delivery_state import DeliveryState, asset_ref
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import FINALIZE_JOB, INGEST_ASSET, INGEST_ASSETS, plan_chunks

logger = logging.getLogger("genblaze_s3.ingest.worker.sweeper")

Send = Callable[[str, list[Any], float], None]

DEFAULT_INTERVAL = 30.0  # seconds between sweeps, fleet-wide
DEFAULT_GRACE = 60.0  # an unleased in-flight asset is lost after this (> the lease TTL)
BATCH = 500  # entries looked at per key and sweep: a sweep stays short
RESEND_BATCH = 16  # queued assets re-sent per message (the default GENBLAZE_BATCH_MAX)


@dataclass(frozen=True)
class SweepReport:
    """What one call did: ``ran`` False when another worker holds this interval's lock."""

    ran: bool
    assets: int = 0
    jobs: int = 0


def sweep_once(
    deliveries: DeliveryState,
    store: StatusStore,
    send: Send,
    *,
    interval: float = DEFAULT_INTERVAL,
    grace: float = DEFAULT_GRACE,
    now: float | None = None,
) -> SweepReport:
    """Sweep once if this interval's lock is free; see the module doc."""
    if not deliveries.take_sweep_turn(interval):
        return SweepReport(ran=False)
    now = time.time() if now is None else now
    assets = _sweep_assets(deliveries, store, send, now, grace)
    assets += _sweep_queued(deliveries, store, send, now, grace)
    jobs = _sweep_jobs(deliveries, store, send, now, grace)
    store.incr_stat("sweeps_total")
    if assets:
        store.incr_stat("swept_assets_total", assets)
    if jobs:
        store.incr_stat("swept_jobs_total", jobs)
    if assets or jobs:
        logger.warning("sweeper re-enqueued %d asset(s) and %d finalize(s)", assets, jobs)
    return SweepReport(ran=True, assets=assets, jobs=jobs)


def _sweep_assets(
    deliveries: DeliveryState, store: StatusStore, send: Send, now: float, grace: float
) -> int:
    def settled(member: str) -> bool:
        record = store.get_asset(*asset_ref(member))
        return record is None or record.state in TERMINAL_ASSET_STATES

    return _sweep_due(
        deliveries,
        keys.inflight_key(),
        now - grace,
        now,
        settled=settled,
        lease_key=lambda member: keys.lease_key(*asset_ref(member)),
        resend=lambda member: send(INGEST_ASSET, list(asset_ref(member)), 0.0),
    )


def _sweep_jobs(
    deliveries: DeliveryState, store: StatusStore, send: Send, now: float, grace: float
) -> int:
    def settled(job_id: str) -> bool:  # done, gone, or retried meanwhile
        state = store.job_state(job_id)
        return state is None or state in TERMINAL_JOB_STATES or store.remaining(job_id) > 0

    return _sweep_due(
        deliveries,
        keys.finalize_due_key(),
        now - grace,
        now,
        settled=settled,
        lease_key=keys.finalize_lease_key,
        resend=lambda job_id: send(FINALIZE_JOB, [job_id], 0.0),
    )


def _sweep_queued(
    deliveries: DeliveryState, store: StatusStore, send: Send, now: float, grace: float
) -> int:
    """Re-send the queued assets of jobs whose messages may be lost (see the module doc).

    Idempotent: each job acted on is re-scored into the future (the first resend after
    ``grace``, the next ones 2, 4 ... 32 x ``grace`` apart, so a backlog that is only slow
    is not flooded), and a duplicate delivery is harmless (leases, terminal states).
    """
    key = keys.queued_jobs_key()
    sent = 0
    for job_id in deliveries.due(key, now - grace, BATCH):
        state = store.job_state(job_id)
        queued = (
            store.asset_ids_in(job_id, AssetState.QUEUED)
            if state is not None and state not in TERMINAL_JOB_STATES
            else []
        )
        if not queued:
            deliveries.forget_queued(job_id)
            continue
        # Next look after grace, then 2, 4... x grace (at most 32 x): a first lost message
        # costs at most grace + interval, a long backlog only a few duplicates.
        resends = deliveries.count_resend(job_id)
        deliveries.rescore(key, job_id, now + grace * (2 ** min(resends, 5) - 1))
        free = [a for a in queued if not deliveries.is_leased(keys.lease_key(job_id, a))]
        for chunk in plan_chunks(free, RESEND_BATCH):
            if len(chunk) == 1:
                send(INGEST_ASSET, [job_id, chunk[0]], 0.0)
            else:
                send(INGEST_ASSETS, [job_id, chunk], 0.0)
        sent += len(free)
    return sent


def _sweep_due(
    deliveries: DeliveryState,
    key: str,
    due_before: float,
    now: float,
    *,
    settled: Callable[[str], bool],
    lease_key: Callable[[str], str],
    resend: Callable[[str], None],
) -> int:
    """The sweep of one sorted set: drop settled members, re-score the rest ``now`` and
    resend those nobody holds a lease on. Returns how many were resent."""
    n = 0
    for member in deliveries.due(key, due_before, BATCH):
        if settled(member):
            deliveries.drop(key, member)
            continue
        deliveries.rescore(key, member, now)
        if deliveries.is_leased(lease_key(member)):
            continue  # a delivery or finalizer is working on it (a long, unsliced copy)
        resend(member)
        n += 1
    return n


def run_sweeper(
    stop: threading.Event,
    sweep: Callable[[], SweepReport],
    *,
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """Call ``sweep`` every ``interval`` seconds until ``stop`` is set; never raises.

    Every worker runs this loop; the lock inside `sweep_once` makes one of them sweep.
    """
    while not stop.wait(interval):
        try:
            sweep()
        except StoreUnavailableError as exc:  # the store is away: the next tick tries again
            logger.info("sweeper skipped: %s", type(exc).__name__)
        except Exception:
            logger.exception("sweeper failed; trying again next interval")
