"""Ask the submitter for a fresh source URL when the one we hold expired or was revoked.

Two ways a job can say who to ask (both optional, set at submit time):

- ``refresh_url`` (HTTP submissions): we POST a JSON body signed like our webhooks
  (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
  with the tenant's webhook secret). The body names the job, the asset and the
  expired URL's scheme, host and path, never its query (the old signature) or
  userinfo. The answer is ``{"url": "https://..."}``; 404/410 or ``{"url": null}``
  mean "no fresh URL, give up". The POST goes through the SSRF guard, pinned to
  the checked address, without following redirects.
- ``source_refresher="package.module:function"`` (Python sink): the worker imports
  that function and calls it with a :class:`RefreshRequest`; it returns the new URL
  or None. Only a name crosses the broker and the store, never pickled code.

A refreshed URL is a new, untrusted source: the caller passes it through the SSRF
guard and seals it at rest exactly like a submitted one (:mod:`.sources`).
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genblaze_s3.ingest.provenance import source_location
from genblaze_s3.ingest.redact import redact_url
from genblaze_s3.ingest.validation import check_import_path
from genblaze_s3.transfer.errors import SourceExpired, SourceUnavailable

logger = logging.getLogger("genblaze_s3.ingest.worker.refresh")

MAX_ANSWER_BYTES = 64 * 1024  # a refresh answer is one URL; anything bigger is refused


@dataclass(frozen=True)
class RefreshRequest:
    """What a refresher is told: which asset, and where its dead URL pointed (no secrets)."""

    job_id: str
    asset_id: str
    run_id: str
    scheme: str
    host: str
    path: str
    reason: str  # "expired" (stated expiry passed) or the status: "401", "403", "410"

    def to_json(self) -> bytes:
        body = {
            "type": "source.refresh",
            "job_id": self.job_id,
            "asset_id": self.asset_id,
            "run_id": self.run_id,
            "source": {"scheme": self.scheme, "host": self.host, "path": self.path},
            "reason": self.reason,
        }
        return json.dumps(body, separators=(",", ":")).encode()


def refresh_request(
    job_id: str, asset_id: str, run_id: str, url: str, reason: str
) -> RefreshRequest:
    """The request for one asset; only the URL's scheme, host and path go in it."""
    scheme, host, path = source_location(url)
    return RefreshRequest(job_id, asset_id, run_id, scheme, host, path, reason)


def signed_headers(body: bytes, secret: str | None, *, msg_id: str | None = None) -> dict[str, str]:
    """Headers for a refresh POST: signed exactly like our webhooks (none without a secret).

    ``genblaze_s3.ingest.finalize.webhooks.sign_headers``: Standard Webhooks, the tenant's secret
    (``whsec_<base64>`` as the spec writes it, any other string as its UTF-8 bytes).
    """
    headers = {"Content-Type": "application/json", "User-Agent": "genblaze-s3-refresh"}
    if not secret:
        return headers
    from genblaze_s3.ingest.finalize.webhooks import sign_headers

    msg_id = msg_id or f"refresh_{secrets.token_hex(12)}"
    headers.update(sign_headers(body, secret=secret, msg_id=msg_id))
    return headers


class SourceRefresher:
    """Gets fresh URLs for a job's assets over HTTP or through an imported function.

    ``pin`` is the SSRF guard for the refresh endpoint (``transfer.fetch.pin_url``
    bound to the worker's FetchPolicy): it raises for a URL we must not reach and
    returns (URL naming the checked address, Host header). ``secret_for(tenant)``
    gives the signing secret; ``unseal`` opens the job's ``refresh_url``, which is
    sealed at rest like source URLs (it may carry the submitter's own token).
    """

    def __init__(
        self,
        *,
        pin: Callable[[str], tuple[str, str]] | None,
        secret_for: Callable[[str], str | None] = lambda tenant: None,
        timeout: float = 10.0,
        ca_bundle: str | None = None,
        unseal: Callable[[str], str] = lambda text: text,
    ) -> None:
        self._pin = pin
        self._unseal = unseal
        self._secret_for = secret_for
        self._timeout = timeout
        self._verify: bool | str = ca_bundle or True
        self._functions: dict[str, Callable[[RefreshRequest], Any]] = {}

    def available(self, meta: Any) -> bool:
        return bool(meta.refresh_url or meta.source_refresher)

    def refresh(self, meta: Any, request: RefreshRequest) -> str | None:
        """The fresh URL, or None when the submitter has none (a permanent answer).

        Raises SourceUnavailable when the refresh endpoint is down (worth a retry).
        """
        if meta.refresh_url:
            url = self._unseal(meta.refresh_url)
            return self._post(url, request, self._secret_for(meta.tenant))
        if meta.source_refresher:
            return self._call(meta.source_refresher, request)
        return None

    # -- HTTP -----------------------------------------------------------------
    def _post(self, url: str, request: RefreshRequest, secret: str | None) -> str | None:
        import requests

        from genblaze_s3.transfer.fetch import pinned_session

        body = request.to_json()
        headers = signed_headers(body, secret)
        target = url
        if self._pin is not None:
            target, headers["Host"] = self._pin(url)  # URLBlocked / InvalidURL propagate
        where = redact_url(url)
        try:
            with (
                pinned_session(pool_connections=1, pool_maxsize=1) as session,
                session.post(
                    target,
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    stream=True,
                    verify=self._verify,
                ) as resp,
            ):
                status = resp.status_code
                raw = resp.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"refresh endpoint {where} unreachable ({type(exc).__name__})"
            ) from exc
        if status in (404, 410):
            return None
        if status == 429 or status >= 500:
            raise SourceUnavailable(f"refresh endpoint {where} answered {status}")
        if not 200 <= status < 300:
            raise SourceExpired(f"refresh endpoint {where} refused the request ({status})")
        if len(raw) > MAX_ANSWER_BYTES:
            raise SourceExpired(f"refresh endpoint {where} answered more than one URL's worth")
        return _url_from_answer(raw, where)

    # -- Python ---------------------------------------------------------------
    def _call(self, path: str, request: RefreshRequest) -> str | None:
        fn = self._functions.get(path)
        if fn is None:
            module_name, _, attr = check_import_path(path).partition(":")
            try:
                fn = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise SourceExpired(
                    f"source_refresher {path!r} cannot be imported on this worker"
                ) from exc
            self._functions[path] = fn
        try:
            answer = fn(request)
        except Exception as exc:  # the submitter's code: its failure ends the refresh
            logger.warning("source_refresher %s raised %s", path, type(exc).__name__)
            raise SourceExpired(f"source_refresher raised {type(exc).__name__}") from exc
        if answer is None:
            return None
        if not isinstance(answer, str):
            raise SourceExpired("source_refresher must return a URL string or None")
        return answer


def _url_from_answer(raw: bytes, where: str) -> str | None:
    try:
        doc = json.loads(raw or b"null")
    except ValueError as exc:
        raise SourceExpired(f"refresh endpoint {where} did not answer JSON") from exc
    if doc is None:
        return None
    url = doc.get("url") if isinstance(doc, dict) else None
    if url is None:
        return None
    if not isinstance(url, str):
        raise SourceExpired(f"refresh endpoint {where}: 'url' is not a string")
    return url
