"""The invariants every reliability / security row ends with, written once.

After any fault, for every job the product accepted:

1. the job reached exactly one terminal state (and stays there; the store's
   terminal-transition counters agree with the number of terminal jobs);
2. a succeeded asset, re-downloaded, has the sha256 the status and the
   manifest claim;
3. a succeeded job has exactly one manifest version, retained when a lock was
   asked for; a failed / canceled job has none;
4. `ListMultipartUploads` under the job's prefix is empty;
5. no staging objects: every object under the prefix is an asset key the
   status reports, or a manifest;
6. the broker holds no message (queued or unacked) for the job; checked first,
   so the other checks read a job no task can still change.

Everything here reads the real services directly (plain boto3 on SeaweedFS,
plain redis-py), never through the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis

from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetState,
    JobMeta,
    JobState,
    JobView,
)
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.store.status import StatusStore

STORED = (AssetState.STORED, AssetState.DEDUPLICATED)


@dataclass
class Services:
    """Where to look: the status store, the broker (a Redis URL) and S3 (direct)."""

    redis_url: str
    s3: Any
    broker_url: str | None = None  # default: the store's Redis

    @property
    def store(self) -> StatusStore:
        return StatusStore(redis.Redis.from_url(self.redis_url))


@dataclass
class JobFacts:
    """What the checks found for one job (returned so tests can assert more)."""

    view: JobView
    meta: JobMeta
    manifest_key: str
    manifest: dict[str, Any] | None = None
    objects: list[str] = field(default_factory=list)


def manifest_key_of(meta: JobMeta, payload: str) -> str:
    """The key genblaze-core's ObjectStorageSink would use for this job's run."""
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.storage.base import KeyStrategy
    from genblaze_core.storage.key_builder import KeyBuilder

    run = Manifest.model_validate_json(payload).run
    kb = KeyBuilder.from_prefix(meta.destination.prefix)
    if KeyStrategy(meta.destination.key_strategy) == KeyStrategy.HIERARCHICAL:
        parts = ["runs"]
        if run.tenant_id:
            parts.append(run.tenant_id)
        parts += [run.created_at.strftime("%Y-%m-%d"), run.run_id, "manifest.json"]
        return str(kb.build(*parts))
    return str(kb.build("manifests", f"{run.run_id}.json"))


def sha256_of_object(s3: Any, bucket: str, key: str) -> str:
    h = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _versions(s3: Any, bucket: str, key: str) -> tuple[list[dict], list[dict]]:
    resp = s3.list_object_versions(Bucket=bucket, Prefix=key)
    versions = [v for v in resp.get("Versions", []) if v["Key"] == key]
    markers = [m for m in resp.get("DeleteMarkers", []) if m["Key"] == key]
    return versions, markers


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


# -- broker ----------------------------------------------------------------------
def broker_messages(client: redis.Redis) -> list[str]:
    """Every message text the Redis broker holds (queued lists + unacked), decoded.

    kombu stores each message as JSON whose body is base64: both the raw JSON
    and the decoded body are returned, so a search sees task args and headers.
    """
    texts: list[str] = []
    raw: list[bytes] = []
    for k in client.scan_iter(count=1000):
        t = client.type(k)
        if t == b"list":
            raw += client.lrange(k, 0, -1)
        elif t == b"hash" and k.startswith(b"unacked"):
            raw += client.hvals(k)
    for item in raw:
        text = item.decode(errors="replace")
        texts.append(text)
        with contextlib.suppress(Exception):
            doc = json.loads(text)
            msg = doc[0] if isinstance(doc, list) else doc
            texts.append(base64.b64decode(msg["body"]).decode(errors="replace"))
    return texts


def stranded_messages(client: redis.Redis, job_ids: Iterable[str]) -> list[str]:
    ids = list(job_ids)
    return [t for t in broker_messages(client) if any(j in t for j in ids)]


def wait_broker_clear(broker_url: str, job_ids: Iterable[str], timeout: float = 30) -> None:
    """Acks land just after a task returns: poll, then fail with what is left."""
    client = redis.Redis.from_url(broker_url)
    ids = list(job_ids)
    deadline = time.monotonic() + timeout
    left: list[str] = []
    while time.monotonic() < deadline:
        left = stranded_messages(client, ids)
        if not left:
            return
        time.sleep(0.25)
    raise AssertionError(f"broker still holds {len(left)} message(s) for the job(s): {left[:2]}")


# -- the checks --------------------------------------------------------------------
def wait_terminal(
    svc: Services, job_ids: Iterable[str], timeout: float = 120
) -> dict[str, JobView]:
    store = svc.store
    ids = list(job_ids)
    deadline = time.monotonic() + timeout
    views: dict[str, JobView] = {}
    while True:
        views = {j: v for j in ids if (v := store.get_job(j)) is not None}
        if len(views) == len(ids) and all(v.state in TERMINAL_JOB_STATES for v in views.values()):
            return views
        if time.monotonic() > deadline:
            states = {j: (views[j].state.value if j in views else "missing") for j in ids}
            raise AssertionError(f"jobs not terminal after {timeout}s: {states}")
        time.sleep(0.2)


def assert_invariants(
    svc: Services,
    job_ids: Iterable[str],
    *,
    broker_timeout: float = 30,
    extra_allowed_keys: Iterable[str] = (),
    check_counters: bool = True,
) -> dict[str, JobFacts]:
    """Run every invariant for `job_ids`; return what was found per job.

    Order matters: the states are read once the broker holds no message for the
    jobs (6.), not after a sleep. Tasks ack late (workers/celery_app.py), so a
    message leaves the broker only when its task has returned: from then on no
    task can change these jobs, and a state that differs from the first terminal
    one seen is a real second transition.
    """
    ids = list(job_ids)
    store = svc.store
    s3 = svc.s3
    first = wait_terminal(svc, ids, timeout=5)
    # 6. nothing left in the broker for these jobs (queued, reserved or running)
    wait_broker_clear(svc.broker_url or svc.redis_url, ids, timeout=broker_timeout)
    facts: dict[str, JobFacts] = {}
    allowed: dict[tuple[str, str], set[str]] = {}
    for job_id in ids:
        view = store.get_job(job_id)
        meta = store.get_meta(job_id)
        assert view is not None and meta is not None, f"job {job_id} vanished from the store"
        # 1. one terminal state, and it does not change afterwards
        assert view.state == first[job_id].state, f"{job_id}: {first[job_id].state} -> {view.state}"
        for a in view.assets:
            assert a.state in TERMINAL_ASSET_STATES, f"{job_id}/{a.asset_id} is {a.state}"
        done = {m.decode() for m in store.redis.smembers(keys.done_key(job_id))}
        assert done == set(meta.asset_ids), f"{job_id}: done set {done} != assets"
        bucket, prefix = meta.destination.bucket, meta.destination.prefix
        payload = store.payload(job_id)
        mkey = view.manifest.key or (manifest_key_of(meta, payload) if payload else "")
        f = JobFacts(view, meta, mkey)
        slot = allowed.setdefault((bucket, prefix), set())
        # 2. re-downloaded bytes match the status
        for a in view.assets:
            if a.state in STORED:
                assert a.key and a.sha256, f"{job_id}/{a.asset_id} stored without key/sha256"
                got = sha256_of_object(s3, bucket, a.key)
                assert got == a.sha256, (
                    f"{job_id}/{a.asset_id}: bucket sha256 {got} != status {a.sha256}"
                )
            if a.key:
                slot.add(a.key)
        # 3. manifest: exactly one version when succeeded, none otherwise
        versions, markers = _versions(s3, bucket, mkey) if mkey else ([], [])
        if view.state == JobState.SUCCEEDED:
            assert len(versions) == 1 and not markers, (
                f"{job_id}: manifest {mkey}: {len(versions)} version(s), {len(markers)} marker(s)"
            )
            slot.add(mkey)
            doc = json.loads(s3.get_object(Bucket=bucket, Key=mkey)["Body"].read())
            f.manifest = doc
            by_id = {a.asset_id: a for a in view.assets}
            for step in doc["run"]["steps"]:
                for ma in step["assets"]:
                    st = by_id[ma["asset_id"]]
                    assert ma["sha256"] == st.sha256, f"{job_id}: manifest sha256 != status"
                    assert ma["url"] == st.url, f"{job_id}: manifest url != status url"
            if meta.manifest_lock is not None:
                head = s3.head_object(Bucket=bucket, Key=mkey)
                until = head.get("ObjectLockRetainUntilDate")
                assert head.get("ObjectLockMode") == meta.manifest_lock.mode, head
                assert until is not None and until >= meta.manifest_lock.retain_until - timedelta(
                    seconds=1
                ), f"{job_id}: manifest retained until {until}"
                assert view.manifest.locked_until is not None
        else:
            assert not versions, f"{job_id} is {view.state.value} but a manifest exists at {mkey}"
        # 4. no multipart upload left under the prefix
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        assert not uploads, f"{job_id}: multipart uploads left: {[u['Key'] for u in uploads]}"
        facts[job_id] = f
    # 5. no staging objects: everything under each prefix is accounted for
    extra = set(extra_allowed_keys)
    for (bucket, prefix), keys_ok in allowed.items():
        objects = _list_keys(s3, bucket, prefix)
        stray = sorted(set(objects) - keys_ok - extra)
        assert not stray, f"objects not claimed by any job (staging debris?): {stray}"
        for f in facts.values():
            if f.meta.destination.bucket == bucket:
                f.objects = objects
    if check_counters:
        assert_terminal_counters(store)
    return facts


def assert_terminal_counters(store: StatusStore) -> None:
    """Terminal transitions counted == jobs in a terminal state: none entered two."""
    n_terminal = 0
    for k in store.redis.scan_iter(match=f"{keys.NAMESPACE}:job:*", count=1000):
        if k.count(b":") != 2:
            continue
        state = store.redis.hget(k, "state")
        if state is not None and JobState(state.decode()) in TERMINAL_JOB_STATES:
            n_terminal += 1
    stats = store.stats()
    counted = sum(stats.get(stat_names.jobs_entered(s), 0) for s in TERMINAL_JOB_STATES)
    assert counted == n_terminal, f"{counted} terminal transitions for {n_terminal} terminal jobs"


# -- secrets ---------------------------------------------------------------------
def redis_dump_texts(client: redis.Redis) -> list[tuple[str, str]]:
    """(key, text) for every key and every value in the database, base64 bodies decoded."""
    out: list[tuple[str, str]] = []
    for k in client.scan_iter(count=1000):
        name = k.decode(errors="replace")
        t = client.type(k).decode()
        vals: list[bytes] = []
        if t == "string":
            vals = [client.get(k) or b""]
        elif t == "hash":
            for hk, hv in client.hgetall(k).items():
                vals += [hk, hv]
        elif t == "list":
            vals = client.lrange(k, 0, -1)
        elif t == "set":
            vals = list(client.smembers(k))
        elif t == "zset":
            vals = [m for m, _ in client.zrange(k, 0, -1, withscores=True)]
        dumped = client.dump(k)
        out.append((name, name))
        if dumped:
            out.append((name, dumped.decode(errors="replace")))
        for v in vals:
            text = v.decode(errors="replace")
            out.append((name, text))
            with contextlib.suppress(Exception):
                doc = json.loads(text)
                msg = doc[0] if isinstance(doc, list) else doc
                out.append((name, base64.b64decode(msg["body"]).decode(errors="replace")))
    return out
