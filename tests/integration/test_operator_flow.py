"""List, watch and retry through the real API with real workers (Procfile processes).

Many SSE watchers on one job all see the same deltas to the end; a reconnect with
Last-Event-ID resumes; an expired source is retried from the CLI with a fresh URL and
the job's manifest is then written and verifies with genblaze-core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from genblaze_core.models.run import Run
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest import IngestClient
from genblaze_s3.ingest.client.http import JobEvent
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for
from tests.support.workers import QueueStack


def test_many_watchers_see_every_change_and_a_reconnect_resumes(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    cdn.add("/watch-big.bin", os.urandom(2 * 1024 * 1024))
    cdn.add("/watch-small.png", os.urandom(5000), content_type="image/png")
    dest = {"bucket": bucket, "endpoint_url": seaweed.endpoint_url}
    with IngestClient(stack.api_url, stack.tokens["acme"]) as api:
        job = api.submit(
            [cdn.url("/watch-big.bin", mode="slow", rate=1024 * 1024), cdn.url("/watch-small.png")],
            dest,
            labels={"flow": "watch"},
        )
        assert [j.job_id for j in api.list(label="flow=watch").jobs] == [job.job_id]
        seen: dict[int, list[JobEvent]] = {}

        def watch(i: int) -> None:
            with IngestClient(stack.api_url, stack.tokens["acme"]) as own:
                seen[i] = list(own.events(job.job_id))

        threads = [threading.Thread(target=watch, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(seen) == 20
        for events in seen.values():
            ids = [e.id for e in events]
            assert ids == sorted(set(ids)), ids  # versions only grow, none repeated
            assert events[0].kind == "job" and events[-1].job.state.value == "succeeded"
            assert events[-1].job.progress.assets_done == 2
        assert any(len(evs) > 2 for evs in seen.values()), "no progress deltas were streamed"
        last = seen[0][-1].id
        assert list(api.events(job.job_id, last_event_id=last)) == []  # nothing new since
        resumed = list(api.events(job.job_id, last_event_id=seen[0][0].id))
        assert [e.kind for e in resumed] == ["job"] and resumed[0].id == last


def test_an_expired_source_is_retried_from_the_cli_and_the_manifest_verifies(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    cdn.add("/flow-ok.png", os.urandom(7000), content_type="image/png")
    cdn.add("/flow-late.png", os.urandom(9000), content_type="image/png")
    dest = {"bucket": bucket, "endpoint_url": seaweed.endpoint_url}
    env = {
        **os.environ,
        "GENBLAZE_API_URL": stack.api_url,
        "GENBLAZE_API_TOKEN": stack.tokens["acme"],
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genblaze_s3.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    with IngestClient(stack.api_url, stack.tokens["acme"]) as api:
        job = api.submit([cdn.url("/flow-ok.png"), cdn.url("/flow-late.png", mode="expired")], dest)
        watched = cli("watch", job.job_id)
        assert watched.returncode == 1 and "source_expired" in watched.stdout, watched
        failed = api.get(job.job_id)
        assert failed.state.value == "failed" and failed.error_codes == {"source_expired": 1}
        assert failed.manifest.key is None
        (bad,) = [a.asset_id for a in failed.assets if a.state.value == "failed"]
        listed = json.loads(cli("list", "--state", "failed", "--json").stdout)
        assert job.job_id in [j["job_id"] for j in listed["jobs"]]
        retried = cli(
            "retry", job.job_id, "--replace", f"{bad}={cdn.url('/flow-late.png')}", "--watch"
        )
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert "Traceback" not in retried.stderr
        done = api.get(job.job_id)
        assert done.state.value == "succeeded" and done.manifest.key
        assert done.counts.failed == 0 and done.error_codes == {}
        again = cli("retry", job.job_id)
        assert again.returncode == 6 and again.stderr.count("\n") == 1
    backend = backend_for(seaweed, bucket)
    listed = backend.client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert done.manifest.key in [o["Key"] for o in listed], [o["Key"] for o in listed]
    raw = json.loads(backend.get(done.manifest.key))
    run = Run.model_validate(raw["run"])
    # Two tenants in GENBLAZE_API_TOKENS: acme's keys live under its root, `acme/`.
    sink = ObjectStorageSink(
        backend, prefix="acme/genblaze", key_strategy=KeyStrategy.CONTENT_ADDRESSABLE
    )
    assert sink.read_manifest(run)
