"""finalize's canonical hash (taken from the document it normalizes once) is genblaze-core's.

`document._canonical_hash` reuses genblaze-core's ``_hash_payload`` on the normalized
run instead of dumping and normalizing it again (bench/results/finalize.md). These
rows build manifests that differ in every way the shortcut could get wrong and hold
its bytes to ``Manifest.compute_hash()`` + ``to_canonical_json()``.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from genblaze_core.models.asset import Asset
from genblaze_core.models.enums import StepType
from genblaze_core.models.manifest import SUPPORTED_SCHEMA_VERSIONS, Manifest
from genblaze_core.models.run import Run
from genblaze_core.models.step import Step

from genblaze_s3.ingest.finalize.document import _canonical_hash, manifest_document
from genblaze_s3.ingest.finalize.signing import ManifestSigner

DIGEST = hashlib.sha256(b"x").hexdigest()
DECOMPOSED = unicodedata.normalize("NFD", "café-é")  # not NFC: normalize changes it


def _manifest(*, schema: str = "1.5", inputs: bool = True, odd: bool = True) -> Manifest:
    outputs = [
        Asset(url="https://b.example/k/a.png", media_type="image/png", sha256=DIGEST, size_bytes=1),
        # no sha256: genblaze-core marks it and hashes its credential-free URL
        Asset(url="https://u:p@cdn.example/x.png?X-Amz-Signature=s&a=1", media_type="image/png"),
        Asset(
            url="https://b.example/k/c.wav",
            media_type="audio/wav",
            sha256=DIGEST,
            duration=1.23456789012345,  # rounded to 10 places by normalize
            metadata={
                "z": [1, 2.5, float("nan"), {"b": DECOMPOSED, "a": None}],
                "when": datetime(2026, 12, 6, 10, 0, tzinfo=UTC),
                "tuple": (1, "two"),
            }
            if odd
            else {},
        ),
    ]
    step = Step(
        provider="p",
        model="m",
        prompt=DECOMPOSED if odd else "prompt",
        params={"guidance": 7.000000000049, "nested": {"y": 1, "x": [DECOMPOSED]}} if odd else {},
        assets=outputs,
        inputs=[Asset(url="https://in.example/ref.png?token=t", media_type="image/png")]
        if inputs
        else [],
    )
    run = Run(name="hash-row", steps=[step], metadata={"genblaze_s3": {"k": DECOMPOSED}})
    return Manifest(schema_version=schema, run=run)


def _expected(manifest: Manifest) -> tuple[str, bytes]:
    twin = manifest.model_copy(deep=True)
    twin.compute_hash()
    return twin.canonical_hash, twin.to_canonical_json().encode()


@pytest.mark.parametrize("schema", SUPPORTED_SCHEMA_VERSIONS)
@pytest.mark.parametrize("odd", [False, True], ids=["plain", "unicode-floats-dates"])
@pytest.mark.parametrize("inputs", [False, True], ids=["no-inputs", "inputs"])
def test_the_shortcut_hash_is_genblaze_cores(schema: str, odd: bool, inputs: bool) -> None:
    from genblaze_core.models.manifest import _is_write_schema_version

    manifest = _manifest(schema=schema, inputs=inputs, odd=odd)
    if not _is_write_schema_version(schema):  # read-only schemas are refused, as before
        with pytest.raises(Exception, match="read-supported"):
            manifest_document(manifest, None)
        return
    digest, body = _expected(manifest)
    _, ours = manifest_document(manifest, None)
    assert manifest.canonical_hash == digest
    assert ours == body


def test_signed_documents_match_too() -> None:
    manifest = _manifest()
    _, body = manifest_document(manifest, ManifestSigner(Ed25519PrivateKey.generate()))
    assert body == manifest.to_canonical_json().encode()
    twin = manifest.model_copy(deep=True)
    assert twin.compute_hash() == manifest.canonical_hash


def test_a_non_ascii_url_without_sha256_takes_genblaze_cores_path() -> None:
    from genblaze_core.canonical._normalize import normalize

    manifest = _manifest()
    manifest.run.steps[0].assets[1].url = f"https://cdn.example/{DECOMPOSED}.png?sig=1"
    document = normalize(manifest.model_dump(mode="python"))
    assert _canonical_hash(document) is None  # the exact, slower path
    digest, body = _expected(manifest)
    _, ours = manifest_document(manifest, None)
    assert (manifest.canonical_hash, ours) == (digest, body)


def test_the_document_is_left_whole() -> None:
    from genblaze_core.canonical._normalize import normalize

    manifest = _manifest()
    document = normalize(manifest.model_dump(mode="python"))
    before = repr(document)
    _canonical_hash(document)
    assert repr(document) == before  # _hash_payload popped keys from copies only


def _core(value: object) -> object:
    from genblaze_core.canonical._normalize import normalize

    return normalize(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -7,
        1.0,
        1.23456789012345,
        float("nan"),
        float("-inf"),
        "ascii",
        DECOMPOSED,
        ("tuple", DECOMPOSED, 2.5),
        {"b": {"d": [1, {"z": DECOMPOSED, "a": 0.1 + 0.2}], "c": None}, "a": [True, False]},
        {3: "int key", 1: "sorted like core"},
        datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC),
        {"enum": StepType.GENERATE},  # a StrEnum: core's rules, by delegation
    ],
    ids=repr,
)
def test_our_normalize_is_genblaze_cores(value: object) -> None:
    from genblaze_s3.ingest.finalize.canonical import normalize

    ours, theirs = normalize(value), _core(value)
    assert repr(ours) == repr(theirs)  # repr: NaN -> None both, and types must match too


def test_our_normalize_refuses_what_core_refuses() -> None:
    from genblaze_core.exceptions import ManifestError

    from genblaze_s3.ingest.finalize.canonical import normalize

    deep: dict[str, object] = {}
    node = deep
    for _ in range(150):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with pytest.raises(ManifestError, match="max depth"):
        normalize(deep)
    with pytest.raises(TypeError, match="unsupported type"):
        normalize({"a": {1, 2}})  # a set: not deterministic, refused by genblaze-core
    with pytest.raises(TypeError, match="naive datetime"):
        normalize([datetime(2026, 1, 1)])  # noqa: DTZ001
