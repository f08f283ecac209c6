"""`genblaze-ingest` composes with other tools (issue 22, first list, one test per bullet).

The API runs on a real socket (uvicorn, fakeredis behind it, tests/unit/test_operator_cli);
the CLI runs in-process with pytest capturing stdout and stderr, which is exactly a pipe:
not a terminal. Terminal-only rendering is checked on the rich columns themselves.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from genblaze_s3.cli import app as cli
from genblaze_s3.ingest.models import AssetState, JobState
from tests.support.helpers import serve_http
from tests.unit.test_operator_cli import DEST, _free_port, _Server

COMMON = ["--token", "tok-a"]
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def api() -> Iterator[_Server]:
    s = _Server(fakeredis.FakeRedis())
    try:
        yield s
    finally:
        s.stop()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = cli.main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def _submit(api: _Server, capsys: pytest.CaptureFixture[str], *urls: str, extra: tuple = ()) -> str:
    rc, out, err = _run(
        capsys,
        "submit",
        "--api-url",
        api.url,
        *COMMON,
        "--bucket",
        "media",
        "--endpoint",
        DEST["endpoint_url"],
        *extra,
        *urls,
    )
    assert rc == 0, err
    return out.strip()


def _finish(api: _Server, job_id: str, key_of: Any) -> None:
    store = api.service.store
    for aid in store.get_meta(job_id).asset_ids:  # type: ignore[union-attr]
        store.start_asset(job_id, aid, worker="h:1")
        store.finish_asset(job_id, aid, AssetState.STORED, key=key_of(aid), url="u", size=3)
    store.transition_job(job_id, JobState.FINALIZING)
    store.transition_job(job_id, JobState.SUCCEEDED)


def test_on_a_pipe_ids_and_keys_are_whole_one_record_per_line(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = [_submit(api, capsys, f"https://cdn.x/{i}.png") for i in range(3)]
    long_key = "genblaze/assets/" + "ab" * 40 + "/" + "c" * 64 + ".png"  # > 80 columns
    _finish(api, jobs[0], lambda aid: long_key)

    rc, out, _ = _run(capsys, "list", "--api-url", api.url, *COMMON)
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 3  # no header, no wrapped rows
    # `genblaze-ingest list | awk '{print $1}'` gives whole ids, newest first.
    assert [line.split()[0] for line in lines] == jobs[::-1]
    assert all(JOB_ID.match(line.split("\t")[0]) for line in lines)

    rc, out, _ = _run(capsys, "list", "--api-url", api.url, *COMMON, "-o", "jsonl")
    assert [json.loads(line)["job_id"] for line in out.splitlines()] == jobs[::-1]

    rc, out, _ = _run(capsys, "status", jobs[0], "--api-url", api.url, *COMMON)
    records = [line.split("\t") for line in out.splitlines()]
    assert records[0][:3] == ["job", jobs[0], "succeeded"]
    assert records[1][0] == "asset" and records[1][3] == long_key  # never folded
    assert "\x1b[" not in out  # no colour on a pipe


def test_off_a_terminal_progress_never_runs_into_the_summary(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _submit(api, capsys, "https://cdn.x/a.png", "https://cdn.x/b.png")
    timer = threading.Timer(0.5, _finish, (api, job_id, lambda aid: f"k/{aid}"))
    timer.start()
    rc, out, err = _run(capsys, "watch", job_id, "--api-url", api.url, *COMMON)
    timer.join()
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split("\t")[:3] == ["job", job_id, "succeeded"]
    assert all(line.split("\t")[0] in {"job", "asset", "manifest"} for line in lines), out
    assert "━" not in out + err and "\r" not in out + err  # no bar at all
    # What a person would want in a log: one line per state it saw, on stderr, in order
    # (how many it saw depends on when the job finished; the last is always the end).
    order = ["queued", "running", "finalizing", "succeeded"]
    states = [re.fullmatch(rf"job {job_id}: (\w+) \d+%", ln) for ln in err.splitlines()]
    assert all(states), err
    seen = [order.index(m.group(1)) for m in states if m]
    assert seen == sorted(set(seen)) and seen[-1] == order.index("succeeded"), err


def test_submit_wait_json_is_a_pure_json_stream(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    from genblaze_s3.ingest import IngestClient

    box: dict[str, Any] = {}

    def run() -> None:
        box["rc"] = cli.main(
            [
                "submit",
                "--api-url",
                api.url,
                *COMMON,
                "--bucket",
                "media",
                "--endpoint",
                DEST["endpoint_url"],
                "--wait",
                "--json",
                "https://cdn.x/a.png",
            ]
        )

    t = threading.Thread(target=run)
    t.start()
    with IngestClient(api.url, "tok-a") as c:  # finish the job once it is listed
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not (jobs := c.list().jobs) and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    job_ids = [jobs[0].job_id]
    _finish(api, job_ids[0], lambda aid: f"k/{aid}")
    t.join(30)
    out, err = capsys.readouterr()
    values = [json.loads(line) for line in out.splitlines()]  # what `jq` reads
    assert box["rc"] == 0 and values[0]["job_id"] == job_ids[0]
    assert values[-1]["job"]["state"] == "succeeded"
    assert err == ""


def test_sizes_are_binary_units_everywhere_and_help_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rich.progress import Progress

    from genblaze_s3.humanize import human_size, size_columns

    progress = Progress(*size_columns())
    task_id = progress.add_task("bytes", total=3_000_000, completed=3_000_000)
    task = progress.tasks[task_id]
    size, _rate = (str(c.render(task)) for c in size_columns())
    assert size == "2.9 MiB / 2.9 MiB" == f"{human_size(3_000_000)} / {human_size(3_000_000)}"
    with pytest.raises(SystemExit):
        cli.main(["submit", "--help"])
    assert "IEC binary units: 1 KiB = 1024 B" in capsys.readouterr().out
    # The live view and the demo's bars use these columns, never rich's decimal ones.
    import inspect

    from genblaze_s3.cli import view
    from genblaze_s3.local import terminal

    for module in (view, terminal, cli):
        source = inspect.getsource(module)
        assert "DownloadColumn" not in source and "TransferSpeedColumn" not in source
    # /ui: server-rendered sizes come from human_size; live updates from job.js's fmt,
    # which must count the same way (1024, the same unit names, one decimal).
    from pathlib import Path

    import genblaze_s3.api
    from genblaze_s3.humanize import UNITS

    js = (Path(genblaze_s3.api.__file__).parent / "ui" / "static" / "job.js").read_text()
    units = re.search(r"const u=\[([^\]]*)\]", js)
    assert units and [u.strip(" '\"") for u in units.group(1).split(",")] == list(UNITS)
    assert "v>=1024" in js and "v/=1024" in js and "toFixed(1)" in js


def test_submit_from_file_splits_by_the_tenants_limit_and_prints_every_job_id(
    api: _Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    registry = api.service.tenants
    registry.tenants["acme"] = replace(registry.get("acme"), max_assets_per_job=1000)  # type: ignore[index]
    sha = "0" * 64
    lines = [f"https://cdn.x/{i}.png" for i in range(2300)]
    lines[5] = json.dumps(
        {
            "url": "https://cdn.x/v.mp4",
            "media_type": "video/mp4",
            "sha256": sha,
            "labels": {"team": "video"},
        }
    )
    listing = tmp_path / "urls.txt"
    listing.write_text("# exported from the provider\n\n" + "\n".join(lines) + "\n")
    out = _submit(api, capsys, extra=("--from-file", str(listing), "--label", "run=7"))
    ids = out.splitlines()
    assert len(ids) == 4 and all(JOB_ID.match(i) for i in ids)  # 1000 + 1000 + 299, + 1 labelled
    store = api.service.store
    sizes = [len(store.get_meta(i).asset_ids) for i in ids]  # type: ignore[union-attr]
    assert sizes == [1000, 1000, 299, 1]
    video = store.get_meta(ids[3])
    assert video.labels == {"team": "video", "run": "7"}  # type: ignore[union-attr]
    assert store.get_meta(ids[0]).labels == {"run": "7"}  # type: ignore[union-attr]

    # stdin, and a line that is neither a URL nor valid JSON: exit 2 naming the line.
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO('https://cdn.x/ok.png\n{"url": 3}\n'))
    rc, out, err = _run(
        capsys, "submit", "--api-url", api.url, *COMMON, "--bucket", "media", "--from-file", "-"
    )
    assert rc == 2 and out == "" and err.startswith("genblaze-ingest submit: stdin:2: url: ")
    rc, out, err = _run(
        capsys, "submit", "--api-url", api.url, *COMMON, "--bucket", "media", "x" * 9000
    )
    assert rc == 2 and "URL argument 1: url: String should have at most 8192" in err


def test_the_default_limit_is_what_the_api_states(api: _Server) -> None:
    from genblaze_s3.cli.sources import FileEntry, plan_jobs
    from genblaze_s3.ingest import IngestClient
    from genblaze_s3.ingest.client.http import InvalidRequestError

    with IngestClient(api.url, "tok-a") as c:
        limits = c.limits()
        # One job over the limit: the 422 says how to split.
        urls = [f"https://cdn.x/{i}" for i in range(limits.max_assets_per_job + 1)]
        with pytest.raises(InvalidRequestError, match="submit --from-file` does"):
            c.submit(urls, DEST)
    assert limits.max_assets_per_job == 10_000 and limits.tenant == "acme"
    entries = [FileEntry(url=f"https://cdn.x/{i}") for i in range(60_000)]
    assert [len(j.assets) for j in plan_jobs(entries, limits.max_assets_per_job, {})] == [
        10_000
    ] * 6


def test_submit_asks_for_object_lock(api: _Server, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    job_id = _submit(api, capsys, "https://cdn.x/a.png", extra=("--lock-days", "30"))
    lock = api.service.store.get_meta(job_id).manifest_lock  # type: ignore[union-attr]
    assert lock is not None and lock.mode == "GOVERNANCE"
    assert timedelta(days=30) <= lock.retain_until - before <= timedelta(days=30, hours=1)
    assert lock.retain_until.minute == lock.retain_until.second == 0
    job_id = _submit(api, capsys, "https://cdn.x/b.png", extra=("--retain-until", "2031-01-31"))
    lock = api.service.store.get_meta(job_id).manifest_lock  # type: ignore[union-attr]
    assert lock is not None and lock.retain_until == datetime(2031, 1, 31, tzinfo=UTC)
    rc, _, err = _run(
        capsys, "submit", "--api-url", api.url, *COMMON, "--bucket", "media",
        "--lock-days", "3", "--retain-until", "2031-01-31", "https://cdn.x/c.png",
    )  # fmt: skip
    assert rc == 2 and "not allowed with argument" in err


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """Python's static file server (`404: File not found` in HTML), not logging to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


