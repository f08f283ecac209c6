"""``URLPolicy`` / ``URLPolicyError``, re-exported from genblaze-core.

The enum lives in core because ``ObjectStorageSink`` reads it too; this module
only keeps ``from genblaze_s3.url_policy import URLPolicy`` working.
"""

from __future__ import annotations

from genblaze_core.storage.url_policy import URLPolicy, URLPolicyError

__all__ = ["URLPolicy", "URLPolicyError"]
