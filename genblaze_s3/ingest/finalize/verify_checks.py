"""The checks of ``verify`` about the manifest object itself: where it was written, who
signed it, the envelope beside it, its lock and its versions (:mod:`.verify` runs them;
the asset checks live there).

Each check adds findings to the report; a trusted key (a non-empty keyring) makes
every signature check fail closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from genblaze_s3.ingest.finalize.attestation import (
    EnvelopeError,
    statement_differences,
    statement_for,
)
from genblaze_s3.ingest.finalize.attestation import (
    check_envelope as read_envelope,
)
from genblaze_s3.ingest.finalize.objects import s3_code
from genblaze_s3.ingest.finalize.record import IngestRecord, envelope_key_for
from genblaze_s3.ingest.finalize.report import Level, VerifyReport
from genblaze_s3.ingest.finalize.signing import SignatureError, parse_signature, verify_signature

_MAX_LISTED = 5  # statement differences listed one per line before "and N more"


def check_record(record: IngestRecord | None, report: VerifyReport) -> None:
    """The manifest was written to exactly the bucket and key it is read from."""
    if record is None:
        report.add(
            Level.NOTE,
            "record",
            report.key,
            "no ingest record (not written by the workers): asset locations come from URLs",
        )
        return
    written = f"s3://{record.bucket}/{record.manifest_key}"
    if written != report.location:
        report.add(
            Level.FAIL,
            "record",
            report.key,
            f"written as {written}, read at {report.location}: moved or copied",
        )
        return
    report.add(
        Level.OK, "record", report.key, f"written here by job {record.job_id} ({record.tenant})"
    )


def check_signature(
    document: Mapping[str, Any], keyring: Mapping[str, Any], required: bool, report: VerifyReport
) -> None:
    """``Manifest.signature``: mandatory and valid when any key is trusted."""
    signature = document.get("signature")
    trusted = ", ".join(sorted(keyring))
    if not signature:
        if keyring:
            report.add(
                Level.FAIL,
                "signature",
                "-",
                f"manifest is not signed, and a trusted key was given ({trusted}): stripped?",
            )
        else:
            level = Level.FAIL if required else Level.NOTE
            report.add(level, "signature", "-", "manifest is not signed")
        return
    report.signed = True
    try:
        report.key_id = parse_signature(str(signature)).key_id
    except SignatureError as exc:
        report.add(Level.FAIL, "signature", "-", str(exc))
        return
    if not keyring:
        level = Level.FAIL if required else Level.NOTE
        report.add(
            level,
            "signature",
            report.key_id,
            f"signed by key {report.key_id}; no trusted key given, so its origin is not proven",
        )
        return
    check = verify_signature(str(signature), document, keyring)
    report.add(Level.OK if check.ok else Level.FAIL, "signature", report.key_id, check.reason)
    report.origin_proven = check.ok


def _envelope_key(record: IngestRecord | None, manifest_key: str) -> tuple[str, bool]:
    """(where the envelope is, whether the manifest says there is one)."""
    if record is not None and record.envelope_key:
        return record.envelope_key, True
    return envelope_key_for(manifest_key), False


def check_envelope(
    backend: Any,
    document: Mapping[str, Any],
    body: bytes,
    record: IngestRecord | None,
    keyring: Mapping[str, Any],
    report: VerifyReport,
) -> None:
    """The DSSE envelope: present when the manifest names one, signed by the manifest's
    key, and stating exactly what the manifest implies."""
    key, named = _envelope_key(record, report.key)
    try:
        raw = backend.client.get_object(Bucket=backend.bucket, Key=key)["Body"].read()
    except Exception as exc:
        code = s3_code(exc)
        if code not in ("404", "NoSuchKey", "NotFound"):
            report.add(Level.FAIL, "envelope", key, f"cannot be read ({code})")
        elif named:
            report.add(Level.FAIL, "envelope", key, "missing: the signed manifest names it")
        elif report.signed:
            report.add(Level.NOTE, "envelope", key, "none beside this manifest")
        return
    report.envelope_key = key
    try:
        envelope = read_envelope(raw, keyring)
    except EnvelopeError as exc:
        report.add(Level.FAIL, "envelope", key, f"not a DSSE in-toto envelope: {exc}")
        return
    _check_envelope_signature(
        envelope.valid_key_ids, envelope.invalid_key_ids, envelope.key_ids, key, keyring, report
    )
    digest = hashlib.sha256(body).hexdigest()
    expected = statement_for(document, digest, report.bucket, report.key)
    problems = statement_differences(expected, envelope.statement)
    for problem in problems[:_MAX_LISTED]:
        report.add(Level.FAIL, "envelope", key, f"disagrees with the manifest: {problem}")
    if len(problems) > _MAX_LISTED:
        more = len(problems) - _MAX_LISTED
        report.add(Level.FAIL, "envelope", key, f"and {more} more difference(s)")
    if not problems:
        subjects = len(expected["subject"])
        report.add(
            Level.OK,
            "envelope",
            key,
            f"in-toto statement agrees with the manifest ({subjects} subjects)",
        )
    _check_envelope_lock(backend, key, record, report)
    check_versions(backend, key, "envelope", report)


def _check_envelope_signature(
    valid: list[str],
    invalid: list[str],
    named: list[str],
    key: str,
    keyring: Mapping[str, Any],
    report: VerifyReport,
) -> None:
    ids = ", ".join(named) or "none"
    if not keyring:
        report.add(Level.NOTE, "signature", key, f"envelope signed by key(s) {ids}; not checked")
        return
    if invalid and not valid:
        report.add(
            Level.FAIL,
            "signature",
            key,
            f"envelope signature by key {invalid[0]} does not match its statement",
        )
    elif not valid:
        report.add(
            Level.FAIL,
            "signature",
            key,
            f"envelope signed by key(s) {ids}, none of them trusted ({', '.join(sorted(keyring))})",
        )
    elif report.key_id is not None and report.key_id not in valid:
        report.add(
            Level.FAIL,
            "signature",
            key,
            f"envelope signed by key {valid[0]}, the manifest by {report.key_id}",
        )
        report.origin_proven = False
    else:
        report.add(Level.OK, "signature", key, f"envelope signature valid (DSSE, key {valid[0]})")


def _same_lock(mode: str | None, until: datetime | None, written: Any) -> bool:
    """The lock on an object is the one written (stores keep whole seconds, some less)."""
    if mode != written.mode or until is None:
        return False
    return abs((until - written.retain_until).total_seconds()) < 1


def _lock_of(backend: Any, key: str) -> tuple[str | None, datetime | None]:
    head = backend.client.head_object(Bucket=backend.bucket, Key=key)
    until = head.get("ObjectLockRetainUntilDate")
    return head.get("ObjectLockMode"), until if isinstance(until, datetime) else None


def _check_envelope_lock(
    backend: Any, key: str, record: IngestRecord | None, report: VerifyReport
) -> None:
    written = record.lock if record is not None else None
    if written is None:
        return
    try:
        mode, until = _lock_of(backend, key)
    except Exception as exc:
        report.add(
            Level.FAIL, "lock", key, f"cannot read the envelope's retention ({s3_code(exc)})"
        )
        return
    if until is None or not _same_lock(mode, until, written):
        now = f"{mode} until {until.isoformat()}" if mode and until else "no retention"
        report.add(
            Level.FAIL,
            "lock",
            key,
            f"envelope has {now}, not the manifest's {written.mode} lock until "
            f"{written.retain_until.isoformat()}",
        )
    else:
        report.add(Level.OK, "lock", key, f"envelope {mode} until {until.isoformat()}")


def check_lock(
    backend: Any, key: str, record: IngestRecord | None, required: bool, report: VerifyReport
) -> None:
    """The manifest's retention; the one the record says it was written with, if any.

    A bucket writer cannot change a locked version, only put a new one: that new
    version carries no (or another) lock, which is how it shows here.
    """
    try:
        mode, until = _lock_of(backend, key)
    except Exception as exc:
        report.add(
            Level.FAIL, "lock", key, f"cannot read the manifest's retention ({s3_code(exc)})"
        )
        return
    written = record.lock if record is not None else None
    if written is not None and not _same_lock(mode, until, written):
        now = f"{mode} until {until.isoformat()}" if mode and until else "no retention"
        report.add(
            Level.FAIL,
            "lock",
            key,
            f"this version has {now}, not the {written.mode} lock until "
            f"{written.retain_until.isoformat()} it was written with (a new version was put)",
        )
    elif not mode or until is None:
        level = Level.FAIL if required else Level.NOTE
        report.add(level, "lock", key, "manifest is not under Object Lock retention")
    elif until <= datetime.now(UTC):
        report.add(Level.FAIL, "lock", key, f"{mode} retention ended at {until.isoformat()}")
    else:
        report.add(Level.OK, "lock", key, f"{mode} until {until.isoformat()}")


def check_versions(backend: Any, key: str, check: str, report: VerifyReport) -> None:
    """The key holds one version: a second means the object was rewritten."""
    try:
        listing = backend.client.list_object_versions(Bucket=backend.bucket, Prefix=key)
    except Exception as exc:  # no permission, or a store without versioning
        report.add(Level.NOTE, check, key, f"versions not listed ({s3_code(exc)})")
        return
    versions = [
        v
        for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        if v.get("Key") == key
    ]
    if len(versions) > 1:
        ids = ", ".join(str(v.get("VersionId"))[:12] for v in versions[:4])
        report.add(
            Level.FAIL, check, key, f"{len(versions)} versions ({ids}): the object was rewritten"
        )
    else:
        report.add(Level.OK, check, key, "one version")
