"""URL operations of S3StorageBackend: get_url, presigned URLs, durable URLs.

Presigned URLs are always SigV4 (the client is built with ``signature_version=
"s3v4"``); durable URLs are pure string work and never touch the network.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from genblaze_s3._backend_errors import to_storage_error
from genblaze_s3.preflight import RegionalService, is_b2_host
from genblaze_s3.presigned import PresignedURL
from genblaze_s3.url_policy import URLPolicy, URLPolicyError

DEFAULT_EXPIRES_IN = 3600
_UNSET: Any = object()  # "expires_in not passed", distinct from an explicit 3600


class URLOps:
    """Public, presigned and durable URLs for one bucket."""

    _bucket: str
    _client: Any
    _service: RegionalService | None
    public_url_base: str | None

    def _ready(self) -> None:  # provided by the backend
        raise NotImplementedError

    def get_url(
        self, key: str, *, expires_in: int = _UNSET, policy: URLPolicy = URLPolicy.AUTO
    ) -> str:
        """A URL to hand to a client right now; never persist it (see :meth:`get_durable_url`).

        ``AUTO``: public URL when ``public_url_base`` is set, else presigned.
        ``PUBLIC``: public URL; ``URLPolicyError`` without ``public_url_base`` or
        with an explicit ``expires_in`` (public URLs do not expire).
        ``PRESIGNED``: always a SigV4 URL honouring ``expires_in`` (default 3600 s).
        """
        explicit = expires_in is not _UNSET
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
        self._ready()  # sign for the bucket's real region
        try:
            return str(
                self._client.generate_presigned_url(method, Params=params, ExpiresIn=expires_in)
            )
        except Exception as exc:
            raise to_storage_error(exc, operation=method, key=params.get("Key")) from exc

    def presigned_get(self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN) -> PresignedURL:
        """A SigV4 GET URL for ``key``; its repr/str redact signature and credential."""
        url = self._presign("get_object", {"Bucket": self._bucket, "Key": key}, expires_in)
        return PresignedURL(
            url=url, method="GET", key=key, bucket=self._bucket, expires_in=expires_in
        )

    def presigned_put(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> PresignedURL:
        """A SigV4 PUT URL; with ``content_type`` the upload must send that exact header."""
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        url = self._presign("put_object", params, expires_in)
        return PresignedURL(
            url=url, method="PUT", key=key, bucket=self._bucket, expires_in=expires_in
        )

    def presigned_get_url(self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN) -> str:
        """The live presigned GET URL as ``str`` (for the point where it leaves the process)."""
        return self.presigned_get(key, expires_in=expires_in).url

    def presigned_put_url(
        self, key: str, *, expires_in: int = DEFAULT_EXPIRES_IN, content_type: str | None = None
    ) -> str:
        """The live presigned PUT URL as ``str``."""
        return self.presigned_put(key, expires_in=expires_in, content_type=content_type).url

    def _endpoint_base(self) -> str:
        return str(self._client.meta.endpoint_url or "").rstrip("/")

    def get_durable_url(self, key: str) -> str:
        """A credential-free URL safe to persist: public base, else path-style endpoint URL.

        Pure string work: no request is made.
        """
        if self.public_url_base:
            return self._public_url(key)
        return f"{self._endpoint_base()}/{self._bucket}/{quote(key, safe='/')}"

    def key_from_url(self, url: str) -> str | None:
        """Inverse of :meth:`get_durable_url`; ``None`` for a URL of another bucket/host.

        Also recognises a B2 URL of this bucket minted for another B2 region
        (B2 bucket names are global). No network.
        """
        if self.public_url_base and url.startswith(self.public_url_base + "/"):
            return unquote(url[len(self.public_url_base) + 1 :]) or None
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc or parts.query:
            return None
        ours = urlsplit(self._endpoint_base())
        same_host = (parts.scheme, parts.netloc) == (ours.scheme, ours.netloc)
        b2_sibling = self._service is not None and is_b2_host(parts.hostname or "")
        if not (same_host or b2_sibling):
            return None
        prefix = f"/{self._bucket}/"
        if not parts.path.startswith(prefix):
            return None
        return unquote(parts.path[len(prefix) :]) or None
