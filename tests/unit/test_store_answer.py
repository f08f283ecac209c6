"""note_store_answer: which stores' answers switch small CAS writes to HEAD + PUT."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from genblaze_s3.transfer.upload import HEAD_BEFORE_CAS_PUT_ATTR, note_store_answer


def _answer(server: str | None, version: str | None) -> dict[str, Any]:
    headers = {} if server is None else {"server": server}
    answer: dict[str, Any] = {"ETag": '"x"', "ResponseMetadata": {"HTTPHeaders": headers}}
    if version is not None:
        answer["VersionId"] = version
    return answer


@pytest.mark.parametrize(
    ("server", "version", "learned"),
    [
        ("SeaweedFS 8000GB 4.48", "671123e0", True),  # versioned bucket: HEAD is cheaper
        ("SeaweedFS 8000GB 4.48", None, False),  # unversioned: the condition is a lookup
        ("AmazonS3", "3HL4kqtJlcpXroDTDmJ", False),  # conditional writes at their price
        ("nginx", "671123e0", False),  # behind a proxy that names itself: not known
        (None, "671123e0", False),
    ],
)
def test_learns_only_from_a_versioned_seaweedfs_bucket(
    server: str | None, version: str | None, learned: bool
) -> None:
    backend = SimpleNamespace()
    note_store_answer(backend, _answer(server, version))
    assert getattr(backend, HEAD_BEFORE_CAS_PUT_ATTR, False) is learned


def test_an_answer_without_metadata_teaches_nothing() -> None:
    backend = SimpleNamespace()
    note_store_answer(backend, {"ETag": '"x"', "VersionId": "v"})
    assert not hasattr(backend, HEAD_BEFORE_CAS_PUT_ATTR)