def test_an_api_url_that_is_not_a_genblaze_api_or_lacks_a_scheme(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Files(_Quiet):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

    with serve_http(Files) as other:
        rc, out, err = _run(capsys, "status", "0" * 32, "--api-url", other, *COMMON)
        assert rc == 10 and out == "" and err.count("\n") == 1
        assert f"{other} is not a genblaze ingest API: it answered 404" in err
        # A server answering 200 with something else is refused the same way.
        (tmp_path / "v1").mkdir()
        (tmp_path / "v1" / "jobs").write_text("<h1>hello</h1>")
        rc, _, err = _run(capsys, "list", "--api-url", other, *COMMON)
        assert rc == 10 and "is not a genblaze ingest API: its answer is not the API's" in err
        rc, _, err = _run(capsys, "list", "--api-url", other + "/#top", *COMMON)
        assert rc == 2 and "must carry no query, fragment or credentials" in err

    port = _free_port()
    rc, out, err = _run(capsys, "list", "--api-url", f"127.0.0.1:{port}", *COMMON)
    assert rc == 2 and out == ""
    assert f"did you mean http://127.0.0.1:{port}?" in err and "GENBLAZE_API_URL" in err
    assert "UnsupportedProtocol" not in err and "Traceback" not in err
    # The same from the environment, as the issue met it.
    monkeypatch.setenv("GENBLAZE_API_URL", f"127.0.0.1:{port}")
    rc, out, err = _run(capsys, "status", "0" * 32, *COMMON)
    assert rc == 2 and f"did you mean http://127.0.0.1:{port}?" in err


def test_endpoint_help_says_where_a_job_without_one_lands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["submit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "none: AWS S3" not in text
    assert (
        "each worker writes to ITS OWN AWS_ENDPOINT_URL (AWS S3 when the worker has none)" in text
    )


def test_cancel_prints_the_job_id_and_its_new_state(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = _submit(api, capsys, "https://cdn.x/a.png")
    rc, out, err = _run(capsys, "cancel", job_id, "--api-url", api.url, *COMMON)
    assert (rc, out, err) == (0, f"{job_id}\tcanceled\n", "")
    job_id = _submit(api, capsys, "https://cdn.x/b.png")
    rc, out, _ = _run(capsys, "cancel", job_id, "--api-url", api.url, *COMMON, "-o", "json")
    assert json.loads(out)["job_id"] == job_id and json.loads(out)["state"] == "canceled"


def test_a_failed_split_submit_resumes_with_its_idempotency_key(
    api: _Server, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    registry = api.service.tenants
    acme = registry.get("acme")
    registry.tenants["acme"] = replace(acme, max_assets_per_job=1000, max_concurrent_jobs=2)  # type: ignore[index]
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(f"https://cdn.x/{i}.png\n" for i in range(2500)))
    argv = (
        "submit", "--api-url", api.url, *COMMON, "--bucket", "media", "--endpoint",
        DEST["endpoint_url"], "--from-file", str(listing), "--idempotency-key", "batch-7",
        "--lock-days", "2",
    )  # fmt: skip
    rc, out, err = _run(capsys, *argv)
    first = out.split()
    assert rc == 9 and len(first) == 2  # the third job: 429, the tenant runs 2 already
    assert "2 of 3 jobs submitted (2000 of 2500 assets); the rest were not" in err
    assert "re-run with the same --idempotency-key to resume" in err
    for job_id in first:
        _finish(api, job_id, lambda aid: f"k/{aid}")
    rc, out, err = _run(capsys, *argv)
    again = out.split()
    assert rc == 0 and again[:2] == first and len(again) == 3, err  # no job twice
    assert len(api.service.store.get_meta(again[2]).asset_ids) == 500  # type: ignore[union-attr]


def test_on_a_terminal_the_live_view_ends_in_the_rich_summary(
    api: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from genblaze_s3.cli.output import Output
    from genblaze_s3.cli.view import watch_job
    from genblaze_s3.ingest import IngestClient

    job_id = _submit(api, capsys, "https://cdn.x/a.png")
    timer = threading.Timer(0.5, _finish, (api, job_id, lambda aid: f"k/{aid}"))
    timer.start()
    screen = io.StringIO()
    with IngestClient(api.url, "tok-a") as c:
        job = watch_job(c, job_id, Output(format="table", tty=True, out=screen, err=screen))
    timer.join()
    assert job.state.value == "succeeded"
    text = screen.getvalue()
    assert f"job {job_id}: succeeded" in text and "bytes  3 B / 3 B" in text
