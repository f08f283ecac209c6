"""genblaze-core's canonical normalization, at about half its cost on manifests.

Why our own: ``genblaze_core.canonical._normalize.normalize`` walks every value
through a chain of up to ten ``isinstance`` checks; on a 1,000-asset manifest that
walk is the largest single cost of finalize (about 30 ms of ~100 ms of CPU,
bench/results/finalize.md). This one dispatches on the exact type of the values
manifests are made of (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``,
``None``) and hands every other value (enums, datetimes, UUIDs, models, subclasses
of the builtins, anything unsupported) to genblaze-core's ``normalize`` itself, so
its rules stay the only rules. ASCII strings are returned as they are: NFC leaves
ASCII unchanged. tests/unit/test_finalize_hash.py holds the two equal.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from genblaze_core.canonical._normalize import _MAX_NORMALIZE_DEPTH
from genblaze_core.canonical._normalize import normalize as core_normalize
from genblaze_core.exceptions import ManifestError


def normalize(value: Any, _depth: int = 0) -> Any:
    """The same value genblaze-core's ``normalize(value)`` returns (see the module doc)."""
    if _depth > _MAX_NORMALIZE_DEPTH:
        raise ManifestError(
            f"canonical normalization exceeded max depth ({_MAX_NORMALIZE_DEPTH}); "
            "value is nested too deeply to hash safely"
        )
    kind = type(value)
    if kind is str:
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if kind is dict:
        deeper = _depth + 1
        return {k: normalize(v, deeper) for k, v in sorted(value.items())}
    if value is None or kind is int or kind is bool:
        return value
    if kind is float:
        return None if math.isnan(value) or math.isinf(value) else round(value, 10)
    if kind is list or kind is tuple:
        deeper = _depth + 1
        return [normalize(v, deeper) for v in value]
    # Everything else, with genblaze-core's own rules (and its depth count).
    return core_normalize(value, _depth=_depth)
