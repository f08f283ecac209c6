"""Signed webhooks: tell the submitter the job is over, never change the outcome.

The body is the final job document; `X-Genblaze-Signature: sha256=<hex>` is an
HMAC-SHA256 of the exact body bytes with a shared secret, so the receiver can
verify it came from us. Failures are retried with backoff, then logged and
dropped: a dead webhook receiver must not fail a job whose bytes are safe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from genblaze_s3.backoff import WEBHOOK, backoff_delay
from genblaze_s3.ingest.redact import redact_url

logger = logging.getLogger("genblaze_s3.ingest.notify")
SIGNATURE_HEADER = "X-Genblaze-Signature"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """Receiver-side check, constant time."""
    return hmac.compare_digest(sign(body, secret), header)


def send_webhook(
    url: str,
    body: bytes,
    *,
    secret: str | None,
    attempts: int = 4,
    backoff: float = WEBHOOK[0],
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    pin: Callable[[str], tuple[str, str]] | None = None,
) -> bool:
    """POST `body` to `url`; True on a 2xx. Never raises.

    `pin` (the worker passes the copy engine's SSRF guard, `transfer.fetch.pin_url`)
    raises for a URL we must not connect to, else returns the URL naming the checked
    address and the Host header: a submitter-chosen notify_url must not become a way
    to reach the metadata service or private hosts from the worker, not even by
    answering DNS differently between the check and the connect. Resolved once;
    every retry goes to the same checked address.
    """
    import requests

    from genblaze_s3.transfer.fetch import pinned_session

    headers = {"Content-Type": "application/json", "User-Agent": "genblaze-s3-webhook"}
    target = url
    if pin is not None:
        try:
            target, headers["Host"] = pin(url)
        except Exception as exc:
            logger.warning("webhook to %s refused: %s", redact_url(url), type(exc).__name__)
            return False
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    with pinned_session() as session:
        for attempt in range(attempts):
            try:
                r = session.post(
                    target, data=body, headers=headers, timeout=timeout, allow_redirects=False
                )
                if 200 <= r.status_code < 300:
                    return True
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    break  # the receiver rejected it; repeating will not help
            except requests.RequestException as exc:
                logger.info("webhook to %s failed: %s", redact_url(url), type(exc).__name__)
            if attempt + 1 < attempts:
                sleep(backoff_delay(attempt + 1, base=backoff, cap=WEBHOOK[1]))
        logger.warning("webhook to %s gave up after %d attempts", redact_url(url), attempts)
        return False
