"""`genblaze-ingest keys` and `genblaze-ingest verify`: exit codes, the summary line, --json,
trusted keys given, from a keys file and configured (moto S3, the CLI run in-process)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from genblaze_s3 import S3StorageBackend
from genblaze_s3.cli import app as cli
from genblaze_s3.ingest.finalize.keyring import generate_key
from genblaze_s3.ingest.finalize.signing import key_id, load_private_key
from tests.unit.provenance_fixtures import BUCKET, SignedRun, finalize_signed_run, moto_bucket

__all__ = ["moto_bucket"]  # the fixture, imported for pytest


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENBLAZE_SIGNING_KEY", "GENBLAZE_TRUSTED_KEYS_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")


def _verify(run: SignedRun, *args: str) -> int:
    return cli.main(["verify", f"s3://{BUCKET}/{run.key}", "--no-progress", *args])


def test_keys_generate_writes_a_private_key_once_and_show_names_its_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "signing.pem"
    assert cli.main(["keys", "generate", str(out), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    kid = key_id(load_private_key(str(out)).public_key())
    assert made["key_id"] == kid and Path(made["public_key"]).read_text() == made["public_key_pem"]
    assert cli.main(["keys", "generate", str(out)]) == 2  # never overwritten
    assert "not overwritten" in capsys.readouterr().err
    assert cli.main(["keys", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"key id: {kid}" in shown and "BEGIN PUBLIC KEY" in shown and "PRIVATE" not in shown
    other = Ed25519PrivateKey.generate()
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(Path(made["public_key"]).read_bytes() + b"# retired\n" + _pem(other))
    assert cli.main(["keys", "show", str(bundle), "--json"]) == 0
    ids = [json.loads(line)["key_id"] for line in capsys.readouterr().out.splitlines()]
    assert ids == [kid, key_id(other.public_key())]


def test_keys_show_defaults_to_the_configured_signing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "k.pem"
    cli.main(["keys", "generate", str(out)])
    capsys.readouterr()
    monkeypatch.setenv("GENBLAZE_SIGNING_KEY", str(out))
    assert cli.main(["keys", "show"]) == 0
    assert key_id(load_private_key(str(out)).public_key()) in capsys.readouterr().out


def test_verify_exit_codes_and_summary_say_what_was_proved(
    moto_bucket: S3StorageBackend,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    private, retired = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private)
    kid = key_id(private.public_key())
    pub, old = tmp_path / "current.pub.pem", tmp_path / "retired.pub.pem"
    pub.write_bytes(_pem(private))
    old.write_bytes(_pem(retired))

    assert _verify(run, "--public-key", str(old), "--public-key", str(pub)) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"VERIFIED s3://{BUCKET}/")

    assert _verify(run, "--public-key", str(old)) == 1  # signed by a key not trusted here
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("FAILED") and kid in last

    assert _verify(run) == 3  # no key at all: content intact, origin not proven
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("UNPROVEN") and kid in last and "--content-only" in last

    assert _verify(run, "--content-only") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("CONTENT INTACT")
    assert _verify(run, "--content-only", "--public-key", str(pub)) == 2

    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(old.read_bytes() + pub.read_bytes())
    assert _verify(run, "--keys-file", str(bundle), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "verified" and report["key_id"] == kid
    assert sorted(report["trusted_keys"]) == sorted([kid, key_id(retired.public_key())])
    assert report["envelope"] == f"s3://{BUCKET}/{run.envelope_key}"
    assert {f["check"] for f in report["findings"]} >= {"signature", "envelope", "asset"}

    monkeypatch.setenv("GENBLAZE_TRUSTED_KEYS_FILE", str(bundle))  # configured, not given
    assert _verify(run) == 0
    capsys.readouterr()
    monkeypatch.delenv("GENBLAZE_TRUSTED_KEYS_FILE")
    signing = tmp_path / "signing.pem"
    signing.write_bytes(generate_key().private_pem)
    monkeypatch.setenv("GENBLAZE_SIGNING_KEY", str(signing))  # a worker host of another key
    assert _verify(run) == 1
    assert "not a trusted key" in capsys.readouterr().out


def test_verify_json_carries_every_finding_of_a_failure(
    moto_bucket: S3StorageBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = Ed25519PrivateKey.generate()
    run = finalize_signed_run(moto_bucket, private)
    run.put_raw(run.asset_keys[0], b"other", "image/png")
    pub = tmp_path / "p.pem"
    pub.write_bytes(_pem(private))
    assert _verify(run, "--public-key", str(pub), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "failed" and report["exit_code"] == 1
    assert not report["content_intact"] and report["origin_proven"]
    failed = [f for f in report["findings"] if f["level"] == "fail"]
    assert [f["check"] for f in failed] == ["asset"] and run.asset_keys[0] in failed[0]["subject"]
    assert report["summary"].startswith("FAILED")


def test_the_signing_key_never_shows_in_the_settings_repr(tmp_path: Path) -> None:
    from genblaze_s3.settings import load_settings

    pem = generate_key().private_pem.decode()
    settings = load_settings({"GENBLAZE_SIGNING_KEY": pem})
    body = pem.splitlines()[1]
    assert body not in repr(settings) and body not in str(settings.model_dump())
