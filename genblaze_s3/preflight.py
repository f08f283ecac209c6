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
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from genblaze_core.exceptions import StorageError
from genblaze_core.storage.errors import RETRYABLE_STORAGE_CODES, StorageErrorCode

from genblaze_s3._backend_client import ClientSettings, build_client
from genblaze_s3._backend_errors import client_error_status, to_storage_error

logger = logging.getLogger("genblaze_s3.preflight")

# Backblaze's published S3 regions. A new one appears every few years.
B2_REGIONS: tuple[str, ...] = (
    "us-west-001",
    "us-west-002",
    "us-west-004",
    "us-east-005",
    "eu-central-003",
    "ca-east-006",
)
B2_DEFAULT_REGION = "us-west-004"
B2_ENDPOINT_TEMPLATE = "https://s3.{region}.backblazeb2.com"
PROBE_TIMEOUT_SEC = 3.0

EndpointTemplate = str | Callable[[str], str]


def endpoint_for(template: EndpointTemplate, region: str) -> str:
    """Render a regional endpoint from a ``"...{region}..."`` template or a callable."""
    return template(region) if callable(template) else template.format(region=region)


def is_b2_host(host: str) -> bool:
    """True for ``backblazeb2.com`` and its subdomains."""
    host = host.lower()
    return host == "backblazeb2.com" or host.endswith(".backblazeb2.com")


def host_of(url: str | None) -> str:
    """Lower-case host name of ``url`` (``""`` when absent)."""
    if not url:
        return ""
    return (urlsplit(url if "://" in url else f"//{url}").hostname or "").lower()


@dataclass(frozen=True, slots=True)
class RegionalService:
    """A provider whose endpoint is a function of the region (Backblaze B2)."""

    name: str
    endpoint_template: EndpointTemplate
    regions: tuple[str, ...]


B2 = RegionalService("Backblaze B2", B2_ENDPOINT_TEMPLATE, B2_REGIONS)


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
            return client_error_status(exc)[1]
        except Exception:  # unreachable region: timeouts, DNS, refused
            return None

    if not regions:
        return {}
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        return dict(zip(regions, pool.map(probe, regions), strict=True))


class BucketPreflight:
    """Owns the verified / failed state of one backend's bucket.

    ``head_bucket`` performs the request on the backend's current client;
    ``relocate(region)`` rebuilds that client for another region and returns
    the new settings. Keeping the state here keeps the backend free of it.
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
        """True once a HeadBucket succeeded (or was declared unnecessary)."""
        return self._verified and self._error is None

    def mark_verified(self) -> None:
        """Skip preflight: used by ``from_sync`` for an already-verified region."""
        with self._lock:
            self._verified, self._error = True, None

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
            code, status, headers = client_error_status(exc)
            actual = headers.get("x-amz-bucket-region")
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
            self._fail(exc, self._explain(exc, status, actual))
        except Exception as exc:
            self._fail(exc, None)
        else:
            self._verified = True

    def _explain(self, exc: ClientError, status: int | None, actual: str | None) -> str | None:
        """A human hint for the failure, probing other B2 regions on a 403."""
        settings = self._settings()
        if status == 301:
            region = actual or "another region"
            if self._service is None and settings.endpoint_url:
                return (
                    f"bucket {self._bucket!r} lives in {region}; this endpoint cannot be "
                    f"derived automatically - pass the endpoint_url and region={region!r}"
                )
            return f"bucket {self._bucket!r} lives in {region}; pass region={region!r}"
        if status == 403 and self._service is not None:
            others = [r for r in self._service.regions if r != settings.region]
            probes = probe_regions(self._bucket, settings, self._service, others)
            found = [r for r, s in probes.items() if s == 200]
            if len(found) == 1:
                return (
                    f"bucket {self._bucket!r} lives in {found[0]} (not {settings.region}) - "
                    f"pass region={found[0]!r} (or set B2_REGION={found[0]})"
                )
            if probes and all(s == 404 for s in probes.values()):
                return (
                    f"bucket {self._bucket!r} does not exist in any {self._service.name} "
                    "region - check the bucket name"
                )
        return None

    def _fail(self, exc: BaseException, hint: str | None) -> None:
        err = to_storage_error(exc, operation="preflight", key=None)
        settings = self._settings()
        where = settings.endpoint_url or f"AWS S3 ({settings.region or 'default region'})"
        message = f"bucket {self._bucket!r} preflight failed at {where}: {err}"
        if hint:
            message = f"{message}. {hint}"
        elif is_permanent(err):
            message = f"{message}. Check the bucket name, region and credentials."
        code = err.error_code
        if hint and " lives in " in hint:
            code = StorageErrorCode.REGION_REDIRECT
        typed = StorageError(
            message,
            error_code=code,
            request_id=err.request_id,
            status_code=err.status_code,
            retry_after=err.retry_after,
            is_retriable=err.is_retriable,
            operation="preflight",
        )
        if is_permanent(err):
            self._error, self._verified = typed, True
        raise typed from exc


__all__ = [
    "B2",
    "B2_DEFAULT_REGION",
    "B2_ENDPOINT_TEMPLATE",
    "B2_REGIONS",
    "BucketPreflight",
    "PROBE_TIMEOUT_SEC",
    "RegionalService",
    "endpoint_for",
    "host_of",
    "is_b2_host",
    "probe_regions",
]
