"""Every change a bucket writer can make to a signed run fails verify, naming the problem.

The run is finalized by ``finalize_job`` into moto S3 (Object Lock on, so versioned),
signed, with its DSSE envelope. Each test is one row of the attacker's moves; the
verifier holds the operator's public key unless the row says otherwise.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.finalize.signing import ManifestSigner, key_id
from genblaze_s3.ingest.finalize.verify import Level, Verdict, VerifyReport, verify_manifest
from tests.unit.provenance_fixtures import (
    BUCKET,
    SignedRun,
    finalize_signed_run,
    moto_bucket,
)

__all__ = ["moto_bucket"]  # the fixture, imported for pytest


@pytest.fixture
def run(moto_bucket: S3StorageBackend) -> SignedRun:
    return finalize_signed_run(moto_bucket, Ed25519PrivateKey.generate())


def _verify(run: SignedRun, **kw: Any) -> VerifyReport:
    kw.setdefault("public_key", run.public_key)
    return verify_manifest(run.s3, run.key, **kw)


def _failed(report: VerifyReport, check: str, *words: str) -> None:
    """The report failed, and some FAIL finding of ``check`` says all of ``words``."""
    assert report.verdict is Verdict.FAILED and report.exit_code == 1, list(report.lines())
    lines = [f.line() for f in report.failures if f.check == check]
    assert any(all(w in line for w in words) for line in lines), list(report.lines())


def _assets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for step in doc["run"]["steps"] for a in step["assets"]]


def test_the_untampered_run_is_verified_by_its_key(run: SignedRun) -> None:
    report = _verify(run)
    assert report.verdict is Verdict.VERIFIED and report.exit_code == 0, list(report.lines())
    assert report.key_id == key_id(run.public_key) and report.envelope_key == run.envelope_key
    checks = {f.check for f in report.findings if f.level is Level.OK}
    assert {"record", "hash", "signature", "asset", "envelope", "lock", "version"} <= checks
    assert report.summary().startswith("VERIFIED s3://media/")
    doc = report.to_json()
    assert doc["verdict"] == "verified" and doc["origin_proven"] and doc["content_intact"]
    assert len(doc["findings"]) == len(report.findings)


def test_overwritten_bytes_fail_naming_the_asset(run: SignedRun) -> None:
    run.put_raw(run.asset_keys[1], b"other bytes", "image/png")
    _failed(_verify(run), "asset", run.asset_keys[1], "SHA-256 differs")


def test_an_edited_size_breaks_the_signature(run: SignedRun) -> None:
    def edit(doc: dict[str, Any]) -> None:
        _assets(doc)[0]["size_bytes"] += 1

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "signature", "does not match the manifest")
    _failed(report, "envelope", "disagrees with the manifest")


def test_new_bytes_with_their_digest_in_the_manifest_break_the_signature(run: SignedRun) -> None:
    forged = b"forged bytes"
    run.put_raw(run.asset_keys[0], forged, "image/png")

    def edit(doc: dict[str, Any]) -> None:
        asset = _assets(doc)[0]
        asset["sha256"] = hashlib.sha256(forged).hexdigest()
        asset["size_bytes"] = len(forged)
        asset["metadata"]["fetch"] = None

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "signature", "does not match the manifest")
    _failed(report, "asset", "key names SHA-256")  # a CAS key names the old digest


def test_a_repointed_key_fails(run: SignedRun) -> None:
    """Issue row 2: the original bytes copied to K.orig, K overwritten, the asset's
    location pointed at K.orig, the signature kept."""
    original = run.s3.get(run.asset_keys[0])
    run.put_raw(run.asset_keys[0] + ".orig", original, "image/png")
    run.put_raw(run.asset_keys[0], b"replaced", "image/png")

    def edit(doc: dict[str, Any]) -> None:
        asset = _assets(doc)[0]
        asset["metadata"]["stored"]["key"] = run.asset_keys[0] + ".orig"
        asset["url"] = run.s3.get_durable_url(run.asset_keys[0] + ".orig")

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "signature", "does not match the manifest")
    _failed(report, "envelope", "is missing from the envelope")


def test_a_repointed_url_fails(run: SignedRun) -> None:
    original = run.s3.get(run.asset_keys[0])
    run.put_raw(run.asset_keys[0] + ".orig", original, "image/png")

    def edit(doc: dict[str, Any]) -> None:
        _assets(doc)[0]["url"] = run.s3.get_durable_url(run.asset_keys[0] + ".orig")

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "asset", "URL points at", ".orig")
    _failed(report, "signature", "does not match the manifest")


def test_an_added_asset_fails(run: SignedRun) -> None:
    data = b"smuggled"
    digest = hashlib.sha256(data).hexdigest()
    extra_key = f"genblaze/assets/{digest[:2]}/{digest[2:4]}/{digest}.png"
    run.put_raw(extra_key, data, "image/png")

    def edit(doc: dict[str, Any]) -> None:
        first = _assets(doc)[0]
        added = {**first, "asset_id": "smuggled", "sha256": digest, "size_bytes": len(data)}
        added["metadata"] = {"stored": {"bucket": BUCKET, "key": extra_key}}
        added["url"] = run.s3.get_durable_url(extra_key)
        doc["run"]["steps"][0]["assets"].append(added)

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "signature", "does not match the manifest")
    _failed(report, "envelope", f"s3://{BUCKET}/{extra_key} is missing from the envelope")


def test_a_removed_asset_fails(run: SignedRun) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["run"]["steps"][0]["assets"].pop()

    run.rewrite(edit)
    report = _verify(run)
    _failed(report, "signature", "does not match the manifest")
    _failed(report, "envelope", "the envelope names", "which the manifest does not")


def test_a_new_manifest_version_fails_even_with_the_same_bytes(run: SignedRun) -> None:
    run.put_raw(run.key, run.s3.get(run.key))  # unlocked copy on top of the locked one
    report = _verify(run)
    _failed(report, "lock", "a new version was put")
    _failed(report, "version", "2 versions")


def test_a_moved_manifest_fails(run: SignedRun) -> None:
    moved = run.key.replace("manifests/", "manifests/copy-")
    run.put_raw(moved, run.s3.get(run.key))
    report = verify_manifest(run.s3, moved, public_key=run.public_key)
    _failed(report, "record", f"written as s3://{BUCKET}/{run.key}", "moved or copied")


def test_a_swapped_envelope_fails(run: SignedRun) -> None:
    """Another run's envelope, signed by the same key, put over this one's."""
    other = finalize_signed_run(run.s3, run.private_key, seed="other")
    run.put_raw(run.envelope_key, run.s3.get(other.envelope_key))
    report = _verify(run)
    _failed(report, "envelope", "disagrees with the manifest")
    _failed(report, "envelope", "2 versions")


def test_an_envelope_signed_by_another_key_fails(run: SignedRun) -> None:
    from genblaze_s3.ingest.finalize.attestation import sign_envelope

    attacker = ManifestSigner(Ed25519PrivateKey.generate())
    body = run.s3.get(run.key)
    run.put_raw(run.envelope_key, sign_envelope(attacker, run.document(), body, BUCKET, run.key))
    _failed(_verify(run), "signature", "envelope signed by key", attacker.key_id, "none of them")


def test_a_signature_from_another_key_fails_naming_it(run: SignedRun) -> None:
    attacker = ManifestSigner(Ed25519PrivateKey.generate())
    run.put_raw(run.asset_keys[2], b"replaced", "image/png")

    def edit(doc: dict[str, Any]) -> None:
        asset = _assets(doc)[2]
        asset["sha256"], asset["size_bytes"] = hashlib.sha256(b"replaced").hexdigest(), 8

    run.rewrite(edit, signer=attacker)
    report = _verify(run)
    _failed(report, "signature", f"signed by key {attacker.key_id}", "not a trusted key")
    # Without a trusted key, "any key will do" no longer holds: origin is unproven (exit 3)
    # at best, and here the untouched envelope still disagrees with the manifest.
    assert verify_manifest(run.s3, run.key).exit_code != 0


def test_a_stripped_signature_fails_when_a_key_is_trusted(run: SignedRun) -> None:
    """Issue row 1: overwrite an asset, edit its sha256/size, recompute the hash, delete
    the signature, put a new version."""
    run.put_raw(run.asset_keys[0], b"replaced", "image/png")

    def edit(doc: dict[str, Any]) -> None:
        asset = _assets(doc)[0]
        asset["sha256"], asset["size_bytes"] = hashlib.sha256(b"replaced").hexdigest(), 8

    run.rewrite(edit, strip=True)
    report = _verify(run)
    _failed(report, "signature", "not signed", "stripped")
    assert "VERIFIED" not in report.summary()


def test_stripped_with_tracks_covered_still_fails_without_a_key(run: SignedRun) -> None:
    """The same attack covering its tracks (record edited, envelope deleted), checked
    without any trusted key: the rewritten manifest is a new, unlocked version."""

    def edit(doc: dict[str, Any]) -> None:
        doc["run"]["metadata"]["genblaze_s3"]["envelope_key"] = None

    run.rewrite(edit, strip=True)
    run.s3.client.delete_object(Bucket=BUCKET, Key=run.envelope_key)  # a delete marker
    report = verify_manifest(run.s3, run.key)
    _failed(report, "lock", "a new version was put")
    _failed(report, "version", "2 versions")
    _failed(_verify(run), "signature", "not signed")


def test_a_deleted_envelope_fails_when_the_manifest_names_it(run: SignedRun) -> None:
    run.s3.client.delete_object(Bucket=BUCKET, Key=run.envelope_key)
    _failed(_verify(run), "envelope", "missing: the signed manifest names it")


def test_a_content_addressed_key_must_name_the_assets_digest(
    moto_bucket: S3StorageBackend,
) -> None:
    """Unsigned run, content-only: the bytes at the new key match the manifest, but the
    key names another digest."""
    run = finalize_signed_run(moto_bucket, None)
    wrong = run.asset_keys[1]  # names asset 1's digest; asset 0's bytes are put there
    run.put_raw(wrong + ".bak", run.s3.get(wrong), "image/png")
    run.put_raw(wrong, run.s3.get(run.asset_keys[0]), "image/png")

    def edit(doc: dict[str, Any]) -> None:
        asset = _assets(doc)[0]
        asset["metadata"]["stored"]["key"] = wrong
        asset["url"] = run.s3.get_durable_url(wrong)

    run.rewrite(edit)
    report = verify_manifest(run.s3, run.key, content_only=True)
    _failed(report, "asset", "key names SHA-256")


def test_without_a_trusted_key_a_signed_run_is_unproven_unless_content_only(
    run: SignedRun,
) -> None:
    report = verify_manifest(run.s3, run.key)
    assert report.verdict is Verdict.UNPROVEN and report.exit_code == 3
    assert report.content_intact and not report.origin_proven
    assert "origin not proven" in report.summary() and report.key_id in report.summary()
    content = verify_manifest(run.s3, run.key, content_only=True)
    assert content.verdict is Verdict.CONTENT_ONLY and content.exit_code == 0
    assert content.summary().startswith("CONTENT INTACT")
    with pytest.raises(ValueError):
        verify_manifest(run.s3, run.key, content_only=True, public_key=run.public_key)


def test_rotated_keys_keep_old_manifests_verifying_by_key_id(
    moto_bucket: S3StorageBackend,
) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = finalize_signed_run(moto_bucket, old, seed="before")
    after = finalize_signed_run(moto_bucket, new, seed="after")
    trusted = [new.public_key(), old.public_key()]
    for run, signer in ((before, old), (after, new)):
        report = verify_manifest(run.s3, run.key, trusted_keys=trusted)
        assert report.verdict is Verdict.VERIFIED and report.key_id == key_id(signer.public_key())
    retired = verify_manifest(before.s3, before.key, trusted_keys=[new.public_key()])
    _failed(retired, "signature", f"signed by key {key_id(old.public_key())}", "not a trusted")


def test_a_v1_signature_from_0_4_still_verifies_and_says_what_it_covers(
    moto_bucket: S3StorageBackend,
) -> None:
    from genblaze_core.models.manifest import Manifest

    key = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, None, lock=False)
    manifest = Manifest.model_validate(run.document())
    manifest.signature = ManifestSigner(key).sign_hash_v1(manifest.canonical_hash)
    run.s3.client.delete_object(Bucket=BUCKET, Key=run.key)
    run.put_raw(run.key, manifest.to_canonical_json().encode())
    report = verify_manifest(run.s3, run.key, public_key=key.public_key())
    sig = [f for f in report.findings if f.check == "signature"]
    assert report.origin_proven and sig[0].level is Level.OK and "v1" in sig[0].message
    assert "not asset locations" in sig[0].message
