"""Ed25519 signatures on manifests: genblaze's reserved ``Manifest.signature``, filled.

What is signed (v2, written since 0.5): **the whole stored manifest document** but
its own ``signature`` field, prefixed for domain separation::

    message   = b"genblaze-manifest-v2:" + SHA-256 hex of the canonical JSON of the
                manifest with "signature": null (genblaze-core's canonical_json)
    signature = "ed25519-v2:<key id>:<base64url(Ed25519 signature), no padding>"
    key id    = first 16 hex digits of SHA-256(raw 32-byte public key)

Why the whole document and not the canonical hash: genblaze-core's canonical
hash leaves out ``asset_id``, ``url``, the run and step ids and the manifest's
transport fields, so a signature over the hash alone (v1, below) let a bucket
writer re-point an asset's URL at other bytes and keep a valid signature. The
document carries everything that locates and describes the bytes: each asset's
URL, bucket and key (``metadata["stored"]``), size, sha256, media type and fetch
provenance, the run's ids, and the ingest record (job, tenant, manifest location,
signing time: see :mod:`.record`).

v1 (``"ed25519:<key id>:<b64>"`` over ``b"genblaze-manifest-v1:" + canonical_hash``)
is still *verified*, so manifests written before keep verifying by key id; a v1
signature proves the content, not the locations (verify says so).

``signature`` is outside the canonical hash (genblaze-core excludes it), so
signing does not change the hash and genblaze-core's ``verify()`` is unaffected.

Keys (``GENBLAZE_SIGNING_KEY`` for workers; ``--public-key`` / ``--keys-file`` for
the verifier, see :mod:`.keyring`) are accepted as PEM text, a path to a PEM file,
or base64 of the raw 32 bytes. ``genblaze-ingest keys generate`` makes one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEME = "ed25519"  # v1: over the canonical hash (verified, no longer written)
SCHEME_V2 = "ed25519-v2"  # v2: over the whole document
CONTEXT = b"genblaze-manifest-v1:"
CONTEXT_V2 = b"genblaze-manifest-v2:"


class SignatureError(ValueError):
    """A key or signature that cannot be read (not: a signature that does not verify)."""


def _raw_public(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def key_id(public_key: Any) -> str:
    """The short, stable name of a public key (which key signed, for rotation)."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _key_material(value: str) -> bytes:
    text = value.strip()
    if "-----BEGIN" in text:
        return text.encode()
    try:
        if Path(text).is_file():
            return Path(text).read_bytes()
    except OSError:  # not a usable path (too long, ...): read it as base64
        pass
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("key is neither PEM, a PEM file nor base64") from exc


def load_private_key(value: str) -> Any:
    """An Ed25519 private key from PEM text, a PEM file path or base64 raw 32 bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return _load_key(
        value,
        lambda pem: load_pem_private_key(pem, password=None),
        Ed25519PrivateKey.from_private_bytes,
        Ed25519PrivateKey,
        "private key",
        "signing key",
    )


def load_public_key(value: str) -> Any:
    """An Ed25519 public key from PEM text, a PEM file path or base64 raw 32 bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return _load_key(
        value,
        load_pem_public_key,
        Ed25519PublicKey.from_public_bytes,
        Ed25519PublicKey,
        "public key",
        "public key",
    )


