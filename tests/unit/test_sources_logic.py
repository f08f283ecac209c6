"""Expiry parsing, Retry-After, the wait/refresh policy, provenance and signatures: pure logic."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from genblaze_s3 import S3StorageBackend, URLPolicy, runtime
from genblaze_s3.ingest.finalize.manifest import build_manifest
from genblaze_s3.ingest.finalize.signing import (
    ManifestSigner,
    key_id,
    load_public_key,
    verify_signature,
)
from genblaze_s3.ingest.models import AssetRecord, AssetState
from genblaze_s3.ingest.provenance import build_provenance, source_location
from genblaze_s3.ingest.worker.refresh import (
    RefreshRequest,
    SourceRefresher,
    check_import_path,
    refresh_request,
    signed_headers,
)
from genblaze_s3.ingest.worker.sources import gave_up_waiting, not_ready_delay
from genblaze_s3.settings import load_settings
from genblaze_s3.transfer import CopyConfig, FetchPolicy, SourceExpired, SourceValidators
from genblaze_s3.transfer.errors import (
    SourceNotFound,
    SourceNotReady,
    SourceUnavailable,
    error_for_response,
    parse_retry_after,
)
from genblaze_s3.transfer.expiry import is_expired, url_expiry
from genblaze_s3.transfer.fetch import Fetcher
from tests.unit.ingest_fixtures import make_manifest, make_submission

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


# -- expiry ---------------------------------------------------------------------------


def test_sigv4_expiry_from_our_own_presigner() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bkt-presign")
        backend = S3StorageBackend(
            "bkt-presign", region="us-east-1", access_key_id="AKID", secret_access_key="secret"
        )
        before = datetime.now(UTC).replace(microsecond=0)
        url = backend.get_url("k.png", policy=URLPolicy.PRESIGNED, expires_in=900)
    when = url_expiry(url)
    assert when is not None
    assert before + timedelta(seconds=899) <= when <= before + timedelta(seconds=902)
    assert is_expired(url) is None
    assert is_expired(url, now=when + timedelta(seconds=1)) == when


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://b.s3.amazonaws.com/k?x-amz-date=20261201T100000Z&x-amz-expires=3600&x-amz-signature=s",
            datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
        ),
        (
            "https://storage.googleapis.com/b/k?X-Goog-Date=20261201T100000Z&X-Goog-Expires=60&X-Goog-Signature=s",
            datetime(2026, 12, 1, 10, 1, tzinfo=UTC),
        ),
        (
            "https://b.s3.amazonaws.com/k?AWSAccessKeyId=A&Expires=1796126400&Signature=s",
            datetime.fromtimestamp(1796126400, UTC),
        ),
        (
            "https://d111.cloudfront.net/k?Expires=1796126400&Signature=s&Key-Pair-Id=K",
            datetime.fromtimestamp(1796126400, UTC),
        ),
        (
            "https://acct.blob.core.windows.net/c/k?sv=2022-11-02&se=2026-12-01T10%3A00%3A00Z&sig=s",
            datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        ),
        ("https://cdn.example/k.png", None),
        ("https://cdn.example/k.png?X-Amz-Signature=s", None),
        ("https://cdn.example/k?x-amz-date=garbage&x-amz-expires=60", None),
        ("https://cdn.example/k?se=tomorrow&sig=s", None),
    ],
)
def test_url_expiry_shapes(url: str, expected: datetime | None) -> None:
    assert url_expiry(url) == expected


def test_cloudfront_custom_policy_expiry() -> None:
    policy = {"Statement": [{"Condition": {"DateLessThan": {"AWS:EpochTime": 1796126400}}}]}
    b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    cf = b64.replace("+", "-").replace("=", "_").replace("/", "~")
    url = f"https://d.cloudfront.net/k?Policy={cf}&Signature=s&Key-Pair-Id=K"
    assert url_expiry(url) == datetime.fromtimestamp(1796126400, UTC)


def test_an_expired_url_is_refused_before_any_connection() -> None:
    def resolver(*_: Any) -> Any:
        raise AssertionError("no DNS lookup, no connection for an expired URL")

    url = "https://cdn.example/k?X-Amz-Date=20200101T000000Z&X-Amz-Expires=60&X-Amz-Signature=s"
    with Fetcher(FetchPolicy(), CopyConfig(), resolver=resolver) as f, pytest.raises(SourceExpired):
        f.open(url)


# -- Retry-After and "not ready" ------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("2") == 2.0
    later = datetime.fromtimestamp(1_000_030, UTC)
    assert parse_retry_after(format_datetime(later, usegmt=True), now=1_000_000) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("status", [404, 425, 503])
def test_not_ready_statuses_with_retry_after(status: int) -> None:
    err = error_for_response(status, "2")
    assert isinstance(err, SourceNotReady) and err.retry_after == 2 and err.status == status


def test_429_keeps_its_meaning_and_carries_the_asked_wait() -> None:
    err = error_for_response(429, "7")
    assert isinstance(err, SourceUnavailable) and err.retry_after == 7 and err.retryable


def test_without_retry_after_statuses_keep_their_meaning() -> None:
    assert isinstance(error_for_response(404, None), SourceNotFound)
    assert isinstance(error_for_response(503, None), SourceUnavailable)
    assert isinstance(error_for_response(425, None), SourceUnavailable)
    assert error_for_response(200, "5") is None


def _record(**kw: Any) -> AssetRecord:
    return AssetRecord(asset_id="a", source_url="https://cdn/x", **kw)


def test_not_ready_waits_as_asked_then_gives_up_at_the_budget() -> None:
    meta = make_submission(1).meta.model_copy(update={"created_at": NOW})
    ready = SourceNotReady("503", retry_after=2)
    assert not_ready_delay(ready, meta=meta, record=_record(), now=NOW, ready_wait=600) == (2, NOW)
    since = NOW - timedelta(seconds=599)
    delay = not_ready_delay(
        ready, meta=meta, record=_record(waiting_since=since), now=NOW, ready_wait=600
    )
    assert delay == (1.0, since)  # a last look at the end of the budget, not beyond
    spent = _record(waiting_since=NOW - timedelta(seconds=600))
    assert not_ready_delay(ready, meta=meta, record=spent, now=NOW, ready_wait=600) is None
    final = gave_up_waiting(ready, spent, 600)
    assert final.code == "source_not_found" and not final.retryable


def test_404_is_not_yet_only_inside_source_ready_within() -> None:
    meta = make_submission(1).meta.model_copy(update={"created_at": NOW, "source_ready_within": 60})
    missing = error_for_response(404, None)
    assert missing is not None
    got = not_ready_delay(
        missing, meta=meta, record=_record(), now=NOW + timedelta(seconds=5), ready_wait=600
    )
    assert got is not None and 1.0 <= got[0] <= 30.0
    late = NOW + timedelta(seconds=61)
    assert not_ready_delay(missing, meta=meta, record=_record(), now=late, ready_wait=600) is None
    plain = meta.model_copy(update={"source_ready_within": None})
    assert not_ready_delay(missing, meta=plain, record=_record(), now=NOW, ready_wait=600) is None


def test_dispatch_order_is_soonest_expiry_first() -> None:
    def url(i: int, seconds: int) -> str:
        return f"https://cdn/a{i}.png?X-Amz-Date=20261201T100000Z&X-Amz-Expires={seconds}&X-Amz-Signature=s"

    from genblaze_s3.ingest.models import DestinationSpec
    from genblaze_s3.ingest.submit.submission import build_submission

    urls = [url(0, 900), "https://cdn/none.png", url(2, 60), url(3, 300)]
    sub = build_submission(make_manifest(urls), DestinationSpec(bucket="bkt"), tenant="t")
    ids = sub.meta.asset_ids
    assert sub.dispatch_order() == [ids[2], ids[3], ids[0], ids[1]]
    assert sub.assets[2].source_expires_at == datetime(2026, 12, 1, 10, 1, tzinfo=UTC)


# -- refresh --------------------------------------------------------------------------


def test_refresh_request_carries_no_secrets() -> None:
    req = refresh_request(
        "j", "a", "r", "https://u:p@cdn.example:8443/v/a.mp4?X-Amz-Signature=S", "refused"
    )
    body = req.to_json().decode()
    assert (req.scheme, req.host, req.path) == ("https", "cdn.example:8443", "/v/a.mp4")
    assert "Signature" not in body and "u:p" not in body


def test_refresh_post_signature_verifies_with_standard_webhooks() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    body = b'{"job_id":"j"}'
    headers = signed_headers(body, "plain-passphrase")
    assert Webhook(b"plain-passphrase").verify(body, headers) == {"job_id": "j"}
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another-tenant").verify(body, headers)
    whsec = "whsec_" + base64.b64encode(b"k" * 24).decode()
    assert Webhook(whsec).verify(body, signed_headers(body, whsec)) == {"job_id": "j"}
    assert "webhook-signature" not in signed_headers(body, None)


def fresh(request: RefreshRequest) -> str | None:
    return None if request.path == "/gone" else f"https://{request.host}{request.path}?fresh=1"


def test_python_refresher_is_loaded_by_import_path() -> None:
    meta = make_submission(1).meta.model_copy(
        update={"source_refresher": "tests.unit.test_sources_logic:fresh"}
    )
    r = SourceRefresher(pin=None)
    assert r.available(meta)
    req = refresh_request("j", "a", "r", "https://cdn/x.png?sig=old", "expired")
    assert r.refresh(meta, req) == "https://cdn/x.png?fresh=1"
    gone = refresh_request("j", "a", "r", "https://cdn/gone", "expired")
    assert r.refresh(meta, gone) is None
    missing = meta.model_copy(update={"source_refresher": "no.such.module:fn"})
    with pytest.raises(SourceExpired):
        r.refresh(missing, req)
    with pytest.raises(ValueError):
        check_import_path("os.system('x')")


# -- provenance and signatures --------------------------------------------------------


def test_source_location_drops_query_and_userinfo() -> None:
    assert source_location("HTTPS://user:pw@CDN.example/p/a.png?sig=1#f") == (
        "https",
        "cdn.example",
        "/p/a.png",
    )


def _stored_manifest() -> tuple[str, dict[str, AssetRecord]]:
    sub = make_submission(2)
    recs = {}
    for i, aid in enumerate(sub.meta.asset_ids):
        recs[aid] = AssetRecord(
            asset_id=aid,
            source_url="x",
            state=AssetState.STORED,
            sha256=f"{i}" * 64,
            size=10 + i,
            url=f"http://s3/bkt/{aid}.png",
            provenance=build_provenance(
                f"https://cdn.example/a{i}.png?X-Amz-Signature=SECRET",
                fetched_at=NOW,
                validators=SourceValidators(etag='"e"', last_modified="lm", length=10 + i),
                bytes_stored=10 + i,
                attempts=1,
                refreshes=0,
                deduplicated=False,
            ),
        )
    return sub.payload, recs


def test_provenance_is_in_the_manifest_hash_and_core_verifies_it() -> None:
    payload, recs = _stored_manifest()
    manifest = build_manifest(payload, recs)
    assert manifest.verify()
    fetch = manifest.run.steps[0].assets[0].metadata["fetch"]
    assert fetch["host"] == "cdn.example" and "SECRET" not in json.dumps(fetch)
    fetch["etag"] = '"forged"'  # provenance is hashed: editing it breaks the hash
    assert not manifest.verify_hash()


def test_signature_covers_the_canonical_hash_only_with_the_right_key() -> None:
    key = Ed25519PrivateKey.generate()
    signer = ManifestSigner(key)
    payload, recs = _stored_manifest()
    manifest = build_manifest(payload, recs, signer)
    unsigned = build_manifest(payload, recs)
    assert manifest.canonical_hash == unsigned.canonical_hash and manifest.verify()
    assert manifest.signature is not None and manifest.signature.split(":")[1] == key_id(
        key.public_key()
    )
    assert verify_signature(manifest.signature, manifest.canonical_hash, key.public_key()).ok
    scheme, kid, sig = manifest.signature.split(":")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[0] ^= 1
    flipped = f"{scheme}:{kid}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    assert not verify_signature(flipped, manifest.canonical_hash, key.public_key()).ok
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_signature(manifest.signature, manifest.canonical_hash, other).ok
    assert not verify_signature(manifest.signature, "0" * 64, key.public_key()).ok


def test_keys_load_from_pem_and_base64() -> None:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    raw = base64.b64encode(
        key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    ).decode()
    assert ManifestSigner.from_setting(pem).key_id == ManifestSigner.from_setting(raw).key_id
    pub_pem = (
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )
    assert key_id(load_public_key(pub_pem)) == key_id(key.public_key())
    with pytest.raises(ValueError):
        ManifestSigner.from_setting("bm90IGEga2V5")


def test_refresh_url_is_sealed_at_rest_and_opened_by_the_refresher() -> None:
    import fakeredis
    from cryptography.fernet import Fernet

    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.models import DestinationSpec
    from genblaze_s3.ingest.sealing import SourceSealer
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.submit.enqueue import MemorySender
    from genblaze_s3.ingest.submit.service import IngestService
    from genblaze_s3.ingest.submit.submission import build_submission

    sealer = SourceSealer(Fernet.generate_key().decode())
    store = StatusStore(fakeredis.FakeRedis())
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
    )
    service = IngestService(store, MemorySender(), "q", policy, sealer)
    url = "https://hooks.example/refresh?token=TOPSECRET"
    sub = build_submission(
        make_manifest(["https://cdn/a.png"]),
        DestinationSpec(bucket="bkt", endpoint_url="http://127.0.0.1:9000"),
        tenant="t",
        refresh_url=url,
    )
    job_id, _ = service.submit(sub)
    meta = store.get_meta(job_id)
    assert meta is not None and meta.refresh_url is not None
    assert meta.refresh_url.startswith("fernet:") and "TOPSECRET" not in meta.refresh_url
    posted: list[str] = []
    refresher = SourceRefresher(pin=None, unseal=sealer.unseal)
    refresher._post = lambda target, request, secret: posted.append(target)  # type: ignore[method-assign]
    refresher.refresh(meta, refresh_request(job_id, "a", "r", "https://cdn/a.png", "expired"))
    assert posted == [url]


def test_source_settings_load_and_a_bad_signing_key_is_named_not_shown() -> None:
    from genblaze_s3.settings import SettingsError, load_settings

    config = load_settings({"GENBLAZE_MAX_REFRESHES": "2", "GENBLAZE_SOURCE_READY_WAIT": "30"})
    rules = runtime.source_rules(config)
    assert (rules.max_refreshes, rules.ready_wait) == (2, 30.0)
    assert runtime.source_rules(load_settings({})).ready_wait == 600.0  # the documented default
    assert runtime.manifest_signer(load_settings({})) is None
    with pytest.raises(SettingsError) as info:
        runtime.manifest_signer(
            load_settings({"GENBLAZE_SIGNING_KEY": "not-a-key-but-secret-looking"})
        )
    assert "GENBLAZE_SIGNING_KEY" in str(info.value)
    assert "secret-looking" not in str(info.value)
    raw = base64.b64encode(bytes(range(32))).decode()
    signer = runtime.manifest_signer(load_settings({"GENBLAZE_SIGNING_KEY": raw}))
    assert signer is not None and len(signer.key_id) == 16
