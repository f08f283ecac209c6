"""Bulk deletes and lifecycle rules: pure planning separated from the S3 calls.

``merge_lifecycle_rules`` is a pure function so the rule the public package got
wrong (it *replaced* a bucket's lifecycle configuration, silently dropping the
owner's rules) is unit-testable without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from genblaze_core.exceptions import StorageError
from genblaze_core.storage.types import DeleteError, DeleteResult, ListPage

from genblaze_s3.backend.errors import to_storage_error
from genblaze_s3.backend.s3errors import error_code

logger = logging.getLogger("genblaze_s3.backend")

LifecycleRules = list[dict[str, Any]]  # S3 LifecycleConfiguration "Rules", as boto3 takes them

DELETE_BATCH_MAX = 1000  # S3 DeleteObjects hard cap per request
ABORT_MULTIPART_RULE_ID = "genblaze-cancel-unfinished-multipart"
NONCURRENT_RULE_ID = "genblaze-expire-noncurrent-versions"
DEFAULT_ABORT_MULTIPART_DAYS = 7
DEFAULT_NONCURRENT_DAYS = 30


def chunked(keys: Sequence[str], size: int = DELETE_BATCH_MAX) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most ``size`` keys."""
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def delete_keys(client: Any, bucket: str, keys: Sequence[str]) -> DeleteResult:
    """DeleteObjects in 1000-key batches; every key ends in ``deleted`` or ``errors``.

    A batch whose request fails as a whole (network, 5xx after retries) is
    reported per key instead of raised, so the caller keeps the completed work.
    """
    deleted: list[str] = []
    errors: list[DeleteError] = []
    for batch in chunked(keys):
        try:
            resp = client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
            )
        except Exception as exc:
            err = to_storage_error(exc, operation="delete_many")
            code = error_code(exc) or str(err.error_code or "backend_error")
            errors.extend(DeleteError(key=k, code=code, message=str(err)) for k in batch)
            continue
        deleted.extend(d["Key"] for d in resp.get("Deleted") or [])
        errors.extend(
            DeleteError(key=e.get("Key", ""), code=e.get("Code", ""), message=e.get("Message", ""))
            for e in resp.get("Errors") or []
        )
    return DeleteResult(deleted=tuple(deleted), errors=tuple(errors), dry_run=False)


def delete_pages(
    prefix: str,
    *,
    list_page: Callable[[str | None], ListPage],
    delete: Callable[[Sequence[str]], DeleteResult],
    dry_run: bool,
) -> DeleteResult:
    """Walk ``prefix`` one listing page at a time, deleting each page before the next.

    Memory holds one page of keys plus the result. A listing failure mid-walk
    does not discard what was already deleted: the result carries it, plus a
    ``DeleteError(key=prefix, code="list_failed")`` marking where the walk stopped.
    """
    deleted: list[str] = []
    errors: list[DeleteError] = []
    token: str | None = None
    page_no = 0
    while True:
        try:
            page = list_page(token)
        except StorageError as exc:
            logger.warning(
                "delete_prefix(%r): listing page %d failed after %d keys: %s",
                prefix,
                page_no + 1,
                len(deleted),
                exc,
            )
            errors.append(
                DeleteError(
                    key=prefix,
                    code="list_failed",
                    message=f"listing page {page_no + 1} failed: {exc}",
                )
            )
            break
        page_no += 1
        keys = [entry.key for entry in page.entries]
        if keys and dry_run:
            deleted.extend(keys)
        elif keys:
            logger.info("delete_prefix(%r): deleting page %d (%d keys)", prefix, page_no, len(keys))
            result = delete(keys)
            deleted.extend(result.deleted)
            errors.extend(result.errors)
        if page.next_token is None:
            break
        token = page.next_token
    return DeleteResult(deleted=tuple(deleted), errors=tuple(errors), dry_run=dry_run)


def default_lifecycle_rules(
    abort_multipart_days: int = DEFAULT_ABORT_MULTIPART_DAYS,
    noncurrent_days: int | None = DEFAULT_NONCURRENT_DAYS,
) -> list[dict[str, Any]]:
    """genblaze's rules: abort stale multipart uploads; expire old manifest versions."""
    rules: list[dict[str, Any]] = [
        {
            "ID": ABORT_MULTIPART_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_multipart_days},
        }
    ]
    if noncurrent_days is not None:
        rules.append(
            {
                "ID": NONCURRENT_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
            }
        )
    return rules


def merge_lifecycle_rules(
    existing: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The bucket's rules with ours added or updated by ``ID``; the owner's rules stay.

    A rule of ours replaces only an existing rule with the same ``ID`` (so
    re-running is idempotent); every other existing rule is kept in order.
    """
    our_ids = {rule["ID"] for rule in ours}
    kept = [dict(rule) for rule in existing if rule.get("ID") not in our_ids]
    return kept + [dict(rule) for rule in ours]


def read_lifecycle_rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    """Current lifecycle rules; ``[]`` when the bucket has none."""
    try:
        resp = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in {"NoSuchLifecycleConfiguration", "NoSuchLifecycle"}:
            return []
        raise
    return list(resp.get("Rules") or [])


def ensure_lifecycle_rules(
    client: Any, bucket: str, ours: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Put ``ours`` merged into the bucket's lifecycle rules; returns the rules now set."""
    merged = merge_lifecycle_rules(read_lifecycle_rules(client, bucket), ours)
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": merged}
    )
    return merged


__all__ = [
    "ABORT_MULTIPART_RULE_ID",
    "DELETE_BATCH_MAX",
    "LifecycleRules",
    "NONCURRENT_RULE_ID",
    "chunked",
    "default_lifecycle_rules",
    "delete_keys",
    "delete_pages",
    "ensure_lifecycle_rules",
    "merge_lifecycle_rules",
    "read_lifecycle_rules",
]
