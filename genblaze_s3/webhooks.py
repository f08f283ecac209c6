"""Public import path for webhook receivers: ``from genblaze_s3.webhooks import verify``.

The implementation lives with the rest of finalize in
:mod:`genblaze_s3.ingest.finalize.webhooks`; this module only keeps the documented path.
"""

from genblaze_s3.ingest.finalize.webhooks import (
    WebhookVerificationError,
    new_secret,
    sign_headers,
    verify,
)

__all__ = ["WebhookVerificationError", "new_secret", "sign_headers", "verify"]
