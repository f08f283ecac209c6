"""Webhooks a receiver can trust: the Standard Webhooks scheme, one secret per tenant.

Each delivery carries three headers (https://www.standardwebhooks.com):

- `webhook-id`: stable per event (`<job_id>.<state>`): retries and redelivered
  finalizations repeat it, so a receiver drops duplicates by id;
- `webhook-timestamp`: Unix seconds of this attempt; `verify` refuses a
  message more than five minutes old or early, so a captured delivery cannot
  be replayed later;
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

Signing and verifying use the `standardwebhooks` package, so any Standard
Webhooks verifier (Python, TypeScript, Go, ...) accepts our deliveries. A secret
spelled `whsec_<base64>` (the standard form; `new_secret()` makes one) is used
as the standard says; any other string is used as its UTF-8 bytes.

Receiver example (any web framework; here the standard library)::

    from genblaze_s3.ingest.finalize.webhooks import WebhookVerificationError, verify

    def handle(body: bytes, headers: dict[str, str]) -> int:
        try:
            job = verify(body, headers, secret=MY_TENANT_WEBHOOK_SECRET)
        except WebhookVerificationError:
            return 400
        print(job["job_id"], job["state"])
        return 204

Delivery (workers): the submitter-chosen URL passes the copy engine's SSRF
guard, is resolved once and every attempt connects to that checked address
(DNS rebinding cannot move it to a private host); a dead receiver is retried
with backoff, then logged and dropped: a webhook never changes a job's outcome.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _UpstreamError

from genblaze_s3.backoff import WEBHOOK, backoff_delay
from genblaze_s3.ingest.redact import redact_url

logger = logging.getLogger("genblaze_s3.ingest.finalize.webhooks")

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class WebhookVerificationError(ValueError):
    """The delivery is not authentic: missing headers, bad signature, or too old / new."""


def new_secret() -> str:
    """A fresh secret in the standard `whsec_<base64 of 24 random bytes>` form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _webhook(secret: str | bytes) -> Webhook:
    if isinstance(secret, str) and not secret.startswith("whsec_"):
        secret = secret.encode()
    return Webhook(secret)


Secrets = str | bytes | Sequence[str | bytes]


def sign_headers(
    body: bytes, *, secret: Secrets, msg_id: str, now: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent now as message `msg_id`.

    Several secrets (a rotation: current first) give several space-separated
    signatures; a receiver holding any one of the secrets verifies the message.
    """
    ts = (now or datetime.now(UTC)).replace(microsecond=0)
    keys = [secret] if isinstance(secret, str | bytes) else list(secret)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(ts.timestamp())),
        SIGNATURE_HEADER: " ".join(_webhook(k).sign(msg_id, ts, body.decode()) for k in keys),
    }


def verify(body: bytes | str, headers: Mapping[str, str], *, secret: str | bytes) -> Any:
    """Check a delivery and return its JSON body (the job document).

    `headers` may use any case (a framework's request headers mapping works).
    Raises WebhookVerificationError for anything not signed by `secret` within the
    last (or next) five minutes.
    """
    try:
        return _webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    except (_UpstreamError, ValueError) as exc:  # ValueError: malformed signature header
        raise WebhookVerificationError(str(exc) or "invalid webhook") from exc


def message_id(body: bytes) -> str:
    """`<job_id>.<state>`: one id per job outcome, the same on every retry."""
    doc = json.loads(body)
    return f"{doc['job_id']}.{doc['state']}"


def pin(url: str, policy: Any) -> tuple[str, str]:
    """The copy engine's SSRF guard on a submitter-chosen URL: (URL naming the checked
    address, Host header). Raises genblaze_s3.transfer errors for a refused URL."""
    from genblaze_s3.transfer.fetch import pin_url

    return pin_url(url, policy)


def deliver(
    url: str,
    body: bytes,
    *,
    secret: Secrets | None,
    policy: Any,
    attempts: int = 4,
    backoff: float = WEBHOOK[0],
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    pin_url: Callable[[str], tuple[str, str]] | None = None,
) -> bool:
    """POST `body` to `url`; True on a 2xx. Never raises.

    `policy` is the worker's FetchPolicy (the SSRF guard); `pin_url` replaces the
    resolution in tests. Resolved once: every retry goes to the same checked
    address, with the same `webhook-id` and a fresh timestamp and signature.
    """
    import requests

    from genblaze_s3.transfer.fetch import pinned_session

    headers = {"Content-Type": "application/json", "User-Agent": "genblaze-s3-webhook"}
    try:
        target, headers["Host"] = (pin_url or (lambda u: pin(u, policy)))(url)
    except Exception as exc:
        logger.warning("webhook to %s refused: %s", redact_url(url), type(exc).__name__)
        return False
    msg_id = message_id(body)
    with pinned_session() as session:
        for attempt in range(attempts):
            if secret:
                headers.update(sign_headers(body, secret=secret, msg_id=msg_id))
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


__all__ = [
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookVerificationError",
    "deliver",
    "message_id",
    "new_secret",
    "sign_headers",
    "verify",
]