def _load_key(
    value: str,
    from_pem: Callable[[bytes], Any],
    from_raw: Callable[[bytes], Any],
    key_type: type,
    what: str,
    role: str,
) -> Any:
    """One Ed25519 key (private or public: the loaders and type say which), or SignatureError."""
    data = _key_material(value)
    try:
        key = from_pem(data) if data.lstrip().startswith(b"-----BEGIN") else from_raw(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not an Ed25519 {what}") from exc
    if not isinstance(key, key_type):
        raise SignatureError(f"the {role} must be Ed25519")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def canonical_bytes(normalized: Mapping[str, Any]) -> bytes:
    """genblaze-core's canonical JSON of an already normalized document, as bytes.

    The same ``json.dumps`` arguments as ``genblaze_core.canonical.canonical_json``
    (a test holds them equal); finalize normalizes the manifest once and serializes
    it twice (without, then with its signature) instead of normalizing twice.
    """
    return json.dumps(normalized, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def document_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 hex of the manifest document's canonical JSON with ``signature`` null."""
    from genblaze_s3.ingest.finalize.canonical import normalize

    unsigned = dict(document)
    unsigned["signature"] = None
    return hashlib.sha256(canonical_bytes(normalize(unsigned))).hexdigest()


class ManifestSigner:
    """Signs manifests (and DSSE envelopes) with one Ed25519 key, built once at worker start."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_setting(cls, value: str) -> ManifestSigner:
        return cls(load_private_key(value))

    def sign_bytes(self, message: bytes) -> bytes:
        """The raw Ed25519 signature of ``message`` (the DSSE envelope signs its PAE)."""
        return bytes(self._key.sign(message))

    def sign_digest(self, digest: str) -> str:
        """The v2 ``Manifest.signature`` for a document digest (see :func:`document_digest`)."""
        sig = self._key.sign(CONTEXT_V2 + digest.encode("ascii"))
        return f"{SCHEME_V2}:{self.key_id}:{_b64url(sig)}"

    def sign(self, manifest: Any) -> None:
        """Fill ``manifest.signature`` (v2) over the manifest's whole document."""
        if not manifest.canonical_hash:
            manifest.compute_hash()
        manifest.signature = None
        manifest.signature = self.sign_digest(document_digest(manifest.model_dump(mode="python")))

    def sign_hash_v1(self, canonical_hash: str) -> str:
        """A v1 signature (the canonical hash only): what 0.4 wrote; kept for tests of it."""
        sig = self._key.sign(CONTEXT + canonical_hash.encode("ascii"))
        return f"{SCHEME}:{self.key_id}:{_b64url(sig)}"


@dataclass(frozen=True)
class ParsedSignature:
    """``scheme:key id:base64url`` split; ``version`` 1 or 2."""

    version: int
    key_id: str
    raw: bytes


def parse_signature(signature: str) -> ParsedSignature:
    """The parts of a ``Manifest.signature``; SignatureError when it is not one of ours."""
    scheme, _, rest = signature.partition(":")
    kid, _, b64 = rest.partition(":")
    versions = {SCHEME: 1, SCHEME_V2: 2}
    if scheme not in versions or not kid or not b64:
        raise SignatureError(f"unknown signature format (scheme {scheme[:20]!r})")
    try:
        raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature is not base64url") from exc
    return ParsedSignature(versions[scheme], kid, raw)


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one signature: valid or not, by which key id, and why."""

    ok: bool
    key_id: str | None
    reason: str
    version: int = 0
    known_key: bool = False  # the key id is one of the trusted keys


def verify_signature(
    signature: str,
    document: Mapping[str, Any],
    trusted: Mapping[str, Any],
) -> SignatureCheck:
    """Whether ``signature`` is a trusted key's signature over the manifest ``document``.

    ``document`` is the stored manifest JSON as parsed; ``trusted`` maps key id to an
    Ed25519 public key (a :class:`.keyring.Keyring` is one). A key id that is not
    trusted fails, naming it and the trusted ids.
    """
    from cryptography.exceptions import InvalidSignature

    try:
        parsed = parse_signature(signature)
    except SignatureError as exc:
        return SignatureCheck(False, None, str(exc))
    public_key = trusted.get(parsed.key_id)
    if public_key is None:
        ids = ", ".join(sorted(trusted)) or "none"
        return SignatureCheck(
            False,
            parsed.key_id,
            f"signed by key {parsed.key_id}, which is not a trusted key (trusted: {ids})",
            parsed.version,
        )
    if parsed.version == 1:
        message = CONTEXT + str(document.get("canonical_hash", "")).encode("ascii", "replace")
    else:
        message = CONTEXT_V2 + document_digest(document).encode("ascii")
    try:
        public_key.verify(parsed.raw, message)
    except (InvalidSignature, ValueError):
        what = "the manifest" if parsed.version == 2 else "the canonical hash"
        return SignatureCheck(
            False,
            parsed.key_id,
            f"signature by key {parsed.key_id} does not match {what}",
            parsed.version,
            True,
        )
    if parsed.version == 1:
        reason = (
            f"valid v1 signature by key {parsed.key_id}: it covers the content hash only,"
            " not asset locations"
        )
    else:
        reason = f"valid signature by key {parsed.key_id} over the whole manifest"
    return SignatureCheck(True, parsed.key_id, reason, parsed.version, True)
