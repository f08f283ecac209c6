"""What a job costs, pinned: S3 requests, Redis commands and Celery messages per job.

Why a test and not only a bench: the copy engine's rows regressed once because nothing
failed when a HEAD was added to every key-known write. Here a change that adds an S3
request, a store command or a queue message to a small asset, a multipart asset or a
3-asset run with a locked manifest (key-known and content-addressed) fails, and the
message names what grew. A cut lowers a pin (the diff shows a reviewer the cut).

The stack is the Procfile's (one worker, one pool child: a job's deliveries run in a
fixed order), on real services: SeaweedFS behind a counting S3 proxy, the module's
private Valkey as the store and a second private Valkey as the broker, the test CDN
as the source. Defaults everywhere except: the sweeper and the workers' heartbeats are
off (their cost is per interval, not per job: one HSET per worker every 2 s), the API is
not started (it serves reads only) and the lease TTL is the production default (the
suite's short one renews every 2 s).

Counts of a finished job do not depend on time (tests/support/cost.py waits until the
broker acked every message the job published), with one exception said out loud: a
copy that runs longer than 0.5 s writes progress and polls for cancel every 0.5 s, so
each Redis count may exceed its pin by what those paced writes cost over the job's
recorded copy seconds (the store's own `copy_seconds_sum`), and by nothing else.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from genblaze_core.models.manifest import Manifest
from genblaze_core.storage.base import KeyStrategy, ObjectLockConfig

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.submit.submission import run_from_urls
from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis
from genblaze_s3.settings import load_settings
from tests.support.cdn import CDNServer
from tests.support.cost import BrokerCounter, Cost, command_delta, commandstats, differences
from tests.support.s3proxy import S3FaultProxy, make_backend
from tests.support.workers import QueueStack, start_stack

KIB, MIB = 1024, 1024 * 1024
QUEUE = "genblaze-cost"
PACE_SECONDS = 0.5  # ProgressThrottle's interval for progress writes
# What one paced interval may add: a progress write (the asset CAS script: EVAL, and its
# GET, SET, HSET updated_at, HINCRBY version, PUBLISH; its byte deltas only move from the
# terminal write to it) and two cancel polls (HGET of the job's state, every 0.25 s: a
# cancel stops the reads within a second, issue 21).
PACED_PER_INTERVAL = Counter(
    {"eval": 1, "get": 1, "set": 1, "hset": 1, "hincrby": 1, "publish": 1, "hget": 2}
)

KEY_KNOWN, CAS = KeyStrategy.HIERARCHICAL, KeyStrategy.CONTENT_ADDRESSABLE


@dataclass(frozen=True)
class Endpoint:
    """Where the workers write (the proxy) and the credentials they sign with."""

    endpoint_url: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedRedis]:
    """The broker's own Valkey: its LPUSH / HDEL counts are the queue's alone."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(seaweed: SeaweedS3) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(seaweed.endpoint_url) as p:
        yield p


