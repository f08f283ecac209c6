"""Server-side copy, switching to multipart copy (UploadPartCopy) for large sources.

A single CopyObject is limited to 5 GiB sources. Above the threshold the copy
is split into byte-range parts copied in parallel inside the store; bytes never
cross the client. Like s3transfer's ``CreateMultipartUploadTask``, the abort is
arranged the moment the upload id exists, so no failure path leaves a billable
orphan upload behind.
"""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from genblaze_s3.backend import calls
from genblaze_s3.backend.encryption import Encryption

MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_COPY_THRESHOLD = 5 * 1024**3  # CopyObject's own limit
DEFAULT_COPY_PART_SIZE = 512 * 1024 * 1024
COPY_CONCURRENCY = 4

# Object properties CopyObject carries over by itself but a multipart copy must
# restate on CreateMultipartUpload.
_CARRIED_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "Metadata",
)


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """Byte ranges (inclusive) of a multipart copy, numbered from 1."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def for_size(cls, size: int, part_size: int) -> CopyPlan:
        """Split ``size`` bytes into parts of ``part_size`` (grown to stay <= 10,000 parts)."""
        part = max(part_size, MIN_PART_SIZE, math.ceil(size / MAX_PARTS))
        ranges = tuple((start, min(start + part, size) - 1) for start in range(0, size, part))
        return cls(ranges=ranges or ((0, -1),))


def multipart_copy(
    client: Any,
    bucket: str,
    src_key: str,
    dst_key: str,
    *,
    source_head: dict[str, Any],
    part_size: int,
    encryption: Encryption | None,
) -> None:
    """Copy ``src_key`` to ``dst_key`` with UploadPartCopy; aborts on any failure."""
    size = int(source_head.get("ContentLength", 0))
    create_args: dict[str, Any] = {k: source_head[k] for k in _CARRIED_HEADERS if k in source_head}
    part_args: dict[str, Any] = {}
    if encryption is not None:
        create_args.update(encryption.to_put_args())
        part_args.update(encryption.to_copy_source_args())
        if encryption.is_customer_key:
            part_args.update(encryption.to_put_args())
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=dst_key, **create_args)[
        "UploadId"
    ]
    try:
        plan = CopyPlan.for_size(size, part_size)

        def copy_part(numbered: tuple[int, tuple[int, int]]) -> dict[str, Any]:
            number, (first, last) = numbered
            resp = client.upload_part_copy(
                Bucket=bucket,
                Key=dst_key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": src_key},
                CopySourceRange=f"bytes={first}-{last}",
                **part_args,
            )
            return {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}

        with ThreadPoolExecutor(max_workers=COPY_CONCURRENCY) as pool:
            parts = list(pool.map(copy_part, enumerate(plan.ranges, start=1)))
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=dst_key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **calls.read_args(encryption),
        )
    except BaseException:
        # The original failure matters more than a failed cleanup (the bucket's
        # abort-incomplete-multipart lifecycle rule is the backstop).
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=bucket, Key=dst_key, UploadId=upload_id)
        raise


def copy_within_bucket(
    client: Any,
    bucket: str,
    src_key: str,
    dst_key: str,
    *,
    encryption: Encryption | None,
    threshold: int,
    part_size: int,
) -> None:
    """CopyObject, or :func:`multipart_copy` for a source above ``threshold`` bytes."""
    head = client.head_object(Bucket=bucket, Key=src_key, **calls.read_args(encryption))
    if int(head.get("ContentLength", 0)) > threshold:
        multipart_copy(
            client,
            bucket,
            src_key,
            dst_key,
            source_head=head,
            part_size=part_size,
            encryption=encryption,
        )
        return
    client.copy_object(
        Bucket=bucket,
        Key=dst_key,
        CopySource={"Bucket": bucket, "Key": src_key},
        **(encryption.to_copy_args() if encryption is not None else {}),
    )


__all__ = [
    "COPY_CONCURRENCY",
    "CopyPlan",
    "DEFAULT_COPY_PART_SIZE",
    "DEFAULT_COPY_THRESHOLD",
    "copy_within_bucket",
    "multipart_copy",
]
