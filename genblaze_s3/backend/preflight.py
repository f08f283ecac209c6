"""Bucket preflight: one HeadBucket that turns misconfiguration into a clear error.

What it decides, once per backend (double-checked under a lock, because
``ObjectStorageSink`` calls the backend from a thread pool):

* success -> the backend is verified; no further HeadBucket.
* 301 with ``x-amz-bucket-region`` -> the bucket lives elsewhere: rebuild the
  client for that region (regional services such as B2 get the endpoint from
  their template) and verify again.
* B2 403 -> B2 hides cross-region buckets behind 403 in some regions, so probe
  the other published B2 regions in parallel (3 s timeout, no retries) and name
  the region that answers 200, or say the bucket exists nowhere.
* other permanent failures (auth, missing bucket, signature) -> a typed
  ``StorageError`` that is remembered: later calls re-raise it without traffic.
* transient failures (5xx, throttling, network) -> raised but *not* remembered,
  so the next call tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import RETRYABLE_STORAGE_CODES, StorageErrorCode

from genblaze_s3.backend.client import ClientSettings, build_client
from genblaze_s3.backend.errors import restated, to_storage_error
from genblaze_s3.backend.regions import RegionalService, endpoint_for
from genblaze_s3.backend.s3errors import http_status, response_headers

logger = logging.getLogger("genblaze_s3.preflight")

PROBE_TIMEOUT_SEC = 3.0


class Finding(Enum):
    """What a failed preflight found out about where the bucket is."""

    OTHER_REGION = "other_region"  # it answers in another region (301, or a B2 probe)
    NO_REGION = "no_region"  # no region of the service has it


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A preflight failure explained: what was found, and the hint that tells the user."""

    finding: Finding
    hint: str

    def error_code(self, err: StorageError) -> Any:
        """The code to raise: a bucket found elsewhere is a region redirect."""
        if self.finding is Finding.OTHER_REGION:
            return StorageErrorCode.REGION_REDIRECT
        return err.error_code


def is_permanent(err: StorageError) -> bool:
    """Whether re-issuing the same HeadBucket would fail the same way."""
    return err.error_code not in RETRYABLE_STORAGE_CODES


def probe_regions(
    bucket: str,
    settings: ClientSettings,
    service: RegionalService,
    regions: list[str],
    *,
    timeout: float = PROBE_TIMEOUT_SEC,
) -> dict[str, int | None]:
    """HeadBucket ``bucket`` in each region at once; ``{region: HTTP status | None}``.

    ``None`` means unreachable (timeout, DNS, refused). Each probe has its own
    client with a short timeout and a single attempt, closed afterwards, so this
    error path costs about one timeout in total and leaks no sockets.
    """

    def probe(region: str) -> int | None:
        target = settings.with_endpoint(endpoint_for(service.endpoint_template, region), region)
        client = build_client(target, connect_timeout=timeout, read_timeout=timeout, max_attempts=1)
        try:
            with closing(client):
                client.head_bucket(Bucket=bucket)
                return 200
        except ClientError as exc:
            return http_status(exc)
        except Exception:  # unreachable region: timeouts, DNS, refused
            return None

    if not regions:
        return {}
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        return dict(zip(regions, pool.map(probe, regions), strict=True))


class BucketPreflight:
    """Owns the verified / failed state of one backend's bucket.

    ``head_bucket`` performs the request on the connection's current client;
    ``relocate(region)`` rebuilds that client for another region. Keeping the
    state here keeps the connection free of it.
    """

    def __init__(
        self,
        bucket: str,
        *,
        head_bucket: Callable[[], object],
        settings: Callable[[], ClientSettings],
        relocate: Callable[[str], None],
        service: RegionalService | None,
    ) -> None:
        self._bucket = bucket
        self._head_bucket = head_bucket
        self._settings = settings
        self._relocate = relocate
        self._service = service
        self._lock = threading.Lock()
        self._verified = False
        self._error: StorageError | None = None

    @property
    def verified(self) -> bool:
        """True once a HeadBucket succeeded."""
        return self._verified and self._error is None

    def ensure(self) -> None:
        """Verify once; re-raise a remembered permanent failure; retry transient ones."""
        if self._verified:
            if self._error is not None:
                raise self._error
            return
        with self._lock:
            if self._verified:
                if self._error is not None:
                    raise self._error
                return
            self._run(redirects_left=2)

    def _run(self, redirects_left: int) -> None:
        try:
            self._head_bucket()
        except ClientError as exc:
            status = http_status(exc)
            actual = response_headers(exc).get("x-amz-bucket-region")
            settings = self._settings()
            # A regional service (B2) or AWS itself can be re-targeted; an arbitrary
            # custom endpoint cannot, so there the region only goes into the error.
            movable = self._service is not None or not settings.endpoint_url
            current = settings.region
            if status == 301 and actual and actual != current and redirects_left and movable:
                logger.info(
                    "bucket %s lives in %s, not %s: reconfiguring", self._bucket, actual, current
                )
                self._relocate(actual)
                self._run(redirects_left - 1)
                return
            self._fail(exc, self._explain(status, actual))
        except Exception as exc:
            self._fail(exc, None)
        else:
            self._verified = True

    def _explain(self, status: int | None, actual: str | None) -> Diagnosis | None:
        """What the failure means and how to fix it, probing other B2 regions on a 403."""
        settings = self._settings()
        if status == 301:
            region = actual or "another region"
            if self._service is None and settings.endpoint_url:
                hint = (
                    f"bucket {self._bucket!r} lives in {region}; this endpoint cannot be "
                    f"derived automatically - pass the endpoint_url and region={region!r}"
                )
            else:
                hint = f"bucket {self._bucket!r} lives in {region}; pass region={region!r}"
            return Diagnosis(Finding.OTHER_REGION, hint)
        if status == 403 and self._service is not None:
            others = [r for r in self._service.regions if r != settings.region]
            probes = probe_regions(self._bucket, settings, self._service, others)
            found = [r for r, s in probes.items() if s == 200]
            if len(found) == 1:
                return Diagnosis(
                    Finding.OTHER_REGION,
                    f"bucket {self._bucket!r} lives in {found[0]} (not {settings.region}) - "
                    f"pass region={found[0]!r} (or set B2_REGION={found[0]})",
                )
            if probes and all(s == 404 for s in probes.values()):
                return Diagnosis(
                    Finding.NO_REGION,
                    f"bucket {self._bucket!r} does not exist in any {self._service.name} "
                    "region - check the bucket name",
                )
        return None

    def _fail(self, exc: BaseException, diagnosis: Diagnosis | None) -> None:
        err = to_storage_error(exc, operation="preflight", key=None)
        settings = self._settings()
        where = settings.endpoint_url or f"AWS S3 ({settings.region or 'default region'})"
        message = f"bucket {self._bucket!r} preflight failed at {where}: {err}"
        if diagnosis is not None:
            message = f"{message}. {diagnosis.hint}"
        elif is_permanent(err):
            message = f"{message}. Check the bucket name, region and credentials."
        code = diagnosis.error_code(err) if diagnosis is not None else err.error_code
        typed = restated(err, message, error_code=code, operation="preflight")
        if is_permanent(err):
            self._error, self._verified = typed, True
        raise typed from exc


__all__ = [
    "BucketPreflight",
    "Diagnosis",
    "Finding",
    "PROBE_TIMEOUT_SEC",
    "probe_regions",
]
