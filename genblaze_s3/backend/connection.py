"""``BucketConnection``: one bucket on one S3 endpoint, shared by the sync and async backends.

Why an object of its own: ``S3StorageBackend`` and the ``AsyncS3StorageBackend``
built from it must agree on the region (the preflight may correct it), on
whether the bucket was verified, and on the upload defaults (SHA-256
checksums). Both hold this one object and read it through its public methods,
so neither reaches into the other's private state.
"""

from __future__ import annotations

from typing import Any, Unpack

from boto3.s3.transfer import TransferConfig
from genblaze_core.storage.config import StorageConfig

from genblaze_s3.backend import calls
from genblaze_s3.backend.client import (
    ClientSettings,
    build_client,
    shared_client,
    transfer_config,
)
from genblaze_s3.backend.preflight import BucketPreflight
from genblaze_s3.backend.regions import (
    DEFAULT_SIGNING_REGION,
    RegionalService,
    endpoint_for,
    host_of,
)

# Stores known to reject x-amz-checksum-sha256 (GCS's S3 interoperability API).
_NO_SHA256_HOSTS = ("storage.googleapis.com",)


class BucketConnection:
    """Client settings, the live (thread-safe) boto3 client and the preflight of one bucket.

    No network call is made on construction; :meth:`ready` runs the bucket
    preflight once (and re-targets the client if the bucket lives in another
    region of a regional service).
    """

    def __init__(
        self,
        bucket: str,
        settings: ClientSettings,
        *,
        service: RegionalService | None,
        sha256_checksums: bool | None,
        share_client: bool = False,
    ) -> None:
        self._bucket = bucket
        self._shared = share_client
        self._settings = settings
        self._service = service
        self._sha256 = sha256_checksums
        self._client = self._build(settings)
        self._transfer = transfer_config(settings.config)
        self._preflight = BucketPreflight(
            bucket,
            head_bucket=lambda: self._client.head_bucket(Bucket=bucket),
            settings=lambda: self._settings,
            relocate=self._relocate,
            service=service,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def settings(self) -> ClientSettings:
        """What it takes to build an equivalent client (after any region correction)."""
        return self._settings

    @property
    def client(self) -> Any:
        """The current boto3 client; replaced when the preflight corrects the region."""
        return self._client

    @property
    def config(self) -> StorageConfig:
        return self._settings.config

    @property
    def transfer(self) -> TransferConfig:
        """s3transfer settings for uploads (part size, parts in flight)."""
        return self._transfer

    @property
    def service(self) -> RegionalService | None:
        """The regional service (B2) whose endpoints derive from the region, if any."""
        return self._service

    @property
    def region(self) -> str:
        region = self._settings.region or self._client.meta.region_name
        return str(region or DEFAULT_SIGNING_REGION)

    @property
    def verified(self) -> bool:
        """True once the bucket preflight succeeded."""
        return self._preflight.verified

    @property
    def supports_sha256_checksums(self) -> bool:
        """Whether uploads send ``ChecksumAlgorithm=SHA256`` (integrity checked server-side)."""
        if self._sha256 is not None:
            return self._sha256
        host = host_of(self._settings.endpoint_url)
        return not any(host == h or host.endswith("." + h) for h in _NO_SHA256_HOSTS)

    def ready(self) -> None:
        """Run the bucket preflight once; re-raise a remembered permanent failure."""
        self._preflight.ensure()

    def put_request(
        self, key: str, data: calls.UploadData, **options: Unpack[calls.PutOptions]
    ) -> calls.PutRequest:
        """The upload of ``data`` to ``key`` for this store (SHA-256 checksums where supported)."""
        return calls.put_request(
            key, data, sha256_checksums=self.supports_sha256_checksums, **options
        )

    def _relocate(self, region: str) -> None:
        """Point the client at ``region`` (the preflight found the bucket there)."""
        endpoint = self._settings.endpoint_url
        if self._service is not None:
            endpoint = endpoint_for(self._service.endpoint_template, region)
        old = self._client
        self._settings = self._settings.with_endpoint(endpoint, region)
        self._client = self._build(self._settings)
        if not self._shared:
            old.close()

    def _build(self, settings: ClientSettings) -> Any:
        return shared_client(settings) if self._shared else build_client(settings)

    def close(self) -> None:
        """Release pooled connections. Idempotent; a later request simply reconnects
        (a shared client's other users too)."""
        self._client.close()


__all__ = ["BucketConnection"]
