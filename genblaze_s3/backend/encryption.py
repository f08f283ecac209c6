"""``Encryption``: one value object for SSE-S3, SSE-KMS and SSE-C on every call.

S3 needs the *same* SSE-C key on every request that touches an encrypted object
(put, get, head, ranged get, copy source and destination). Passing one value to
all of them keeps the envelope symmetric.

Two defects of the public package are fixed here:

* botocore now rejects a ``bytes`` ``SSECustomerKey`` (its parameter validator
  wants ``str``) and echoes the raw key in the error. We send the key already
  base64-encoded together with its MD5, which botocore passes through untouched.
* The key is never part of ``repr``/``str``/equality output, and
  :meth:`Encryption.secrets` lets error and log scrubbing find it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_REDACTED = "<redacted>"


class EncryptionMode(StrEnum):
    """Which server-side encryption scheme an object uses."""

    SSE_S3 = "sse-s3"
    SSE_KMS = "sse-kms"
    SSE_C = "sse-c"


@dataclass(frozen=True, slots=True, eq=False)
class Encryption:
    """Server-side encryption settings; build with :meth:`sse_s3`, :meth:`sse_kms`, :meth:`sse_c`.

    For SSE-C the caller owns the 32-byte key: S3 keeps no copy, so losing it
    loses the object. Instances compare by identity so that equality checks
    never touch the key material.
    """

    mode: EncryptionMode
    kms_key_id: str | None = None
    customer_key: bytes | None = field(default=None, repr=False)
    customer_key_md5_b64: str | None = field(default=None, repr=False)

    @classmethod
    def sse_s3(cls) -> Encryption:
        """Server-managed AES-256 keys (``ServerSideEncryption: AES256``)."""
        return cls(mode=EncryptionMode.SSE_S3)

    @classmethod
    def sse_kms(cls, kms_key_id: str) -> Encryption:
        """KMS-managed keys; ``kms_key_id`` is an ARN, alias or key id."""
        if not kms_key_id:
            raise ValueError("Encryption.sse_kms requires a non-empty kms_key_id")
        return cls(mode=EncryptionMode.SSE_KMS, kms_key_id=kms_key_id)

    @classmethod
    def sse_c(cls, customer_key: bytes, *, key_md5_b64: str | None = None) -> Encryption:
        """Customer-provided AES-256 key (exactly 32 raw bytes)."""
        if not isinstance(customer_key, bytes | bytearray) or len(customer_key) != 32:
            got = (
                f"{len(customer_key)} bytes"
                if isinstance(customer_key, bytes | bytearray)
                else type(customer_key).__name__
            )
            raise ValueError(f"Encryption.sse_c requires a 32-byte AES-256 key; got {got}")
        key = bytes(customer_key)
        md5 = key_md5_b64 or base64.b64encode(hashlib.md5(key).digest()).decode("ascii")
        return cls(mode=EncryptionMode.SSE_C, customer_key=key, customer_key_md5_b64=md5)

    def __post_init__(self) -> None:
        if self.mode is EncryptionMode.SSE_KMS and not self.kms_key_id:
            raise ValueError("Encryption(mode=SSE_KMS) requires kms_key_id")
        if self.mode is EncryptionMode.SSE_C and (
            self.customer_key is None or len(self.customer_key) != 32
        ):
            raise ValueError("Encryption(mode=SSE_C) requires a 32-byte customer_key")
        if self.mode is EncryptionMode.SSE_C and self.customer_key_md5_b64 is None:
            md5 = base64.b64encode(hashlib.md5(self.customer_key or b"").digest()).decode()
            object.__setattr__(self, "customer_key_md5_b64", md5)

    @property
    def is_customer_key(self) -> bool:
        """True for SSE-C: reads, heads and copies need the key too."""
        return self.mode is EncryptionMode.SSE_C

    def _customer_args(self, prefix: str) -> dict[str, Any]:
        key_b64 = base64.b64encode(self.customer_key or b"").decode("ascii")
        return {
            f"{prefix}SSECustomerAlgorithm": "AES256",
            f"{prefix}SSECustomerKey": key_b64,
            f"{prefix}SSECustomerKeyMD5": self.customer_key_md5_b64,
        }

    def to_put_args(self) -> dict[str, Any]:
        """Parameters for PutObject / CreateMultipartUpload / UploadPart / copy destination."""
        if self.mode is EncryptionMode.SSE_S3:
            return {"ServerSideEncryption": "AES256"}
        if self.mode is EncryptionMode.SSE_KMS:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return self._customer_args("")

    def to_read_args(self) -> dict[str, Any]:
        """Parameters for GetObject / HeadObject: only SSE-C needs any."""
        return self._customer_args("") if self.is_customer_key else {}

    def to_copy_source_args(self) -> dict[str, Any]:
        """``CopySource*`` parameters so the server can decrypt an SSE-C source."""
        return self._customer_args("CopySource") if self.is_customer_key else {}

    def to_copy_args(self) -> dict[str, Any]:
        """CopyObject / UploadPartCopy: read the source and re-encrypt the target alike."""
        return {**self.to_copy_source_args(), **self.to_put_args()}

    # Names kept from the public 0.3.x package.
    to_put_extra_args = to_put_args
    to_get_extra_args = to_read_args
    to_head_extra_args = to_read_args
    to_copy_extra_args = to_copy_args

    def secrets(self) -> tuple[str, ...]:
        """Every textual form of the key material, for scrubbing messages and logs."""
        if not self.is_customer_key or self.customer_key is None:
            return ()
        raw = self.customer_key
        return (base64.b64encode(raw).decode("ascii"), repr(raw), raw.hex())

    def __repr__(self) -> str:
        if self.mode is EncryptionMode.SSE_C:
            return f"Encryption(mode={self.mode.value!r}, customer_key={_REDACTED})"
        if self.mode is EncryptionMode.SSE_KMS:
            return f"Encryption(mode={self.mode.value!r}, kms_key_id={self.kms_key_id!r})"
        return f"Encryption(mode={self.mode.value!r})"

    __str__ = __repr__


__all__ = ["Encryption", "EncryptionMode"]
