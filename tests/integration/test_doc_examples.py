"""Every code block of README.md and docs/*.md runs here (tests/support/docblocks.py).

Each block is taken from the document itself, not copied into the test: a sample
that names a renamed function, option, setting or file fails its test. Python runs
(exec, tracebacks point into the document) against the real services where it needs
them; `genblaze-ingest` lines are parsed by the real CLI parser; `./dev` lines must
name a command of ./dev; `openssl` lines run; the tenants TOML loads through the real
tenants loader; a layout tree names only paths that exist.

`test_every_block_has_a_runner` fails when a document gains a block no runner covers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.docblocks import ROOT, Block, blocks
from tests.support.workers import QueueStack, StartStack

BLOCKS = {b.key: b for b in blocks()}


def _block(prefix: str) -> Block:
    found = [b for k, b in BLOCKS.items() if k.startswith(prefix)]
    assert len(found) == 1, f"no single block starts with {prefix!r}: {sorted(BLOCKS)}"
    return found[0]


def _commands(block: Block) -> list[list[str]]:
    """Each command line of a shell block as argv (comments and `export` lines dropped)."""
    out = []
    for line in block.text.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] != "export":
            out.append(words)
    return out


def _parse_cli(argv: list[str], placeholders: dict[str, str]) -> Any:
    from genblaze_s3.cli.app import build_parser

    assert argv[0] == "genblaze-ingest"
    args = [placeholders.get(a, a) for a in argv[1:]]
    return build_parser().parse_args(args)  # SystemExit(2) on a renamed option


# -- shell blocks ------------------------------------------------------------------


DEV_COMMANDS = set(re.findall(r"^\s+([a-z|]+)\)", (ROOT / "dev").read_text(), re.M))


def _check_dev(block: Block) -> None:
    for argv in _commands(block):
        assert argv[0] == "./dev" and argv[1] in {c for cs in DEV_COMMANDS for c in cs.split("|")}
        for path in argv[2:]:
            assert (ROOT / path).exists(), path


def test_readme_dev_commands() -> None:
    _check_dev(_block("README.md: ./dev demo"))
    _check_dev(_block("README.md: ./dev test"))


def test_readme_cli_lines_parse_with_the_real_parser() -> None:
    args = [_parse_cli(a, {}) for a in _commands(_block("README.md: genblaze-ingest worker"))]
    assert [a.cmd for a in args] == ["worker", "api", "submit"] and args[2].wait
    placeholders = {"JOB_ID": "0" * 32}
    block = _block("README.md: export GENBLAZE_API_URL=")
    args = [_parse_cli(a, placeholders) for a in _commands(block)]
    assert [a.cmd for a in args] == ["list", "watch", "retry", "submit"]
    assert args[2].replace == [("ASSET_ID", "https://cdn.example.com/a.mp4?sig=fresh")]
    assert (args[3].from_file, args[3].lock_days) == ("urls.txt", 30)
    exported = dict(
        w.split("=", 1) for w in shlex.split(block.text.splitlines()[0], comments=True)[1:3]
    )
    from genblaze_s3.settings_doc import describe

    assert set(exported) <= {name for name, _, _, _ in describe()}


def test_sources_signing_key_commands_run_and_verify_parses(tmp_path: Path) -> None:
    block = _block("docs/SOURCES.md: openssl genpkey")
    for argv in _commands(block):
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True, timeout=30)
    from genblaze_s3.ingest.finalize.signing import load_private_key, load_public_key

    assert load_public_key(str(tmp_path / "signing.pub.pem")) is not None
    assert load_private_key(str(tmp_path / "signing.pem")) is not None
    (argv,) = _commands(_block("docs/SOURCES.md: genblaze-ingest verify"))
    args = _parse_cli(argv, {})
    assert args.cmd == "verify" and args.public_key == ["signing.pub.pem"]
    (argv,) = _commands(_block("README.md: genblaze-ingest verify"))
    args = _parse_cli(argv, {})
    assert args.cmd == "verify" and args.keys_file == ["trusted.pem"]


# -- data and text blocks ------------------------------------------------------------


def test_security_tenants_toml_loads_through_the_tenants_loader(tmp_path: Path) -> None:
    from genblaze_s3.ingest.tenants import TenantRegistry

    block = _block("docs/SECURITY.md: # GENBLAZE_TENANTS_FILE")
    path = tmp_path / "tenants.toml"
    path.write_text(
        block.code([('webhook_secret = "whsec_..."', 'webhook_secret = "whsec_dGVzdA=="')])
    )
    tomllib.loads(path.read_text())
    registry = TenantRegistry.from_file(path)
    acme = registry.get("acme")
    assert acme.buckets == frozenset({"acme-media"}) and acme.max_assets_per_job == 500
    assert registry.authenticate("Bearer acme-2026-12").name == "acme"  # type: ignore[union-attr]


def test_security_operators_toml_loads_through_the_operators_loader(tmp_path: Path) -> None:
    from genblaze_s3.ingest.operators import OperatorRole, operators_from_settings

    block = _block("docs/SECURITY.md: [operators.alice]")
    path = tmp_path / "tenants.toml"
    path.write_text(block.code([('tokens = ["..."]', 'tokens = ["alice-token"]')]))
    ops = operators_from_settings(str(path), None)
    assert ops.operators["alice"].role is OperatorRole.ADMIN and ops.operators["alice"].can_act


def test_sources_refresh_request_json_names_the_model_fields() -> None:
    from genblaze_s3.ingest import RefreshRequest

    body = json.loads(_block('docs/SOURCES.md: {"type": "source.refresh"').text)
    fields = (
        set(RefreshRequest.model_fields)
        if hasattr(RefreshRequest, "model_fields")
        else set(
            RefreshRequest.__dataclass_fields__  # type: ignore[attr-defined]
        )
    )
    assert body["type"] == "source.refresh"
    assert set(body) - {"type"} <= fields | {"source", "reason"}, set(body) - fields


def test_sources_signature_format_is_the_code() -> None:
    from genblaze_s3.ingest.finalize import signing

    text = _block("docs/SOURCES.md: signature =").text
    assert f'b"{signing.CONTEXT_V2.decode()}"' in text  # what the workers sign today
    assert f'signature = "{signing.SCHEME_V2}:<key id>:' in text


def test_architecture_tree_names_only_paths_that_exist() -> None:
    """Every name left of the description column, under the folder it is indented in
    (a bare name is a module: `models` is models.py or models/)."""
    block = _block("docs/ARCHITECTURE.md: genblaze_s3/")
    lines = [ln for ln in block.text.splitlines() if ln.strip()]
    column = min(m.start(2) for ln in lines if (m := re.match(r"^(\S\S*?\s{2,})(\S)", ln)))
    parents: list[tuple[int, str]] = []
    checked = 0
    for line in lines:
        indent = len(line) - len(line.lstrip())
        gap = re.search(r"\S(\s{2,})\S", line)
        names = (
            line[: gap.start(1) + 1].split() if gap and gap.end() - 1 >= column else line.split()
        )
        if indent >= column or not names:  # a description's continuation
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1] if parents else ""
        for name in names:
            where = ROOT / base / name
            ok = where.exists() or ("." not in name and where.with_suffix(".py").exists())
            assert ok, f"docs/ARCHITECTURE.md names {base}{name}, which does not exist"
            checked += 1
        if len(names) == 1 and names[0].endswith("/"):
            parents.append((indent, base + names[0]))
    assert checked > 20


def test_architecture_layer_diagram_is_pyprojects_contracts() -> None:
    """The diagram's two layer chains are the import-linter `layers` contracts, in order."""
    text = _block("docs/ARCHITECTURE.md: cli  ->").text
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]

    def chain(line: str, prefix: str) -> list[str]:
        return [
            " | ".join(f"{prefix}{n.strip()}" for n in step.split("|")) for step in line.split("->")
        ]

    lines = text.splitlines()
    top = chain(lines[0].split("(")[0], "genblaze_s3.")
    rooms = chain(lines[2].split(":", 1)[1].rsplit("->", 1)[0], "genblaze_s3.ingest.")
    layers = [c["layers"] for c in contracts["contracts"] if c["type"] == "layers"]
    assert top in layers and rooms in layers, (top, rooms, layers)


