"""Finished asset records are kept without their nulls (records.record_json), and every
reader sees the same record, document, page and event as before."""

from __future__ import annotations

import json

from genblaze_s3.ingest.models import AssetRecord, AssetState, ErrorInfo
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.records import record_json
from tests.unit.ingest_fixtures import make_submission, worker_context


def test_a_terminal_record_drops_top_level_nulls_only() -> None:
    rec = AssetRecord(asset_id="a", source_url="https://cdn/x", state=AssetState.STORED, size=3)
    stored = json.loads(record_json(rec))
    assert "error" not in stored and "retry" not in stored and "retry_at" not in stored
    assert stored["refreshes"] == 0 and stored["attempts"] == 0  # defaults that are not null
    assert AssetRecord.model_validate(stored) == rec
    live = rec.model_copy(update={"state": AssetState.COPYING})
    assert json.loads(record_json(live))["error"] is None  # in flight: every field kept
    assert len(record_json(rec)) < len(rec.model_dump_json())


def test_readers_see_nulls_for_what_a_finished_record_left_out() -> None:
    ctx = worker_context()
    sub = make_submission(2)
    ctx.store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    job_id, ids = sub.meta.job_id, sub.meta.asset_ids
    ctx.store.start_asset(job_id, ids[0], worker="w:1")
    ctx.store.finish_asset(
        job_id, ids[0], AssetState.FAILED, error=ErrorInfo(code="source_not_found", message="x")
    )
    raw = json.loads(ctx.redis.get(keys.asset_key(job_id, ids[0])) or b"{}")
    assert "bytes_total" not in raw and "retry" not in raw  # stored without its nulls
    doc = json.loads(ctx.store.get_job_document(job_id) or "{}")
    page = ctx.store.asset_page(job_id)["assets"]
    first = next(a for a in doc["assets"] if a["asset_id"] == ids[0])
    assert first["bytes_total"] is None and first["error"]["code"] == "source_not_found"
    assert next(a for a in page if a["asset_id"] == ids[0]) == first
    assert ctx.store.get_asset(job_id, ids[0]).state == AssetState.FAILED  # type: ignore[union-attr]
    assert doc["progress"]["bytes_total"] is None  # an asset of unknown size: total unknown


def test_the_kept_model_writes_what_parsing_the_stored_form_would() -> None:
    """The writer keeps each record's model beside its stored form (no re-parse on the
    next write): every step's script arguments are those of the parse-everything path."""
    from datetime import UTC, datetime

    from genblaze_s3.ingest.models import RetryInfo
    from genblaze_s3.ingest.store import counters
    from genblaze_s3.ingest.store.records import _counted, _next_record

    rec = AssetRecord(asset_id="a", source_url="https://cdn/x", seq=7, bytes_total=None)
    steps: list[tuple[AssetState | None, dict[str, object]]] = [
        (AssetState.COPYING, {"worker": "w:1", "fetch_started_at": datetime.now(UTC)}),
        (None, {"bytes_done": 10, "bytes_total": 40}),
        (
            AssetState.COPYING,
            {
                "retry": RetryInfo(
                    attempt=2,
                    of=6,
                    last_error=ErrorInfo(code="s3_slow_down", message="m"),
                    next_try_at=datetime.now(UTC),
                )
            },
        ),
        (AssetState.FAILED, {"error": ErrorInfo(code="source_not_found", message="x")}),
    ]
    raw: str = rec.model_dump_json()
    for new, fields in steps:
        after = _next_record(rec, new, fields)
        parsed_path = _next_record(AssetRecord.model_validate_json(raw), new, fields)
        assert after is not None and parsed_path is not None
        assert after.raw == parsed_path.raw  # the same stored form
        assert AssetRecord.model_validate_json(after.raw) == after.record
        kw = {"retention": 60, "updated_at": "t", "channel": "c"}
        assert counters.cas_args(
            raw, after.raw, old=_counted(rec), new=_counted(after.record), **kw
        ) == counters.cas_args(raw, after.raw, old=json.loads(raw), new=json.loads(after.raw), **kw)
        rec, raw = after.record, str(after.raw)
