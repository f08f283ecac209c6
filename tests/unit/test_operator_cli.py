"""`genblaze-ingest` job commands and IngestClient against the API on a real socket.

The API is served by uvicorn on loopback (fakeredis behind it); the CLI runs
in-process so its exit codes and one-line errors are asserted directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
import uvicorn

from genblaze_s3.api import create_app
from genblaze_s3.cli import app as cli
from genblaze_s3.ingest import AsyncIngestClient, IngestClient
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.finalize.manifest import finalize_job
from genblaze_s3.ingest.models import AssetState, ErrorInfo, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import MemorySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import load_settings

TOKENS = {"tok-a": "acme"}
DEST = {"bucket": "media", "endpoint_url": "http://127.0.0.1:8333"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, client: redis.Redis) -> None:
        policy = DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": DEST["endpoint_url"]})
        )
        sealer = SourceSealer("dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA=")  # tests only
        self.service = IngestService(StatusStore(client), MemorySender(), "q", policy, sealer)
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(self.service, TOKENS), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("API did not start")
            threading.Event().wait(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def api() -> Iterator[_Server]:
    s = _Server(fakeredis.FakeRedis())
    try:
        yield s
    finally:
        s.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _fail_all(service: IngestService, job_id: str) -> list[str]:
    store = service.store
    ids = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    for aid in ids:
        store.finish_asset(job_id, aid, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    finalize_job(store, lambda _: None, job_id)
    assert store.job_state(job_id) == JobState.FAILED
    return ids


def test_every_api_error_is_one_line_with_its_own_exit_code(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--api-url", api.url, "--token", "tok-a"]
    rc, out, _ = _run(
        capsys,
        "submit",
        *common,
        "--bucket",
        "media",
        "--endpoint",
        DEST["endpoint_url"],
        "https://cdn.x/a.png",
    )
    assert rc == 0
    job_id = out.strip()
    codes = {
        "down": _run(
            capsys,
            "status",
            job_id,
            "--api-url",
            f"http://127.0.0.1:{_free_port()}",
            "--token",
            "tok-a",
        ),
        "401": _run(capsys, "status", job_id, "--api-url", api.url, "--token", "wrong"),
        "404": _run(capsys, "status", "0" * 32, *common),
        "422": _run(capsys, "submit", *common, "--bucket", "media", "file:///etc/passwd"),
    }
    codes["409"] = _run(capsys, "retry", job_id, *common)  # queued: nothing to retry
    broken = _Server(redis.Redis(port=_free_port(), socket_connect_timeout=0.5))
    try:
        codes["503"] = _run(capsys, "status", job_id, "--api-url", broken.url, "--token", "tok-a")
        codes["503-watch"] = _run(
            capsys, "status", job_id, "--watch", "--api-url", broken.url, "--token", "tok-a"
        )
    finally:
        broken.stop()
    assert {k: v[0] for k, v in codes.items()} == {
        "down": 3,
        "401": 4,
        "404": 5,
        "422": 7,
        "409": 6,
        "503": 8,
        "503-watch": 8,
    }
    for _rc, out, err in codes.values():
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err


def test_list_status_retry_and_watch_with_json(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--api-url", api.url, "--token", "tok-a"]
    rc, out, _ = _run(
        capsys,
        "submit",
        *common,
        "--bucket",
        "media",
        "--endpoint",
        DEST["endpoint_url"],
        "--label",
        "team=video",
        "--json",
        "https://cdn.x/a.png",
        "https://cdn.x/b.png",
    )
    job_id = json.loads(out)["job_id"]
    rc, out, _ = _run(capsys, "list", *common, "--label", "team=video", "--json")
    assert rc == 0 and [j["job_id"] for j in json.loads(out)["jobs"]] == [job_id]
    rc, out, _ = _run(capsys, "list", *common)
    assert rc == 0 and job_id in out and "team=video" in out
    a, b = _fail_all(api.service, job_id)
    rc, out, _ = _run(capsys, "status", job_id, *common, "--json")
    doc = json.loads(out)
    assert doc["state"] == "failed" and doc["error_codes"] == {"source_expired": 2}
    rc, out, _ = _run(capsys, "status", job_id, *common)
    assert "source_expired" in out and "failed" in out
    rc, out, _ = _run(
        capsys, "retry", job_id, *common, "--replace", f"{a}=https://cdn.x/new.png", "--json"
    )
    assert rc == 0 and json.loads(out)["retried"] == [a, b]
    assert _run(capsys, "retry", job_id, *common)[0] == 6  # running now: 409

    store = api.service.store

    def finish_later() -> None:
        for aid in (a, b):
            store.start_asset(job_id, aid, worker="h:1")
            store.finish_asset(job_id, aid, AssetState.STORED, key=f"k/{aid}", url="u", size=3)
        store.transition_job(job_id, JobState.FINALIZING)
        store.transition_job(job_id, JobState.SUCCEEDED)

    timer = threading.Timer(0.5, finish_later)
    timer.start()
    rc, out, _ = _run(capsys, "watch", job_id, *common, "--json")
    timer.join()
    events = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and events[-1]["job"]["state"] == "succeeded"
    assert events[-1]["job"]["progress"]["assets_done"] == 2


def test_every_option_has_help_and_the_version_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in subs.choices.items():
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help text"
        assert "default" in sp.format_help() or name == "watch", name
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("genblaze-ingest ")


def test_python_clients_cover_submit_list_get_assets_cancel_retry_events(api: _Server) -> None:
    with IngestClient(api.url, "tok-a") as c:
        job = c.submit(["https://cdn.x/1.png", "https://cdn.x/2.png"], DEST, labels={"k": "v"})
        assert [j.job_id for j in c.list(label="k=v").jobs] == [job.job_id]
        view = c.get(job.job_id)
        assert view.state == JobState.QUEUED and view.counts.queued == 2
        assert len(list(c.iter_assets(job.job_id))) == 2
        assert c.cancel(job.job_id).state == JobState.CANCELED
        events = list(c.events(job.job_id))
        assert [e.kind for e in events] == ["job"] and events[0].job.state == JobState.CANCELED
        assert c.retry(job.job_id).retried == [a.asset_id for a in view.assets]
        with pytest.raises(Exception) as exc:
            c.retry(job.job_id)
        assert type(exc.value).__name__ == "ConflictError"

    async def go() -> list[str]:
        async with AsyncIngestClient(api.url, "tok-a") as ac:
            accepted = await ac.submit(["https://cdn.x/3.png"], DEST)
            page = await ac.list(state="queued")
            got = await ac.get(accepted.job_id)
            assets = await ac.assets(accepted.job_id, state="queued")
            assert [a.asset_id async for a in ac.iter_assets(accepted.job_id)] == [
                a.asset_id for a in assets.assets
            ]
            assert accepted.job_id in [j.job_id async for j in ac.iter_jobs(limit=1)]
            await ac.cancel(accepted.job_id)
            kinds = [e.kind async for e in ac.events(accepted.job_id)]
            retried = await ac.retry(accepted.job_id)
            assert got.job_id == accepted.job_id and len(assets.assets) == 1
            assert accepted.job_id in [j.job_id for j in page.jobs]
            return kinds + retried.retried

    out: Any = asyncio.run(go())
    assert out[0] == "job" and len(out) == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://[::1", "has an invalid IPv6 address in brackets"), ("https://", "has no host")],
)
def test_submit_of_a_malformed_url_says_why_on_one_line(
    api: _Server, capsys: pytest.CaptureFixture[str], url: str, reason: str
) -> None:
    """Issue 21: `submit 'http://[::1'` was a 500, `submit https://` said "must be http(s)"."""
    common = ["--api-url", api.url, "--token", "tok-a", "--bucket", "media"]
    rc, out, err = _run(capsys, "submit", *common, url)
    assert (rc, out) == (7, ""), err  # 7: the request was refused (422)
    assert err.count("\n") == 1 and f"assets.0.url {reason}" in err, err
