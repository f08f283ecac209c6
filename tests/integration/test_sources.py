"""Sources that expire or are not ready yet, fetch provenance, signed manifests, `verify`.

Real parts only: the Procfile's API and worker on a private Redis, SeaweedFS, the
test CDN, a refresh endpoint verifying Standard Webhooks signatures, and the
`genblaze-ingest verify` command run as a user runs it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import parse_manifest
from genblaze_core.pipeline import Pipeline
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3 import S3StorageBackend, URLPolicy
from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.ingest.store import keys as store_keys
from genblaze_s3.ingest.submit.enqueue import MIN_CHUNK
from genblaze_s3.local.services import SeaweedS3
from genblaze_s3.transfer.expiry import is_expired, url_expiry
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, policy_for, sha, wait_for
from tests.support.refresher import RefreshEndpoint
from tests.support.workers import QueueStack, StartStack

WEBHOOK_SECRET = "whsec-test"  # the stack's tenant webhook secret (tests/support/workers.py)


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(GENBLAZE_SIGNING_KEY value: base64 raw private key, path of the public key PEM)."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = tmp_path_factory.mktemp("keys") / "signing.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return base64.b64encode(raw).decode(), pub


@pytest.fixture(scope="module")
def src_stack(start_module_stack: StartStack, signing_key: tuple[str, Path]) -> QueueStack:
    """One worker, one slot: the order the CDN sees is the order the job dispatched."""
    return start_module_stack(
        queue="genblaze-sources",
        n_workers=1,
        concurrency=1,
        extra_env={"GENBLAZE_SIGNING_KEY": signing_key[0]},
    )


def _h(stack: QueueStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.tokens['acme']}"}


def _submit(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, urls: list[str], **extra: Any
) -> str:
    body = {
        "assets": [{"url": u} for u in urls],
        "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
        **extra,
    }
    r = httpx.post(f"{stack.api_url}/v1/jobs", json=body, headers=_h(stack), timeout=10)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _doc(stack: QueueStack, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=_h(stack), timeout=10)
    return dict(r.json())


def _wait_terminal(stack: QueueStack, job_id: str, timeout: float = 90) -> dict[str, Any]:
    doc: dict[str, Any] = {}

    def done() -> bool:
        nonlocal doc
        doc = _doc(stack, job_id)
        return doc["state"] in {"succeeded", "failed", "canceled"}

    wait_for(done, timeout=timeout, interval=0.1)
    return doc


def _manifest(s3_client: Any, bucket: str, key: str) -> Any:
    return parse_manifest(json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def _presigner(cdn: CDNServer) -> S3StorageBackend:
    """Our own presigner, pointed at the test CDN (as a provider's S3-backed CDN would be).

    The CDN answers the presigner's one-time bucket check (HEAD /provider).
    """
    cdn.add("/provider", b"")
    return S3StorageBackend(
        "provider",
        endpoint_url=cdn.base_url,
        region="us-east-1",
        access_key_id="AKIDPROVIDER",
        secret_access_key="provider-secret",
        preflight=False,
    )


def _presigned(presigner: S3StorageBackend, key: str, seconds: int) -> str:
    return presigner.get_url(key, policy=URLPolicy.PRESIGNED, expires_in=seconds)


# -- expiry ---------------------------------------------------------------------------


def test_expired_presigned_url_fails_source_expired_without_a_request(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    cdn.add("/provider/expired/a.png", os.urandom(4000), content_type="image/png")
    url = _presigned(_presigner(cdn), "expired/a.png", 1)
    assert url_expiry(url) is not None
    wait_for(lambda: is_expired(url) is not None, timeout=5)  # the clock passes the stated end
    job_id = _submit(src_stack, seaweed, bucket, [url])
    doc = _wait_terminal(src_stack, job_id)
    assert doc["state"] == "failed"
    (asset,) = doc["assets"]
    assert asset["error"]["code"] == "source_expired"
    assert asset["source_expires_at"] is not None
    assert "X-Amz-Signature" not in json.dumps(doc)  # the signature never reaches the API
    assert not [r for r in cdn.requests if r.path == "/provider/expired/a.png"]


def test_soonest_expiring_assets_are_copied_first(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    lifetimes = [600 + 97 * ((i * 7) % 20) for i in range(20)]  # a shuffled set of lifetimes
    urls = []
    presigner = _presigner(cdn)
    for i, seconds in enumerate(lifetimes):
        cdn.add(f"/provider/order/{i}.png", os.urandom(2000 + i), content_type="image/png")
        urls.append(_presigned(presigner, f"order/{i}.png", seconds))
    job_id = _submit(src_stack, seaweed, bucket, urls)
    doc = _wait_terminal(src_stack, job_id)
    assert doc["state"] == "succeeded", doc
    by_path = {f"/provider/order/{i}.png": s for i, s in enumerate(lifetimes)}
    seen = [r.path for r in cdn.requests if r.path in by_path]
    first_seen = list(dict.fromkeys(seen))
    assert len(first_seen) == 20
    # In expiry order, a delivery at a time: a chunk's assets (`plan_chunks`: 4 of this
    # job's 20) start side by side, in any order among themselves.
    order, ranked = [by_path[p] for p in first_seen], sorted(lifetimes)
    size = MIN_CHUNK
    assert [sorted(order[i : i + size]) for i in range(0, 20, size)] == [
        ranked[i : i + size] for i in range(0, 20, size)
    ]
    assert all(a["source_expires_at"] for a in doc["assets"])  # shown in the status


# -- refresh --------------------------------------------------------------------------


def test_403_until_refreshed_succeeds_with_one_signed_refresh_per_asset(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    blobs = [os.urandom(3000 + i) for i in range(3)]
    urls = [
        cdn.add(f"/gated/{i}.png", b, content_type="image/png")
        + f"?mode=gated&token=old&X-Amz-Signature=OLD{i}"
        for i, b in enumerate(blobs)
    ]
    with RefreshEndpoint(WEBHOOK_SECRET) as endpoint:
        job_id = _submit(src_stack, seaweed, bucket, urls, refresh_url=endpoint.url)
        doc = _wait_terminal(src_stack, job_id)
        calls = endpoint.calls
    assert doc["state"] == "succeeded", doc
    assert len(calls) == 3 and all(c.verified for c in calls)  # tenant secret verifies each
    assert sorted(c.body["source"]["path"] for c in calls) == [f"/gated/{i}.png" for i in range(3)]
    assert all(c.body["job_id"] == job_id for c in calls)
    assert "OLD" not in json.dumps([c.body for c in calls])  # never the old query
    manifest = _manifest(s3_client, bucket, doc["manifest"]["key"])
    assert manifest.verify()
    for asset in manifest.run.steps[0].assets:
        assert asset.metadata["fetch"]["refreshes"] == 1
        assert "token" not in json.dumps(asset.metadata["fetch"])
    assert sorted(a.sha256 for a in manifest.run.steps[0].assets) == sorted(map(sha, blobs))


def test_an_expired_presigned_url_is_refreshed_before_any_request(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    data = os.urandom(4321)
    cdn.add("/provider/stale/a.png", data, content_type="image/png")
    url = _presigned(_presigner(cdn), "stale/a.png", 1)
    wait_for(lambda: is_expired(url) is not None, timeout=5)
    with RefreshEndpoint(WEBHOOK_SECRET) as endpoint:
        job_id = _submit(src_stack, seaweed, bucket, [url], refresh_url=endpoint.url)
        doc = _wait_terminal(src_stack, job_id)
        (call,) = endpoint.calls
    assert doc["state"] == "succeeded", doc
    assert call.verified and call.body["reason"] == "expired"
    assert call.body["source"]["path"] == "/provider/stale/a.png"
    hits = [r for r in cdn.requests if r.path == "/provider/stale/a.png"]
    assert len(hits) == 1  # only the fresh URL was fetched, never the expired one
    assert doc["assets"][0]["refreshes"] == 1 and doc["assets"][0]["source_expires_at"] is None
    manifest = _manifest(s3_client, bucket, doc["manifest"]["key"])
    assert manifest.run.steps[0].assets[0].sha256 == sha(data)


def test_refresh_answer_pointing_at_a_private_address_fails_url_blocked(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    url = cdn.add("/gated/private.png", os.urandom(3000), content_type="image/png")
    with RefreshEndpoint(
        WEBHOOK_SECRET, lambda body: (200, {"url": "http://169.254.169.254/latest/meta-data"})
    ) as endpoint:
        job_id = _submit(
            src_stack, seaweed, bucket, [url + "?mode=gated"], refresh_url=endpoint.url
        )
        doc = _wait_terminal(src_stack, job_id)
    assert doc["state"] == "failed"
    assert doc["assets"][0]["error"]["code"] == "url_blocked"
    assert len(endpoint.calls) == 1


def test_python_source_refresher_by_import_path(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    data = os.urandom(5000)
    url = cdn.add("/gated/py.png", data, content_type="image/png") + "?mode=gated"
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=src_stack.redis_url,
        broker_url=src_stack.broker_url,
        queue=src_stack.queue,
        destination_policy=policy_for(seaweed),
        source_refresher="tests.support.refresher:fresh_cdn_url",
    )
    provider = MockProvider(assets=lambda step: [Asset(url=url, media_type="image/png")])
    Pipeline("refresh").step(provider, model="m", prompt="p").run(sink=sink, raise_on_failure=True)
    assert sink.last_job is not None
    final = sink.last_job.wait(timeout=60)
    sink.close()
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    manifest = _manifest(s3_client, bucket, str(final.manifest.key))
    (asset,) = manifest.run.steps[0].assets
    assert asset.sha256 == sha(data) and asset.metadata["fetch"]["refreshes"] == 1


# -- not ready ------------------------------------------------------------------------


def test_503_with_retry_after_waits_visibly_without_using_attempts(
    src_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    import redis

    data = os.urandom(6000)
    url = cdn.add("/late.png", data, content_type="image/png")
    late = cdn.url("/late.png", mode="flaky5xx", n=3, status=503, retry_after=2)
    assert url.startswith(cdn.base_url)
    job_id = _submit(src_stack, seaweed, bucket, [late])
    waiting: dict[str, Any] = {}

    def seen_waiting() -> bool:
        nonlocal waiting
        waiting = _doc(src_stack, job_id)["assets"][0]
        return waiting["state"] == "waiting_source"

    wait_for(seen_waiting, timeout=30, interval=0.05)
    assert waiting["retry_at"] is not None
    doc = _wait_terminal(src_stack, job_id, timeout=60)
    assert doc["state"] == "succeeded", doc
    hits = [r for r in cdn.requests if r.path == "/late.png"]
    assert len(hits) == 4  # three "not yet", then the copy
    client = redis.Redis.from_url(src_stack.redis_url)
    aid = doc["assets"][0]["asset_id"]
    # the waits were not counted: one attempt, as the API and the manifest show it; the
    # delivery counter itself is dropped once the asset is stored (no key kept for days)
    assert doc["assets"][0]["attempts"] == 1
    assert client.get(store_keys.attempts_key(job_id, aid)) is None
    manifest = _manifest(s3_client, bucket, doc["manifest"]["key"])
    assert manifest.run.steps[0].assets[0].metadata["fetch"]["attempts"] == 1


# -- provenance, signatures, verify ---------------------------------------------------


def _verify_cli(
    seaweed: SeaweedS3, bucket: str, key: str, *args: str, signing_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=seaweed.access_key,
        AWS_SECRET_ACCESS_KEY=seaweed.secret_key,
        AWS_ENDPOINT_URL=seaweed.endpoint_url,
    )
    env.pop("GENBLAZE_SIGNING_KEY", None)
    if signing_key:
        env["GENBLAZE_SIGNING_KEY"] = signing_key
    return subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "verify", f"s3://{bucket}/{key}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run_through_sink(
    stack: QueueStack, seaweed: SeaweedS3, bucket: str, urls: list[str], **sink_kw: Any
) -> tuple[Any, Any]:
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=stack.redis_url,
        broker_url=stack.broker_url,
        queue=stack.queue,
        destination_policy=policy_for(seaweed),
        **sink_kw,
    )
    provider = MockProvider(
        assets=lambda step: [Asset(url=u, media_type="image/png") for u in urls]
    )
    result = (
        Pipeline("prov").step(provider, model="m", prompt="p").run(sink=sink, raise_on_failure=True)
    )
    assert sink.last_job is not None
    final = sink.last_job.wait(timeout=60)
    sink.close()
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    return result, final


def test_signed_manifest_with_provenance_verifies_with_core_and_cli(
    src_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    locked_bucket: str,
    signing_key: tuple[str, Path],
) -> None:
    from datetime import UTC, datetime, timedelta

    from genblaze_core.storage.base import ObjectLockConfig

    blobs = [os.urandom(4000 + 13 * i) for i in range(3)]
    urls = [
        cdn.add(f"/prov/{i}.png", b, content_type="image/png") + "?X-Amz-Signature=SECRET"
        for i, b in enumerate(blobs)
    ]
    lock = ObjectLockConfig(retain_until=datetime.now(UTC) + timedelta(days=1), mode="GOVERNANCE")
    result, final = _run_through_sink(src_stack, seaweed, locked_bucket, urls, manifest_lock=lock)
    reader = ObjectStorageSink(
        backend_for(seaweed, locked_bucket), key_strategy=KeyStrategy.CONTENT_ADDRESSABLE
    )
    manifest = reader.read_manifest(result.run)
    assert manifest.verify()  # genblaze-core, provenance included in the hash
    assert manifest.signature and manifest.signature.startswith("ed25519-v2:")
    for asset in manifest.run.steps[0].assets:
        fetch = asset.metadata["fetch"]
        assert fetch["scheme"] == "http" and fetch["host"] == f"127.0.0.1:{cdn.port}"
        assert fetch["path"].startswith("/prov/") and "SECRET" not in json.dumps(fetch)
        assert fetch["fetched_at"] and fetch["etag"] and fetch["last_modified"]
        assert fetch["content_length"] == fetch["bytes_stored"] == asset.size_bytes
        assert (fetch["attempts"], fetch["refreshes"]) == (1, 0)
    out = _verify_cli(
        seaweed, locked_bucket, str(final.manifest.key), "--public-key", str(signing_key[1])
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout and out.stdout.count("OK   asset") == 3
    assert "OK   lock" in out.stdout and "OK   signature" in out.stdout
    assert "OK   envelope" in out.stdout and out.stdout.splitlines()[-1].startswith("VERIFIED")
    # The DSSE envelope the workers wrote, checked by securesystemslib alone.
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    from genblaze_s3.ingest.finalize.signing import key_id

    envelope_key = str(final.manifest.key).removesuffix(".json") + ".intoto.json"
    s3 = backend_for(seaweed, locked_bucket).client
    envelope = Envelope.from_dict(
        json.loads(s3.get_object(Bucket=locked_bucket, Key=envelope_key)["Body"].read())
    )
    public = load_pem_public_key(signing_key[1].read_bytes())
    envelope.verify([SSlibKey.from_crypto(public, keyid=key_id(public))], 1)
    subjects = {s["name"] for s in json.loads(envelope.payload)["subject"]}
    assert f"s3://{locked_bucket}/{final.manifest.key}" in subjects and len(subjects) == 4
    head = s3.head_object(Bucket=locked_bucket, Key=envelope_key)
    assert head["ObjectLockMode"] == "GOVERNANCE"


def test_verify_names_an_overwritten_asset_and_a_flipped_signature(
    src_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
    signing_key: tuple[str, Path],
) -> None:
    blobs = [os.urandom(5000 + i) for i in range(2)]
    urls = [cdn.add(f"/tamper/{i}.png", b, content_type="image/png") for i, b in enumerate(blobs)]
    _, final = _run_through_sink(src_stack, seaweed, bucket, urls)
    key = str(final.manifest.key)
    pub = str(signing_key[1])
    assert _verify_cli(seaweed, bucket, key, "--public-key", pub).returncode == 0
    victim = final.assets[1]
    s3_client.put_object(Bucket=bucket, Key=victim.key, Body=b"other bytes")
    out = _verify_cli(seaweed, bucket, key, "--public-key", pub)
    assert out.returncode == 1
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1 and victim.asset_id in failed[0] and "asset" in failed[0]
    # Put the bytes back, then flip one byte of the signature.
    original = next(b for b in blobs if sha(b) == victim.sha256)
    s3_client.put_object(Bucket=bucket, Key=victim.key, Body=original)
    assert _verify_cli(seaweed, bucket, key, "--public-key", pub).returncode == 0
    doc = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    scheme, kid, sig = doc["signature"].split(":")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[10] ^= 0x01
    doc["signature"] = (
        f"{scheme}:{kid}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    )
    s3_client.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc).encode())
    out = _verify_cli(seaweed, bucket, key, "--public-key", pub)
    assert out.returncode == 1
    assert any(line.startswith("FAIL signature") for line in out.stdout.splitlines()), out.stdout
    # On a worker host the key is known: no --public-key needed to catch it.
    own = _verify_cli(seaweed, bucket, key, signing_key=signing_key[0])
    assert own.returncode == 1 and "FAIL signature" in own.stdout


def test_verify_reports_an_inline_genblaze_core_manifest_as_content_intact_and_unsigned(
    seaweed: SeaweedS3, cdn: CDNServer, bucket: str, loopback_fetches: None
) -> None:
    data = os.urandom(7000)
    url = cdn.add("/inline.png", data, content_type="image/png")
    sink = ObjectStorageSink(backend_for(seaweed, bucket))
    provider = MockProvider(assets=lambda step: [Asset(url=url, media_type="image/png")])
    result = (
        Pipeline("inline")
        .step(provider, model="m", prompt="p")
        .run(sink=sink, raise_on_failure=True)
    )
    key = sink.manifest_key_for(result.run)
    out = _verify_cli(seaweed, bucket, key)  # no key: content intact, origin not proven
    assert out.returncode == 3, out.stdout + out.stderr
    assert "NOTE signature" in out.stdout and "OK   asset" in out.stdout
    assert out.stdout.splitlines()[-1].startswith("UNPROVEN") and "not signed" in out.stdout
    content = _verify_cli(seaweed, bucket, key, "--content-only")
    assert content.returncode == 0 and content.stdout.splitlines()[-1].startswith("CONTENT INTACT")
    strict = _verify_cli(seaweed, bucket, key, "--content-only", "--require-signature")
    assert strict.returncode == 1


def _attack_stripped(s3: Any, bucket: str, key: str, doc: dict[str, Any]) -> None:
    """Issue row 1: overwrite an asset, edit its sha256/size, recompute the canonical
    hash, delete the signature, put a new manifest version."""
    asset = doc["run"]["steps"][0]["assets"][0]
    s3.put_object(Bucket=bucket, Key=asset["metadata"]["stored"]["key"], Body=b"forged")
    asset["sha256"], asset["size_bytes"] = sha(b"forged"), 6
    doc["signature"] = None


def _attack_repointed(s3: Any, bucket: str, key: str, doc: dict[str, Any]) -> None:
    """Issue row 2: the original bytes copied to K.orig, K overwritten, the asset's URL
    (and recorded key) pointed at K.orig, the signature kept."""
    asset = doc["run"]["steps"][0]["assets"][0]
    k = asset["metadata"]["stored"]["key"]
    s3.copy_object(Bucket=bucket, Key=f"{k}.orig", CopySource={"Bucket": bucket, "Key": k})
    s3.put_object(Bucket=bucket, Key=k, Body=b"forged")
    asset["url"] = asset["url"] + ".orig"
    asset["metadata"]["stored"]["key"] = f"{k}.orig"


def _attack_own_key(s3: Any, bucket: str, key: str, doc: dict[str, Any]) -> None:
    """Issue row 3: the attacker signs the edited manifest with a key of their own."""
    from genblaze_s3.ingest.finalize.signing import ManifestSigner

    _attack_stripped(s3, bucket, key, doc)
    doc["signature"] = "attacker"  # replaced below, once the hash is recomputed
    doc["_sign_with"] = ManifestSigner(Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    "attack", [_attack_stripped, _attack_repointed, _attack_own_key], ids=lambda f: f.__name__
)
def test_the_issues_attacks_fail_verify_on_a_real_locked_bucket(
    src_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    locked_bucket: str,
    s3_client: Any,
    signing_key: tuple[str, Path],
    attack: Any,
) -> None:
    from datetime import UTC, datetime, timedelta

    from genblaze_core.models.manifest import Manifest
    from genblaze_core.storage.base import ObjectLockConfig

    name = attack.__name__
    urls = [
        cdn.add(f"/{name}/{i}.png", os.urandom(3000 + i), content_type="image/png")
        for i in range(2)
    ]
    lock = ObjectLockConfig(retain_until=datetime.now(UTC) + timedelta(days=1), mode="GOVERNANCE")
    _, final = _run_through_sink(src_stack, seaweed, locked_bucket, urls, manifest_lock=lock)
    key = str(final.manifest.key)
    pub = str(signing_key[1])
    assert _verify_cli(seaweed, locked_bucket, key, "--public-key", pub).returncode == 0
    doc = json.loads(s3_client.get_object(Bucket=locked_bucket, Key=key)["Body"].read())
    attack(s3_client, locked_bucket, key, doc)
    signer = doc.pop("_sign_with", None)
    manifest = Manifest.model_validate(doc)
    manifest.compute_hash()
    if signer is not None:
        signer.sign(manifest)
    s3_client.put_object(Bucket=locked_bucket, Key=key, Body=manifest.to_canonical_json().encode())
    out = _verify_cli(seaweed, locked_bucket, key, "--public-key", pub)
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert any(line.startswith("FAIL signature") for line in failed), out.stdout
    assert any(line.startswith("FAIL version") for line in failed), out.stdout  # rewritten
    assert out.stdout.splitlines()[-1].startswith("FAILED")
    # The same on a worker host (GENBLAZE_SIGNING_KEY set), without --public-key.
    own = _verify_cli(seaweed, locked_bucket, key, signing_key=signing_key[0])
    assert own.returncode == 1 and "FAIL signature" in own.stdout
    # And with no key at all, never exit 0.
    assert _verify_cli(seaweed, locked_bucket, key).returncode != 0
