"""Trusted public keys by key id, and the key pairs an operator generates.

Why a keyring and not one key: signing keys rotate. Workers sign with one key
(``GENBLAZE_SIGNING_KEY``) at a time; every manifest names its signer's key id
(``ed25519-v2:<key id>:...``), so a verifier holding the current *and the retired*
public keys checks each manifest against the key that signed it, and a manifest
signed by any other key fails naming that key id. A keys file is a plain
concatenation of PEM public keys (``cat 2026-11.pub.pem 2026-12.pub.pem``);
lines outside the PEM blocks (comments) are ignored.

Key ids are the first 16 hex digits of SHA-256 of the raw 32-byte public key: the
same id in ``Manifest.signature``, in the DSSE envelope's ``keyid`` and in
``genblaze-ingest keys show``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genblaze_s3.ingest.finalize.signing import SignatureError, key_id, load_public_key

_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class Keyring(Mapping[str, Any]):
    """Ed25519 public keys by key id (a read-only mapping; empty: nothing trusted)."""

    def __init__(self, keys: Iterable[Any] = ()) -> None:
        self._keys: dict[str, Any] = {}
        for key in keys:
            self._keys[key_id(key)] = key

    def __getitem__(self, kid: str) -> Any:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def with_keys(self, keys: Iterable[Any]) -> Keyring:
        """This keyring plus ``keys``."""
        return Keyring([*self._keys.values(), *keys])

    def describe(self) -> str:
        return ", ".join(sorted(self._keys)) or "none"


def public_keys_from(value: str) -> list[Any]:
    """Every Ed25519 public key in ``value``: a file of one or more PEM keys, PEM text,
    or base64 of raw bytes. SignatureError when none can be read."""
    text = value
    try:
        path = Path(value.strip())
        if "-----BEGIN" not in value and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        return [load_public_key(value)]
    return [load_public_key(block) for block in blocks]


def load_keyring(values: Iterable[str]) -> Keyring:
    """A keyring from ``--public-key`` values and keys files (each may hold several keys)."""
    keys: list[Any] = []
    for value in values:
        try:
            keys.extend(public_keys_from(value))
        except SignatureError as exc:
            shown = value if len(value) < 80 and "\n" not in value else "a key value"
            raise SignatureError(f"{shown}: {exc}") from exc
    return Keyring(keys)


@dataclass(frozen=True)
class GeneratedKey:
    """A new Ed25519 key pair as PEM, with its key id."""

    key_id: str
    private_pem: bytes
    public_pem: bytes


def public_pem(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


def generate_key() -> GeneratedKey:
    """A fresh Ed25519 key pair (PKCS#8 PEM private key, SubjectPublicKeyInfo PEM public)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return GeneratedKey(key_id(private.public_key()), private_pem, public_pem(private.public_key()))
