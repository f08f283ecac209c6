"""The standard envelope beside each signed manifest: an in-toto Statement v1 in DSSE.

Why: ``Manifest.signature`` is our own string format; a consumer of the bucket
should not need this package to trust it. The in-toto Statement (``subject[]`` of
name + sha256, ``predicateType``, ``predicate``) inside a DSSE envelope (Ed25519
over the PAE of payload type and payload) is what supply-chain tooling reads
(securesystemslib's ``dsse.Envelope.verify``, in-toto, Sigstore-style verifiers);
README shows the five lines a consumer runs with those libraries alone.

The statement is a pure function of the stored manifest's bytes and location
(:func:`statement_for`), so the writer and any verifier build the same one, and
"the envelope agrees with the manifest" is an equality test:

- ``subject``: every stored asset object as ``s3://bucket/key`` with its sha256
  (one subject per object: content-addressed assets with equal bytes share one),
  then the manifest object itself with the SHA-256 of its exact stored bytes (so
  the envelope binds every byte of the manifest, its signature included);
- ``predicateType``: :data:`PREDICATE_TYPE`;
- ``predicate``: the manifest's location, SHA-256, canonical hash and schema, the
  run and job ids, tenant, signing key id and time, and per asset its id, object
  (whose sha256 is its subject's digest), size, media type and fetch provenance
  (the URL and every other field are bound through the manifest's digest).

The envelope is signed here with the worker's key (the PAE is four fields; no
library is needed to *write* it), and verified in the test suite by
securesystemslib's DSSE verifier and parsed by in-toto-attestation: code nobody
here wrote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genblaze_s3.ingest.finalize.record import RECORD_KEY, STORED_KEY
from genblaze_s3.ingest.finalize.signing import ManifestSigner

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/backblaze-labs/genblaze-s3/attestation/ingested-run/v1"
ENVELOPE_CONTENT_TYPE = "application/vnd.dsse.envelope.v1+json"


class EnvelopeError(ValueError):
    """An envelope that cannot be read as DSSE + in-toto Statement v1."""


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: what the signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _assets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    run = document.get("run") or {}
    return [a for step in run.get("steps") or [] for a in step.get("assets") or []]


def statement_for(
    document: Mapping[str, Any], manifest_sha256: str, bucket: str, manifest_key: str
) -> dict[str, Any]:
    """The in-toto Statement for a stored manifest (see the module doc); pure.

    ``document`` is the manifest JSON as stored (parsed), ``manifest_sha256`` the
    SHA-256 of its stored bytes. Assets without a stored location (not written by
    the workers) are named by their URL.
    """
    run = document.get("run") or {}
    record = (run.get("metadata") or {}).get(RECORD_KEY) or {}
    manifest_uri = s3_uri(bucket, manifest_key)
    subjects: list[dict[str, Any]] = []
    seen: set[str] = set()
    assets: list[dict[str, Any]] = []
    for asset in _assets(document):
        metadata = asset.get("metadata") or {}
        stored = metadata.get(STORED_KEY) or {}
        uri = (
            s3_uri(str(stored.get("bucket")), str(stored.get("key")))
            if stored
            else str(asset.get("url"))
        )
        if uri not in seen:
            seen.add(uri)
            subjects.append({"name": uri, "digest": {"sha256": asset.get("sha256")}})
        assets.append(
            {
                "asset_id": asset.get("asset_id"),
                "object": uri,  # its sha256 is the subject's digest
                "size_bytes": asset.get("size_bytes"),
                "media_type": asset.get("media_type"),
                "fetch": metadata.get("fetch"),
            }
        )
    subjects.append({"name": manifest_uri, "digest": {"sha256": manifest_sha256}})
    predicate = {
        "manifest": {
            "object": manifest_uri,
            "sha256": manifest_sha256,
            "canonical_hash": document.get("canonical_hash"),
            "schema_version": document.get("schema_version"),
        },
        "run_id": run.get("run_id"),
        "job_id": record.get("job_id"),
        "tenant": record.get("tenant"),
        "key_id": record.get("key_id"),
        "signed_at": record.get("signed_at"),
        "assets": assets,
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """Compact JSON (verifiers compare the parsed statement, so no canonical form is needed)."""
    return json.dumps(statement, separators=(",", ":"), check_circular=False).encode()


def sign_envelope(
    signer: ManifestSigner,
    document: Mapping[str, Any],
    manifest_body: bytes,
    bucket: str,
    manifest_key: str,
) -> bytes:
    """The DSSE envelope (JSON bytes) over the statement for this stored manifest."""
    digest = hashlib.sha256(manifest_body).hexdigest()
    payload = statement_bytes(statement_for(document, digest, bucket, manifest_key))
    sig = signer.sign_bytes(pae(PAYLOAD_TYPE, payload))
    # Assembled, not json.dumps'd: base64 and a hex key id need no escaping, and the
    # payload is most of a megabyte for a 1,000-asset run.
    return b"".join(
        (
            b'{"payloadType":"',
            PAYLOAD_TYPE.encode(),
            b'","payload":"',
            base64.b64encode(payload),
            b'","signatures":[{"keyid":"',
            signer.key_id.encode(),
            b'","sig":"',
            base64.b64encode(sig),
            b'"}]}',
        )
    )


@dataclass
class EnvelopeCheck:
    """What an envelope proved: its statement, and which trusted key ids signed it."""

    statement: dict[str, Any]
    key_ids: list[str] = field(default_factory=list)  # every key id named by a signature
    valid_key_ids: list[str] = field(default_factory=list)  # trusted and verified
    invalid_key_ids: list[str] = field(default_factory=list)  # trusted, signature bad


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"{what} is not base64") from exc


def check_envelope(body: bytes, trusted: Mapping[str, Any]) -> EnvelopeCheck:
    """Parse a DSSE envelope and check each signature whose key id is trusted.

    EnvelopeError when it is not a DSSE envelope holding an in-toto Statement v1.
    """
    from cryptography.exceptions import InvalidSignature

    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError("not JSON") from exc
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise EnvelopeError(f"payloadType is not {PAYLOAD_TYPE}")
    payload = _b64(envelope.get("payload"), "payload")
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError("payload is not JSON") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(f"payload is not an in-toto Statement ({STATEMENT_TYPE})")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list):
        raise EnvelopeError("signatures is not a list")
    check = EnvelopeCheck(statement)
    message = pae(PAYLOAD_TYPE, payload)
    for entry in signatures:
        if not isinstance(entry, dict):
            raise EnvelopeError("a signature is not an object")
        kid = str(entry.get("keyid") or "")
        check.key_ids.append(kid or "-")
        public_key = trusted.get(kid)
        if public_key is None:
            continue
        try:
            public_key.verify(_b64(entry.get("sig"), "sig"), message)
        except (InvalidSignature, EnvelopeError):
            check.invalid_key_ids.append(kid)
        else:
            check.valid_key_ids.append(kid)
    return check


def statement_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Where an envelope's statement departs from the one the manifest implies (short, named)."""
    problems: list[str] = []
    for name in ("_type", "predicateType"):
        if expected.get(name) != actual.get(name):
            problems.append(f"{name} is {str(actual.get(name))[:80]!r}")
    want = {s["name"]: s.get("digest") for s in expected.get("subject") or []}
    have: dict[str, Any] = {}
    for s in actual.get("subject") or []:
        if isinstance(s, dict):
            have[str(s.get("name"))] = s.get("digest")
    for name in sorted(set(want) - set(have)):
        problems.append(f"subject {name} is missing from the envelope")
    for name in sorted(set(have) - set(want)):
        problems.append(f"the envelope names {name}, which the manifest does not")
    for name in sorted(set(want) & set(have)):
        if want[name] != have[name]:
            problems.append(f"subject {name} has another digest in the envelope")
    exp_pred, act_pred = expected.get("predicate") or {}, actual.get("predicate")
    if not isinstance(act_pred, dict):
        problems.append("predicate is not an object")
    else:
        for name in sorted(set(exp_pred) | set(act_pred)):
            if exp_pred.get(name) != act_pred.get(name):
                problems.append(f"predicate.{name} differs from the manifest")
    return problems
