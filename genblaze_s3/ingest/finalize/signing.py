"""Ed25519 signatures on manifests: genblaze's reserved ``Manifest.signature``, filled.

What is signed: the manifest's canonical hash (which covers every hashed field,
fetch provenance included; see :mod:`.provenance`), prefixed for domain
separation, so a signature made here can never be replayed as a signature over
some other message of the same key::

    message   = b"genblaze-manifest-v1:" + canonical_hash (ASCII hex)
    signature = "ed25519:<key id>:<base64url(Ed25519 signature), no padding>"
    key id    = first 16 hex digits of SHA-256(raw 32-byte public key)

``signature`` is outside the canonical hash (genblaze-core excludes it), so
signing does not change the hash and genblaze-core's ``verify()`` is unaffected.

Keys (``GENBLAZE_SIGNING_KEY`` for workers; ``--public-key`` for the verifier) are
accepted as PEM text, a path to a PEM file, or base64 of the raw 32 bytes.
Generate one with ``openssl genpkey -algorithm ed25519 -out signing.pem`` and
publish ``openssl pkey -in signing.pem -pubout``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEME = "ed25519"
CONTEXT = b"genblaze-manifest-v1:"


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


class ManifestSigner:
    """Signs canonical hashes with one Ed25519 key (built once at worker start)."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_setting(cls, value: str) -> ManifestSigner:
        return cls(load_private_key(value))

    def sign_hash(self, canonical_hash: str) -> str:
        sig = self._key.sign(CONTEXT + canonical_hash.encode("ascii"))
        return f"{SCHEME}:{self.key_id}:{_b64url(sig)}"

    def sign(self, manifest: Any) -> None:
        """Fill ``manifest.signature`` over its (already computed) canonical hash."""
        if not manifest.canonical_hash:
            manifest.compute_hash()
        manifest.signature = self.sign_hash(manifest.canonical_hash)


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    key_id: str | None
    reason: str


def verify_signature(signature: str, canonical_hash: str, public_key: Any) -> SignatureCheck:
    """Whether ``signature`` is the given key's Ed25519 signature over ``canonical_hash``."""
    from cryptography.exceptions import InvalidSignature

    scheme, _, rest = signature.partition(":")
    kid, _, b64 = rest.partition(":")
    if scheme != SCHEME or not kid or not b64:
        return SignatureCheck(False, None, f"unknown signature format (scheme {scheme!r})")
    expected_kid = key_id(public_key)
    if kid != expected_kid:
        return SignatureCheck(
            False, kid, f"signed by key {kid}, not by the given key {expected_kid}"
        )
    try:
        raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        public_key.verify(raw, CONTEXT + canonical_hash.encode("ascii"))
    except (InvalidSignature, binascii.Error, ValueError):
        return SignatureCheck(False, kid, "signature does not match the canonical hash")
    return SignatureCheck(True, kid, "signature valid")
