"""Building boto3 clients and s3transfer settings.

Every client this package creates goes through :func:`build_client` so the
settings that matter for S3-compatible stores hold everywhere:

* SigV4 always. botocore still picks SigV2 for *presigned* URLs on some custom
  endpoints unless told otherwise, and B2 rejects SigV2 (a defect of the public
  package).
* Path-style addressing on custom endpoints: MinIO, SeaweedFS, Ceph and test
  servers have no wildcard DNS for ``bucket.host``.
* ``request_checksum_calculation="when_required"``: boto3 >= 1.36 otherwise
  adds CRC32 trailers that several S3-compatible stores reject. We ask for
  SHA-256 explicitly where the store supports it instead.
* ``standard`` retries: each request (so each multipart part) is retried on
  throttling, 5xx and connection errors with jittered backoff.
* No ``Expect: 100-continue`` on small bodies (:func:`_no_expect_for_small_bodies`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from genblaze_core.storage.config import StorageConfig

from genblaze_s3.backend.user_agent import build_user_agent

RetryMode = Literal["standard", "adaptive"]

# Parts in flight for one multipart upload. Four saturates a 1 Gbit link with
# 16 MiB parts while bounding memory to about (4 + 1) x part size.
MULTIPART_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything needed to (re)build an equivalent boto3 client."""

    endpoint_url: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None
    config: StorageConfig
    retry_mode: RetryMode = "standard"

    def with_endpoint(self, endpoint_url: str | None, region: str | None) -> ClientSettings:
        return ClientSettings(
            endpoint_url,
            region,
            self.access_key_id,
            self.secret_access_key,
            self.config,
            self.retry_mode,
        )


def botocore_config(
    settings: ClientSettings,
    *,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    max_attempts: int | None = None,
) -> Config:
    """The botocore ``Config`` for ``settings`` (overrides are for short-lived probes)."""
    cfg = settings.config
    addressing = "path" if settings.endpoint_url else cfg.signing_addressing_style
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": addressing},
        user_agent_extra=build_user_agent(cfg.user_agent_extra),
        retries={
            "mode": settings.retry_mode,
            # total_max_attempts counts the first try; botocore's "max_attempts" does not.
            "total_max_attempts": max_attempts if max_attempts is not None else cfg.retries + 1,
        },
        connect_timeout=connect_timeout or cfg.connect_timeout_sec,
        read_timeout=read_timeout or cfg.read_timeout_sec,
        max_pool_connections=cfg.max_pool_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def client_kwargs(settings: ClientSettings, config: Config) -> dict[str, Any]:
    """Keyword arguments for ``boto3.client("s3", ...)`` / aioboto3's ``session.client``."""
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.access_key_id:
        kwargs["aws_access_key_id"] = settings.access_key_id
    if settings.secret_access_key:
        kwargs["aws_secret_access_key"] = settings.secret_access_key
    return kwargs


# Below this, a PUT body is sent with its headers instead of after a 100 Continue.
EXPECT_MIN_BODY = 1024 * 1024


def _no_expect_for_small_bodies(request: Any, **_: Any) -> None:
    """botocore sends every PutObject / UploadPart with ``Expect: 100-continue``.

    Why drop it for small bodies: the client then waits for the interim response
    before sending, one more round trip and one more server write per object,
    to save sending a body that is smaller than the wait is worth. Measured on
    SeaweedFS with 64 KiB PUTs: server CPU 2.45 -> 2.30 ms, client CPU 1.16 ->
    1.06 ms, latency 3.17 -> 2.93 ms per PUT. Large bodies keep it, so a refused
    request (403, 503 SlowDown) does not send megabytes first.
    """
    if "Expect" not in request.headers:
        return
    length = request.headers.get("Content-Length")
    if length is not None and int(length) < EXPECT_MIN_BODY:
        del request.headers["Expect"]


def build_client(settings: ClientSettings, **overrides: Any) -> Any:
    """A boto3 S3 client (thread-safe) for ``settings``; no network call is made."""
    client = boto3.client("s3", **client_kwargs(settings, botocore_config(settings, **overrides)))
    for op in ("PutObject", "UploadPart"):
        client.meta.events.register(
            f"before-send.s3.{op}",
            _no_expect_for_small_bodies,
            unique_id=f"genblaze-s3-no-expect-{op}",
        )
    return client


# Clients shared by the backends of this process that asked for it (`shared_client`).
_SHARED: dict[ClientSettings, Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_client(settings: ClientSettings) -> Any:
    """This process's one client for ``settings``, built on first use.

    Why: a boto3 client does not depend on the bucket, and building one costs
    5-10 ms of CPU in a warm process (more in a freshly forked one: its first
    writes copy the shared pages), plus its own connection pool. A worker that
    writes to many buckets of one endpoint with one set of credentials would
    otherwise pay both per bucket and per pool child (bench/results/cost_cuts.md).
    Clients are thread-safe; they live as long as the process.
    """
    with _SHARED_LOCK:
        client = _SHARED.get(settings)
        if client is None:
            client = _SHARED[settings] = build_client(settings)
        return client


def transfer_config(config: StorageConfig) -> TransferConfig:
    """s3transfer settings: 16 MiB parts, 4 in flight, bounded in-memory parts.

    ``max_in_memory_upload_chunks`` defaults to 10 in s3transfer, i.e. 160 MiB of
    buffered parts for a file-like source; capping it at the concurrency keeps a
    1 GiB upload's resident memory near 5 parts.
    """
    cfg = TransferConfig(
        multipart_threshold=config.multipart_threshold,
        multipart_chunksize=config.multipart_chunk_size,
        max_concurrency=MULTIPART_CONCURRENCY,
        use_threads=True,
    )
    # boto3's constructor does not expose this s3transfer knob; the manager reads it.
    cfg.max_in_memory_upload_chunks = MULTIPART_CONCURRENCY
    return cfg


__all__ = [
    "MULTIPART_CONCURRENCY",
    "ClientSettings",
    "botocore_config",
    "build_client",
    "shared_client",
    "client_kwargs",
    "transfer_config",
]
