"""The DSSE / in-toto envelope finalize writes, checked by code nobody here wrote.

securesystemslib's ``dsse.Envelope.verify`` checks the signature (PAE, Ed25519,
key id) and in-toto-attestation's ``Statement`` parses and validates the payload;
README's consumer snippet runs as written against the bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib import exceptions as sslib_errors
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.finalize.attestation import PREDICATE_TYPE
from genblaze_s3.ingest.finalize.signing import key_id
from genblaze_s3.ingest.finalize.verify import Verdict, verify_manifest
from genblaze_s3.ingest.models import JobState
from tests.unit.provenance_fixtures import BUCKET, finalize_signed_run, moto_bucket

__all__ = ["moto_bucket"]  # the fixture, imported for pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _sslib_key(public_key: Any) -> SSlibKey:
    return SSlibKey.from_crypto(public_key, keyid=key_id(public_key))


def test_securesystemslib_verifies_the_envelope_and_in_toto_parses_its_statement(
    moto_bucket: S3StorageBackend,
) -> None:
    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private)
    envelope = Envelope.from_dict(json.loads(moto_bucket.get(run.envelope_key)))
    accepted = envelope.verify([_sslib_key(private.public_key())], 1)
    assert list(accepted) == [key_id(private.public_key())]
    with pytest.raises(sslib_errors.VerificationError):
        other = Ed25519PrivateKey.generate().public_key()
        envelope.verify([SSlibKey.from_crypto(other, keyid=key_id(private.public_key()))], 1)
    assert envelope.payload_type == "application/vnd.in-toto+json"
    statement = Statement.copy_from_pb(
        json_format.Parse(envelope.payload, statement_pb2.Statement())
    )
    statement.validate()  # in-toto's own rules: type, subjects with digests, predicate
    assert statement.pb.predicate_type == PREDICATE_TYPE
    manifest_body = moto_bucket.get(run.key)
    subjects = {s.name: dict(s.digest) for s in statement.pb.subject}
    assert subjects == {
        **{
            f"s3://{BUCKET}/{k}": {"sha256": hashlib.sha256(moto_bucket.get(k)).hexdigest()}
            for k in run.asset_keys
        },
        f"s3://{BUCKET}/{run.key}": {"sha256": hashlib.sha256(manifest_body).hexdigest()},
    }
    predicate = json.loads(envelope.payload)["predicate"]
    assert predicate["job_id"] == run.job_id and predicate["tenant"] == "acme"
    view = run.store.get_job(run.job_id)  # the job document names both, and the key id
    assert view is not None and view.manifest.envelope_key == run.envelope_key
    assert view.manifest.key_id == key_id(private.public_key())
    assert predicate["manifest"]["canonical_hash"] == json.loads(manifest_body)["canonical_hash"]
    assert {a["object"] for a in predicate["assets"]} == {
        f"s3://{BUCKET}/{k}" for k in run.asset_keys
    }


def test_securesystemslib_refuses_an_edited_payload(moto_bucket: S3StorageBackend) -> None:
    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private)
    envelope = Envelope.from_dict(json.loads(moto_bucket.get(run.envelope_key)))
    envelope.payload = envelope.payload.replace(b"acme", b"evil")
    with pytest.raises(sslib_errors.VerificationError):
        envelope.verify([_sslib_key(private.public_key())], 1)


def test_the_envelope_is_locked_like_the_manifest(moto_bucket: S3StorageBackend) -> None:
    run = finalize_signed_run(moto_bucket, Ed25519PrivateKey.generate())
    heads = [
        moto_bucket.client.head_object(Bucket=BUCKET, Key=k) for k in (run.key, run.envelope_key)
    ]
    assert heads[0]["ObjectLockMode"] == heads[1]["ObjectLockMode"] == "GOVERNANCE"
    assert heads[0]["ObjectLockRetainUntilDate"] == heads[1]["ObjectLockRetainUntilDate"]
    assert heads[1]["ContentType"] == "application/vnd.dsse.envelope.v1+json"


def test_an_unsigned_deployment_writes_no_envelope(moto_bucket: S3StorageBackend) -> None:
    run = finalize_signed_run(moto_bucket, None)
    assert not moto_bucket.exists(run.envelope_key)
    record = run.document()["run"]["metadata"]["genblaze_s3"]
    assert record["envelope_key"] is None and record["signed_at"] is None
    assert record["manifest_key"] == run.key and record["bucket"] == BUCKET


def test_a_delivery_that_died_between_the_two_puts_is_finished_by_the_next(
    moto_bucket: S3StorageBackend,
) -> None:
    from genblaze_s3.ingest.finalize.manifest import finalize_job
    from genblaze_s3.ingest.finalize.signing import ManifestSigner

    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private, lock=False)
    versions = moto_bucket.client.list_object_versions(Bucket=BUCKET, Prefix=run.envelope_key)
    for v in versions["Versions"]:  # as if the envelope put never happened
        moto_bucket.client.delete_object(
            Bucket=BUCKET, Key=run.envelope_key, VersionId=v["VersionId"]
        )
    run.store.redis.hset(f"genblaze:job:{run.job_id}", "state", "finalizing")
    state = finalize_job(
        run.store, lambda d: moto_bucket, run.job_id, signer=ManifestSigner(private)
    )
    assert state == JobState.SUCCEEDED
    report = verify_manifest(moto_bucket, run.key, public_key=private.public_key())
    assert report.verdict is Verdict.VERIFIED, list(report.lines())


def test_an_envelope_whose_manifest_put_failed_gets_the_manifest_it_attests(
    moto_bucket: S3StorageBackend,
) -> None:
    """The two puts run at once: when only the envelope landed, the next delivery writes
    exactly the manifest that envelope signed (same bytes, same signature)."""
    from genblaze_s3.ingest.finalize.manifest import finalize_job
    from genblaze_s3.ingest.finalize.signing import ManifestSigner

    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private, lock=False)
    original = moto_bucket.get(run.key)
    versions = moto_bucket.client.list_object_versions(Bucket=BUCKET, Prefix=run.key)
    for v in versions["Versions"]:
        if v["Key"] == run.key:
            moto_bucket.client.delete_object(Bucket=BUCKET, Key=run.key, VersionId=v["VersionId"])
    assert not moto_bucket.exists(run.key)
    run.store.redis.hset(f"genblaze:job:{run.job_id}", "state", "finalizing")
    state = finalize_job(
        run.store, lambda d: moto_bucket, run.job_id, signer=ManifestSigner(private)
    )
    assert state == JobState.SUCCEEDED
    assert moto_bucket.get(run.key) == original
    report = verify_manifest(moto_bucket, run.key, public_key=private.public_key())
    assert report.verdict is Verdict.VERIFIED, list(report.lines())


def test_an_envelope_key_held_by_another_object_is_a_conflict_and_nothing_is_written(
    moto_bucket: S3StorageBackend,
) -> None:
    def occupy(manifest_key: str) -> None:
        moto_bucket.put(manifest_key.removesuffix(".json") + ".intoto.json", b"someone else's")

    run = finalize_signed_run(
        moto_bucket, Ed25519PrivateKey.generate(), before_finalize=occupy, expect=JobState.FAILED
    )
    view = run.store.get_job(run.job_id)
    assert view is not None and view.error is not None and view.error.code == "key_conflict"
    assert not moto_bucket.exists(run.key)
    assert moto_bucket.get(run.envelope_key) == b"someone else's"


def test_the_readme_consumer_snippet_verifies_a_run_with_upstream_libraries_alone(
    moto_bucket: S3StorageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text()
    block = re.search(
        r"<!-- consumer-verify:start -->\n```python\n(.*?)```\n<!-- consumer-verify:end -->",
        text,
        re.DOTALL,
    )
    assert block is not None
    code = block.group(1)
    assert "genblaze" not in code  # a consumer does not install this package
    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private)
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "operator.pub.pem").write_bytes(pem)
    (tmp_path / "RUN_ID.intoto.json").write_bytes(moto_bucket.get(run.envelope_key))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    exec(compile(code, "README.md", "exec"), {})  # moto answers boto3 here
    moto_bucket.client.put_object(Bucket=BUCKET, Key=run.asset_keys[0], Body=b"tampered")
    with pytest.raises(AssertionError, match=re.escape(run.asset_keys[0])):
        exec(compile(code, "README.md", "exec"), {})
    other = Ed25519PrivateKey.generate().public_key()
    (tmp_path / "operator.pub.pem").write_bytes(
        other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(sslib_errors.VerificationError):
        exec(compile(code, "README.md", "exec"), {})
