"""URLs of one bucket's objects: ``get_url``, presigned URLs, durable URLs.

Presigned URLs are always SigV4 (the client is built with ``signature_version=
"s3v4"``); durable URLs are pure string work and never touch the network.
``S3StorageBackend`` hands its URL methods to a :class:`BucketURLs`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from genblaze_core.storage.url_policy import URLPolicy, URLPolicyError

from genblaze_s3.backend.connection import BucketConnection
from genblaze_s3.backend.errors import to_storage_error
from genblaze_s3.backend.presigned import PresignedURL
from genblaze_s3.backend.regions import is_b2_host

DEFAULT_EXPIRES_IN = 3600
UNSET: Any = object()  # "expires_in not passed", distinct from an explicit 3600


class BucketURLs:
    """Public, presigned and durable URLs for the bucket of ``connection``.

    ``public_url_base`` is the base of public, never-expiring URLs (a CDN or a
    B2 friendly URL), without a trailing slash; ``None`` when there is none.
    """

    def __init__(self, connection: BucketConnection, public_url_base: str | None) -> None:
        self._connection = connection
        self.public_url_base = public_url_base.rstrip("/") if public_url_base else None

    def get_url(
        self, key: str, *, expires_in: int = UNSET, policy: URLPolicy = URLPolicy.AUTO
    ) -> str:
        """Public or presigned, as ``policy`` says (rules: ``S3StorageBackend.get_url``)."""
        explicit = expires_in is not UNSET
        seconds = expires_in if explicit else DEFAULT_EXPIRES_IN
        policy = URLPolicy(policy)
        if policy is URLPolicy.PUBLIC:
            if not self.public_url_base:
                raise URLPolicyError(
                    "URLPolicy.PUBLIC needs public_url_base on the backend; none is configured"
                )
            if explicit:
                raise URLPolicyError(
                    "URLPolicy.PUBLIC cannot honour expires_in: public URLs do not expire; "
                    "use URLPolicy.PRESIGNED for a time-limited URL"
                )
            return self._public_url(key)
        if policy is URLPolicy.AUTO and self.public_url_base:
            return self._public_url(key)
        return self.presigned_get(key, expires_in=seconds).url

    def _public_url(self, key: str) -> str:
        return f"{self.public_url_base}/{quote(key, safe='/')}"

    def _presign(self, method: str, params: dict[str, Any], expires_in: int) -> str:
        if expires_in < 1:
            raise ValueError(f"expires_in must be >= 1 second, got {expires_in}")
        self._connection.ready()  # sign for the bucket's real region
        client = self._connection.client
        try:
            return str(client.generate_presigned_url(method, Params=params, ExpiresIn=expires_in))
        except Exception as exc:
            raise to_storage_error(exc, operation=method, key=params.get("Key")) from exc

    def presigned_get(self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN) -> PresignedURL:
        """A SigV4 GET URL, wrapped so that formatting it never shows the signature."""
        url = self._presign(
            "get_object", {"Bucket": self._connection.bucket, "Key": key}, expires_in
        )
        return PresignedURL(
            url=url, method="GET", key=key, bucket=self._connection.bucket, expires_in=expires_in
        )

    def presigned_put(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> PresignedURL:
        """A SigV4 PUT URL; ``content_type`` is signed, so the upload must send it."""
        params: dict[str, Any] = {"Bucket": self._connection.bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        url = self._presign("put_object", params, expires_in)
        return PresignedURL(
            url=url, method="PUT", key=key, bucket=self._connection.bucket, expires_in=expires_in
        )

    def _endpoint_base(self) -> str:
        return str(self._connection.client.meta.endpoint_url or "").rstrip("/")

    def get_durable_url(self, key: str) -> str:
        """Public base, else the path-style endpoint URL; string work, no request."""
        if self.public_url_base:
            return self._public_url(key)
        return f"{self._endpoint_base()}/{self._connection.bucket}/{quote(key, safe='/')}"

    def key_from_url(self, url: str) -> str | None:
        """The key a durable URL names (a B2 URL of any B2 region counts: names are global)."""
        if self.public_url_base and url.startswith(self.public_url_base + "/"):
            return unquote(url[len(self.public_url_base) + 1 :]) or None
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc or parts.query:
            return None
        ours = urlsplit(self._endpoint_base())
        same_host = (parts.scheme, parts.netloc) == (ours.scheme, ours.netloc)
        b2_sibling = self._connection.service is not None and is_b2_host(parts.hostname or "")
        if not (same_host or b2_sibling):
            return None
        prefix = f"/{self._connection.bucket}/"
        if not parts.path.startswith(prefix):
            return None
        return unquote(parts.path[len(prefix) :]) or None


__all__ = ["DEFAULT_EXPIRES_IN", "UNSET", "BucketURLs"]