@pytest.fixture(scope="module")
def cost_stack(
    module_redis: EmbeddedRedis,
    broker: EmbeddedRedis,
    proxy: S3FaultProxy,
    seaweed: SeaweedS3,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[QueueStack]:
    s = start_stack(
        redis_url=module_redis.url,
        seaweed=Endpoint(proxy.endpoint_url, seaweed.access_key, seaweed.secret_key),
        log_dir=tmp_path_factory.mktemp("cost-logs"),
        broker_url=broker.url,
        queue=QUEUE,
        n_workers=1,
        concurrency=1,
        api=False,
        extra_env={
            "GENBLAZE_SWEEP_INTERVAL": "0",
            "GENBLAZE_HEARTBEAT_INTERVAL": "0",
            "GENBLAZE_LEASE_TTL_MS": "30000",
        },
    )
    try:
        yield s
    finally:
        s.stop()


@dataclass
class Meter:
    """Runs one job through the cost stack and returns what it cost."""

    stack: QueueStack
    seaweed: SeaweedS3
    proxy: S3FaultProxy
    cdn: CDNServer
    store: redis.Redis
    broker: BrokerCounter

    def sink(self, bucket: str, strategy: KeyStrategy, *, locked: bool) -> QueuedStorageSink:
        """A sink as a user builds one; built before counting (its setup is per process)."""
        until = datetime.now(UTC) + timedelta(days=1)
        return QueuedStorageSink(
            make_backend(self.seaweed, bucket, endpoint_url=self.proxy.endpoint_url),
            key_strategy=strategy,
            manifest_lock=ObjectLockConfig(retain_until=until) if locked else None,
            redis_url=self.stack.redis_url,
            broker_url=self.stack.broker_url,
            queue=QUEUE,
            destination_policy=DestinationPolicy.from_settings(
                load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": self.proxy.endpoint_url})
            ),
        )

    def run(
        self, bucket: str, strategy: KeyStrategy, sizes: list[int], *, locked: bool = False
    ) -> tuple[Cost, Counter[str]]:
        """(the job's cost, the paced allowance) for one job of fresh random assets."""
        tag = os.urandom(6).hex()
        urls = [
            (self.cdn.add(f"/cost/{tag}/{i}.bin", os.urandom(n)), "application/octet-stream", None)
            for i, n in enumerate(sizes)
        ]
        run = run_from_urls(urls)
        sink = self.sink(bucket, strategy, locked=locked)
        copy_seconds_before = self._copy_seconds()
        self.broker.reset()
        s3_mark, cdn_mark = len(self.proxy.log), len(self.cdn.requests)
        before = commandstats(self.store)
        sink.write_run(run, Manifest.from_run(run))
        self.broker.wait_settled()
        after = commandstats(self.store)
        cost = Cost(
            s3=Counter(e.operation for e in self.proxy.log[s3_mark:]),
            redis=command_delta(before, after),
            messages=self.broker.published(),
            source=Counter(r.method for r in self.cdn.requests[cdn_mark:]),
        )
        job = sink.last_job
        assert job is not None
        final = job.status()
        assert final.state == JobState.SUCCEEDED, final.model_dump_json()
        copy_seconds = self._copy_seconds() - copy_seconds_before
        # Intervals begun, not completed: a cancel poll falls due 0.25 s into a copy, so
        # a 0.3 s copy has made one (the floor of whole intervals allowed none and the
        # multipart row failed on a loaded machine with `hget grew: 7 (pinned 6)`).
        intervals = math.ceil(copy_seconds / PACE_SECONDS)
        paced = Counter({k: v * intervals for k, v in PACED_PER_INTERVAL.items()})
        return cost, paced

    def _copy_seconds(self) -> float:
        raw = self.store.hget(keys.stats_key(), stat_names.COPY_SECONDS_SUM)
        return float(raw or 0)


@pytest.fixture(scope="module")
def meter(
    cost_stack: QueueStack,
    seaweed: SeaweedS3,
    proxy: S3FaultProxy,
    cdn: CDNServer,
    broker: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Meter]:
    """The meter, after one warm-up job of each kind: the server's script cache and the
    worker's connections are warm, so no pin depends on which test ran first."""
    store = redis.Redis.from_url(cost_stack.redis_url)
    counter = BrokerCounter(redis.Redis.from_url(broker.url))
    m = Meter(cost_stack, seaweed, proxy, cdn, store, counter)
    for strategy in (KEY_KNOWN, CAS):
        for locked in (False, True):
            name = seaweed.create_bucket(f"w-{os.urandom(5).hex()}", object_lock=locked)
            try:
                m.run(name, strategy, [64 * KIB, 20 * MIB], locked=locked)
            finally:
                seaweed.drop_bucket(name)
    try:
        yield m
    finally:
        store.close()
        counter.client.close()


def _pin(
    s3: dict[str, int], redis_cmds: dict[str, int], *, messages: int, source: dict[str, int]
) -> Cost:
    return Cost(Counter(s3), Counter(redis_cmds), messages, Counter(source))


def _add(base: dict[str, int], extra: dict[str, int], replace: dict[str, int]) -> dict[str, int]:
    """`base` plus `extra`, then the counts in `replace` set as they are."""
    out = Counter(base)
    out.update(extra)
    return {**out, **replace}


# The store commands of a one-asset job that no copy changes: submit (MULTI..EXEC),
# lease + attempt count, start, the job to running, finish, finalize lease, to
# finalizing, to succeeded, and the bookkeeping sets around them (the submit's ZADD to
# the sweeper's queued set, issue 21: a lost first message is re-sent, in its MULTI).
# The lease's take rides the snapshot's pipeline as an EVAL (a Script there would cost
# a SCRIPT EXISTS trip): one EVALSHA per asset became an EVAL, one round trip saved.
# The lease's release rides the asset's terminal write (an EVAL there, done only if that
# write landed: one more GET, inside the script): another EVALSHA became an EVAL, and
# another round trip saved. The job's end drops its worker copy of the meta (HDEL of
# `meta_core`, in the transition's MULTI): the price of per-asset reads that no longer
# grow with the job.
# The fleet view adds, inside calls already made (no round trip): SADD of the tenant at
# submit, and per stored asset two HINCRBY and one EXPIRE of this minute's series in the
# finish script.
# The job's move to running rides the first start's pipeline as an EVAL (GET of the
# asset record it wrote, HMGET of the job): no WATCH, MULTI, EXEC, HMGET of its own.
# Finalize reads the meta, the state and the payload in one trip (one HMGET and a GET
# for two HGETs and a GET), reads no state back after a move that landed (two HGETs
# fewer), takes its lease with the finalize-due note (ZADD + SET NX, one trip) and ends
# it with one EVAL (release, ZREM of the note, DEL of the retry count: was an EVALSHA,
# a ZREM and a DEL, three trips).
_ONE_ASSET = {
    "hincrby": 22, "expire": 17, "zadd": 12, "zrem": 7, "hset": 7, "hget": 2, "set": 6,
    "publish": 5, "exec": 3, "multi": 3, "hmget": 5, "del": 4, "watch": 2,
    "eval": 6, "zremrangebyscore": 2, "scard": 1, "mget": 1, "incr": 1, "sadd": 2,
    "hincrbyfloat": 1, "hdel": 2,
}  # fmt: skip
_THREE_ASSETS = {
    "hincrby": 52, "expire": 27, "zadd": 18, "set": 14, "zrem": 13, "hset": 11, "hget": 6,
    "publish": 9, "del": 8, "eval": 14, "hmget": 7, "exec": 3, "multi": 3,
    "scard": 3, "watch": 2, "incr": 3, "sadd": 4, "hincrbyfloat": 3, "hdel": 4,
    "zremrangebyscore": 2, "mget": 1,
}  # fmt: skip
# A chunk's assets start side by side: each whose snapshot still saw the job queued sends
# the job's move (job_start.py), which finds it running (EVAL: GET, HMGET) unless it is
# the one that moves it. Up to two of a 3-asset run's starts may be such losers.
_RACING_STARTS = {"eval": 2, "get": 2, "hmget": 2}
# A multipart copy adds its checkpoint: SET at create and per part, DEL at the end.
_CHECKPOINT = {"set": 3, "del": 1}

# Today's counts per job. A cut lowers them; nothing may raise them unnoticed.
# GET counts: the asset CAS script's own GETs, the lease end's (one per asset), plus
# checkpoint reads (one per small asset, key-known or content-addressed; a multipart copy
# reads it twice: at start and to resume).
PINNED: dict[tuple[str, KeyStrategy], Cost] = {
    # S3: HeadBucket (the worker's first request to a bucket), HEAD before the asset PUT
    # (key-known only), PUT, HEAD (manifest exists?) + PUT of the manifest.
    ("small", KEY_KNOWN): _pin(
        {"HeadBucket": 1, "HeadObject": 2, "PutObject": 2},
        {**_ONE_ASSET, "get": 10},
        messages=1,  # submit's ingest_asset; its delivery finalizes in place
        source={"GET": 1},
    ),
    ("small", CAS): _pin(
        {"HeadBucket": 1, "HeadObject": 1, "PutObject": 2},
        {**_ONE_ASSET, "get": 10},
        messages=1,
        source={"GET": 1},
    ),
    # Multipart: Create, 2 x UploadPart, Complete; a HEAD before (key-known: the object;
    # content-addressed: the CAS key after the hash pass), then the manifest's HEAD + PUT.
    ("multipart", KEY_KNOWN): _pin(
        {
            "HeadBucket": 1,
            "HeadObject": 2,
            "CreateMultipartUpload": 1,
            "UploadPart": 2,
            "CompleteMultipartUpload": 1,
            "PutObject": 1,
        },
        _add(_ONE_ASSET, _CHECKPOINT, {"get": 11}),
        messages=1,
        source={"GET": 1},
    ),
    ("multipart", CAS): _pin(
        {
            "HeadBucket": 1,
            "HeadObject": 2,
            "CreateMultipartUpload": 1,
            "UploadPart": 2,
            "CompleteMultipartUpload": 1,
            "PutObject": 1,
        },
        _add(_ONE_ASSET, _CHECKPOINT, {"get": 11}),
        messages=1,
        source={"GET": 2},  # the hash pass, then the upload pass
    ),
    # Three assets, locked manifest: the manifest HEAD before its PUT and one after
    # (reading back the lock), the lock carried by the PUT itself.
    ("run3-locked", KEY_KNOWN): _pin(
        {"HeadBucket": 1, "HeadObject": 5, "PutObject": 4},
        {**_THREE_ASSETS, "get": 24},
        messages=1,  # one ingest_assets (a chunk of 3); the last asset's delivery finalizes
        source={"GET": 3},
    ),
    ("run3-locked", CAS): _pin(
        {"HeadBucket": 1, "HeadObject": 2, "PutObject": 4},
        {**_THREE_ASSETS, "get": 24},
        messages=1,
        source={"GET": 3},
    ),
}


def _check(case: str, strategy: KeyStrategy, got: Cost, paced: Counter[str]) -> None:
    pinned = PINNED.get((case, strategy))
    measured = f"measured {case}/{strategy.value}: {got!r}"
    assert pinned is not None, f"no pin yet; {measured}"
    lines = differences(got, pinned, paced)
    assert not lines, (
        f"{case} ({strategy.value}) cost changed:\n  " + "\n  ".join(lines) + (f"\n{measured}")
    )


@pytest.mark.parametrize("strategy", [KEY_KNOWN, CAS], ids=["key-known", "cas"])
def test_small_asset_cost(meter: Meter, bucket: str, strategy: KeyStrategy) -> None:
    got, paced = meter.run(bucket, strategy, [64 * KIB])
    _check("small", strategy, got, paced)


@pytest.mark.parametrize("strategy", [KEY_KNOWN, CAS], ids=["key-known", "cas"])
def test_multipart_asset_cost(meter: Meter, bucket: str, strategy: KeyStrategy) -> None:
    got, paced = meter.run(bucket, strategy, [20 * MIB])  # 16 MiB parts: 2 parts
    _check("multipart", strategy, got, paced)


@pytest.mark.parametrize("strategy", [KEY_KNOWN, CAS], ids=["key-known", "cas"])
def test_three_asset_locked_run_cost(
    meter: Meter, locked_bucket: str, strategy: KeyStrategy
) -> None:
    got, paced = meter.run(locked_bucket, strategy, [256 * KIB] * 3, locked=True)
    _check("run3-locked", strategy, got, paced + Counter(_RACING_STARTS))