# -- Python blocks -------------------------------------------------------------------


def _exec(
    block: Block, namespace: dict[str, Any], subs: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    exec(block.compile(subs), namespace)  # noqa: S102 - the document's own code
    return namespace


def test_readme_storage_backend_block(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    seaweed.create_bucket("my-genblaze-bucket")
    monkeypatch.setenv("B2_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("B2_APP_KEY", seaweed.secret_key)
    ns = _exec(
        _block("README.md: from genblaze_core import KeyStrategy, ObjectStorageSink"),
        {},
        [
            (
                "auto_lifecycle=True,",
                f"auto_lifecycle=True, endpoint_template={seaweed.endpoint_url!r},",
            )
        ],
    )
    ns["backend"].put("doc-check", b"x")
    assert ns["backend"].exists("doc-check") and ns["sink"] is not None
    ns["backend"].delete("doc-check")


def _signed(secret: str, body: bytes) -> dict[str, str]:
    from genblaze_s3.webhooks import sign_headers

    return sign_headers(body, secret=secret, msg_id="j1.succeeded")


def test_readme_webhook_receiver_block(capsys: pytest.CaptureFixture[str]) -> None:
    from genblaze_s3.webhooks import new_secret

    secret = new_secret()
    ns = _exec(
        _block("README.md: from genblaze_s3.webhooks import"),
        {},
        [('secret="whsec_..."', f"secret={secret!r}")],
    )
    body = json.dumps(
        {"job_id": "j1", "state": "succeeded", "manifest": {"key": "m.json"}}
    ).encode()
    headers = _signed(secret, body)
    assert ns["receive"](body, headers) == 204
    assert ns["receive"](body, headers) == 204  # a redelivery: accepted, not processed twice
    assert capsys.readouterr().out == "j1 succeeded m.json\n"
    assert ns["receive"](body.replace(b"j1", b"j2"), headers) == 400


def test_operator_webhooks_block(capsys: pytest.CaptureFixture[str]) -> None:
    _exec(_block("docs/OPERATOR.md: from genblaze_s3.webhooks import"), {})
    assert capsys.readouterr().out == "altered body refused\n"


# -- Python blocks that need the queue: one stack (API + 2 workers) signing manifests ------


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding signing.pem / signing.pub.pem, as docs/SOURCES.md makes them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    where = tmp_path_factory.mktemp("keys")
    key = Ed25519PrivateKey.generate()
    (where / "signing.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (where / "signing.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return where


@pytest.fixture(scope="module")
def signing_stack(start_module_stack: StartStack, signing_key: Path) -> QueueStack:
    return start_module_stack(extra_env={"GENBLAZE_SIGNING_KEY": str(signing_key / "signing.pem")})


def test_readme_queued_sink_block_then_sources_verify_block(
    signing_stack: QueueStack,
    signing_key: Path,
    seaweed: SeaweedS3,
    locked_bucket: str,
    cdn: CDNServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from genblaze_core.mocks import MockProvider
    from genblaze_core.models.asset import Asset

    from tests.support.workers import TEST_ENV

    # The sink reads the deployment's settings, as on a user's machine.
    monkeypatch.setenv("GENBLAZE_ALLOWED_ENDPOINTS", seaweed.endpoint_url)
    monkeypatch.setenv("GENBLAZE_SOURCE_KEY", TEST_ENV["GENBLAZE_SOURCE_KEY"])
    monkeypatch.setenv("GENBLAZE_QUEUE", signing_stack.queue)
    url = cdn.add("/doc/cat.png", secrets.token_bytes(40_000), content_type="image/png")
    provider = MockProvider(assets=lambda step: [Asset(url=url, media_type="image/png")])
    ns = _exec(
        _block("README.md: from genblaze_core import KeyStrategy, Pipeline"),
        {"backend": seaweed.backend(locked_bucket), "provider": provider},
        [('redis_url="redis://127.0.0.1:6379/0"', f"redis_url={signing_stack.redis_url!r}")],
    )
    final = ns["final"]
    assert final.state.value == "succeeded", final
    job_id, state = capsys.readouterr().out.split()
    assert job_id == ns["job"].id and state in {"queued", "running", "JobState.QUEUED"}

    # docs/SOURCES.md: verify that manifest with the public key, from the key's folder.
    monkeypatch.chdir(signing_key)
    ns = _exec(
        _block("docs/SOURCES.md: from genblaze_s3 import S3StorageBackend, verify_manifest"),
        {"_backend": seaweed.backend(locked_bucket)},
        [
            ('S3StorageBackend("my-bucket")', "_backend"),
            ('"genblaze/manifests/RUN_ID.json"', repr(final.manifest.key)),
        ],
    )
    out = capsys.readouterr().out.splitlines()
    assert ns["report"].ok and out[0] == "True", out

    # The CLI's `verify --json` on the same manifest: one JSON document, nothing else.
    run = subprocess.run(
        [sys.executable, "-m", "genblaze_s3.cli", "verify", f"s3://{locked_bucket}/"
         f"{final.manifest.key}", "--public-key", "signing.pub.pem", "--json"],
        env=dict(
            os.environ,
            AWS_ACCESS_KEY_ID=seaweed.access_key,
            AWS_SECRET_ACCESS_KEY=seaweed.secret_key,
            AWS_ENDPOINT_URL=seaweed.endpoint_url,
        ),
        cwd=signing_key,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"] and run.stderr == ""
    assert report["verdict"] == "verified" and report["envelope"]
    assert {f["check"] for f in report["findings"]} >= {"hash", "signature", "asset"}


def test_operator_python_client_block(
    signing_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer
) -> None:
    from genblaze_s3.ingest import IngestClient

    seaweed.create_bucket("media")
    missing = cdn.url("/doc/gone.mp4")  # nothing there: the asset fails source_not_found
    fresh = cdn.add("/doc/fresh.mp4", secrets.token_bytes(30_000), content_type="video/mp4")
    token = signing_stack.tokens["acme"]
    ns = _exec(
        _block("docs/OPERATOR.md: from genblaze_s3.ingest import IngestClient"),
        {"token": token},
        [
            ('"https://cdn.example.com/a.mp4?sig=fresh"', repr(fresh)),
            ('"https://cdn.example.com/a.mp4"', repr(missing)),
            ('"http://127.0.0.1:8000"', repr(signing_stack.api_url)),
        ],
    )
    job_id = ns["accepted"].job_id
    assert job_id not in [j.job_id for j in ns["page"].jobs]  # running again after the retry
    with IngestClient(signing_stack.api_url, token) as api:
        job = None
        for event in api.events(job_id):  # the retry from the fresh URL runs to its end
            job = event.job
    assert job is not None and job.state.value == "succeeded"


def test_operator_problem_body_is_what_the_api_answers() -> None:
    """OPERATOR.md's problem-details example is the API's own answer to that request."""
    import fakeredis
    from fastapi.testclient import TestClient

    from genblaze_s3.api import create_app
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.submit.enqueue import MemorySender
    from genblaze_s3.ingest.submit.service import IngestService

    documented = json.loads(_block('docs/OPERATOR.md: {"type": "about:blank"').text)
    endpoint = "http://127.0.0.1:8333"
    service = IngestService(
        StatusStore(fakeredis.FakeRedis()),
        MemorySender(),
        "q",
        DestinationPolicy(frozenset({endpoint})),
    )
    client = TestClient(create_app(service, {"tok": "acme"}))
    answer = client.post(
        "/v1/jobs",
        json={
            "assets": [{"url": "https://"}],
            "destination": {"bucket": "media", "endpoint_url": endpoint},
        },
        headers={"Authorization": "Bearer tok"},
    )
    assert answer.status_code == documented["status"]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json() == documented


def test_every_block_has_a_runner() -> None:
    covered = {
        "README.md: ./dev demo",
        "README.md: ./dev test",
        "README.md: genblaze-ingest worker",
        "README.md: export GENBLAZE_API_URL=",
        "docs/SOURCES.md: openssl genpkey",
        "docs/SOURCES.md: genblaze-ingest verify",
        "docs/SECURITY.md: # GENBLAZE_TENANTS_FILE",
        "docs/SECURITY.md: [operators.alice]",
        'docs/SOURCES.md: {"type": "source.refresh"',
        "docs/SOURCES.md: signature =",
        "docs/ARCHITECTURE.md: genblaze_s3/",
        "docs/ARCHITECTURE.md: cli  ->",
        "README.md: from genblaze_core import KeyStrategy, ObjectStorageSink",
        "README.md: from genblaze_s3.webhooks import",
        "docs/OPERATOR.md: from genblaze_s3.webhooks import",
        'docs/OPERATOR.md: {"type": "about:blank"',
        "docs/RUN_BY_HAND.md: ",  # every block, in order: tests/integration/test_run_by_hand.py
        "README.md: from genblaze_core import KeyStrategy, Pipeline",
        "docs/OPERATOR.md: from genblaze_s3.ingest import IngestClient",
        "docs/SOURCES.md: from genblaze_s3 import S3StorageBackend, verify_manifest",
        "README.md: genblaze-ingest verify",
        # README's consumer snippet (securesystemslib + boto3 alone) runs as written in
        # tests/unit/test_provenance_envelope.py, against a finalized run in moto.
        "README.md: import hashlib, json, boto3",
    }
    missing = [k for k in BLOCKS if not any(k.startswith(c) for c in covered)]
    assert missing == [], f"code blocks no test runs: {missing}"
