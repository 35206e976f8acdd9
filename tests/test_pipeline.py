"""The sync end to end: source + pipeline into DuckDB (and Postgres), replaying recorded Gong."""

from __future__ import annotations

import logging
import re
from typing import Any

import dlt
import pytest

from pipelines.gong_pipeline import SyncResult, run_sync
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, CASSETTES, GongFixture, Warehouse

START = "2026-10-26T00:00:00+00:00"
END = "2026-11-01T12:00:00+00:00"
EXTENSIVE = "/v2/calls/extensive"
TRANSCRIPT = "/v2/calls/transcript"


def sync(gong: GongFixture, wh: Warehouse, resources: tuple[str, ...] = ("calls", "transcripts"),
         start: str | None = START, end: str | None = END, window_days: float = 30, **options: Any) -> SyncResult:
    options.setdefault("lookback_days", 2)
    client = gong.client(**options.pop("client_settings", {}))
    return run_sync(list(resources), start=start, end=end, destination=wh.destination, dataset=wh.dataset,
                    pipeline_name="test_gong", pipelines_dir=str(wh.tmp_path / "dlt"),
                    source_options={"client": client, **options}, window_days=window_days)


def table_counts(wh: Warehouse, tables: list[str]) -> dict[str, int]:
    return {t: wh.count(t) for t in tables}


CALL_TABLES = ["calls", "calls__parties", "calls__trackers", "calls__trackers__occurrences", "calls__topics",
               "calls__context__objects__fields", "calls__parties__methods", "transcripts"]


@pytest.mark.sim(days=14, calls_per_day=10, private_ratio=0.1)
def test_transcripts_are_batched_per_calls_page_and_never_asked_for_private_calls(
        gong: GongFixture, duck: Warehouse) -> None:
    result = sync(gong, duck, start="2026-10-18T00:00:00+00:00")
    calls_pages = gong.session.count(EXTENSIVE)
    transcript_bodies = gong.session.bodies(TRANSCRIPT)
    assert calls_pages == 2, "140 calls are two pages of 100"
    assert len(transcript_bodies) == calls_pages, "one transcript request per page of calls"
    asked = [cid for b in transcript_bodies for cid in b["filter"]["callIds"]]
    assert all(len(b["filter"]["callIds"]) <= 100 for b in transcript_bodies)
    loaded = {r[0] for r in duck.query("SELECT id FROM {ds}.calls")}
    private = {r[0] for r in duck.query("SELECT id FROM {ds}.calls WHERE is_private")}
    assert private == set()
    assert len(loaded) > 100 and set(asked) == loaded and len(asked) == len(loaded)
    assert result.request_counts == {EXTENSIVE: 2, TRANSCRIPT: 2}
    if gong.sim is not None:
        assert set(asked).isdisjoint(gong.sim.private_call_ids())
        assert len(gong.sim.private_call_ids()) > 0
        assert gong.sim.stats()["privateTranscriptRequests"] == []
    with_transcript = {r[0] for r in duck.query("SELECT DISTINCT call_id FROM {ds}.transcripts")}
    assert with_transcript and with_transcript <= loaded
    assert duck.count("transcripts", "WHERE text IS NULL OR start_ms IS NULL") == 0


def test_two_runs_over_the_same_data_add_no_rows(gong: GongFixture, warehouse: Warehouse) -> None:
    sync(gong, warehouse, resources=("workspaces", "users", "scorecards", "calls", "transcripts"))
    first = table_counts(warehouse, CALL_TABLES + ["users", "workspaces", "scorecards", "scorecards__questions"])
    assert first["calls"] > 20 and first["transcripts"] > 100 and first["users"] == 6
    sync(gong, warehouse, resources=("workspaces", "users", "scorecards", "calls", "transcripts"))
    second = table_counts(warehouse, list(first))
    assert second == first
    assert warehouse.query("SELECT count(*) - count(DISTINCT id) FROM {ds}.calls")[0][0] == 0
    dup = warehouse.query("SELECT count(*) FROM (SELECT call_id, sentence_index FROM {ds}.transcripts "
                          "GROUP BY 1, 2 HAVING count(*) > 1) d")[0][0]
    assert dup == 0
    loads = {r[0] for r in warehouse.query("SELECT load_id FROM {ds}._dlt_loads WHERE status = 0")}
    for table in ("calls", "transcripts", "users", "scorecards"):  # child tables carry _dlt_root_id instead
        ids = {r[0] for r in warehouse.query(f"SELECT DISTINCT _dlt_load_id FROM {{ds}}.{table}")}
        assert ids and ids <= loads


def test_resynced_call_has_exactly_its_new_child_rows(gong: GongFixture, duck: Warehouse) -> None:
    sync(gong, duck, resources=("calls",))
    call_id, parties_before = duck.query(
        "SELECT c.id, count(*) FROM {ds}.calls c JOIN {ds}.calls__parties p ON p.call_id = c.id "
        "JOIN {ds}.calls__trackers t ON t.call_id = c.id GROUP BY 1 ORDER BY 1 LIMIT 1")[0]
    assert parties_before > 1
    new_party = {"id": "90000000000000000001", "name": "New Person", "emailAddress": "new@example.com",
                 "affiliation": "External", "speakerId": "90000000000000000002", "methods": ["Attendee"]}
    gong.edit_call(call_id, parties=[new_party], trackers=[])
    sync(gong, duck, resources=("calls",))
    parties = duck.query(f"SELECT party_id, name FROM {{ds}}.calls__parties WHERE call_id = '{call_id}'")
    assert parties == [("90000000000000000001", "New Person")]
    assert duck.count("calls__parties__methods", f"WHERE call_id = '{call_id}'") == 1
    assert duck.count("calls__trackers", f"WHERE call_id = '{call_id}'") == 0
    assert duck.count("calls__trackers__occurrences", f"WHERE call_id = '{call_id}'") == 0
    other = duck.count("calls__trackers", f"WHERE call_id <> '{call_id}'")
    assert other > 0, "other calls keep their trackers"


def test_ids_survive_as_text(gong: GongFixture, duck: Warehouse) -> None:
    sync(gong, duck, resources=("users", "scorecards", "calls", "transcripts"))
    call_ids = [r[0] for r in duck.query("SELECT id FROM {ds}.calls")]
    assert all(isinstance(i, str) and re.fullmatch(r"\d{19,20}", i) for i in call_ids)
    assert any(int(i) > 2**63 for i in call_ids), "some ids exceed 64-bit integers"
    types = dict(duck.query(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = '{ds}' AND (column_name IN ('id', 'call_id', 'user_id', 'speaker_id', "
        "'scorecard_id', 'question_id', 'primary_user_id', 'workspace_id'))"))
    assert len(types) > 10 and set(types.values()) == {"VARCHAR"}, types
    user_ids = {r[0] for r in duck.query("SELECT id FROM {ds}.users")}
    primary = {r[0] for r in duck.query("SELECT DISTINCT primary_user_id FROM {ds}.calls")}
    assert primary <= user_ids, "calls join users on the text id"
    for table in ("calls__parties", "calls__trackers", "calls__context__objects__fields", "transcripts"):
        orphans = duck.count(table, "WHERE call_id NOT IN (SELECT id FROM {ds}.calls)".replace("{ds}", duck.dataset))
        assert orphans == 0 and duck.count(table, "WHERE call_id IS NULL") == 0


def test_second_run_rereads_only_the_lookback(gong: GongFixture, duck: Warehouse) -> None:
    sync(gong, duck, resources=("calls",), end="2026-10-30T00:00:00+00:00")
    result = sync(gong, duck, resources=("calls",), start=None, end=END, lookback_days=2)
    body = gong.session.bodies(EXTENSIVE)[-1]
    assert body["filter"] == {"fromDateTime": "2026-10-28T00:00:00+00:00", "toDateTime": END}
    assert result.window == ["2026-10-28T00:00:00+00:00", END]
    assert duck.query("SELECT count(*) - count(DISTINCT id) FROM {ds}.calls")[0][0] == 0


@pytest.mark.sim(daily_quota=4)
def test_spent_quota_stops_cleanly_and_keeps_completed_work(gong: GongFixture, duck: Warehouse) -> None:
    # Five requests (three whole lists, one page of calls, its transcript batch), sent by two threads in an
    # order that varies: the quota refuses one of them, and every other one's rows are kept.
    assert gong.sim is not None
    result = sync(gong, duck, resources=("workspaces", "users", "scorecards", "calls", "transcripts"))
    assert result.stop_reason and "wait" in result.stop_reason
    answered = {r["path"] for r in gong.sim.request_log if r["status"] == 200}
    assert len(answered) == 4
    tables = {"/v2/workspaces": "workspaces", "/v2/users": "users", "/v2/settings/scorecards": "scorecards",
              "/v2/calls/extensive": "calls", "/v2/calls/transcript": "transcripts"}
    loaded = {table for table, count in result.row_counts.items() if count and table in tables.values()}
    assert loaded == {tables[path] for path in answered}, "what was read is kept, nothing else"
    for path in answered:
        assert duck.count(tables[path]) > 0
    state = dlt.attach("test_gong", pipelines_dir=str(duck.tmp_path / "dlt")).state
    calls_state = state["sources"]["gong"].get("resources", {}).get("calls", {})
    assert "synced_until" not in calls_state, "an unfinished window must not advance the state"


def test_secrets_never_appear_in_cassettes_or_debug_logs(gong: GongFixture, duck: Warehouse,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    import base64

    caplog.set_level(logging.DEBUG)
    sync(gong, duck, resources=("users", "calls"))
    assert any("/v2/calls/extensive" in r.getMessage() for r in caplog.records), "DEBUG logs each request"
    token = base64.b64encode(f"{ACCESS_KEY}:{ACCESS_KEY_SECRET}".encode()).decode()
    forbidden = [ACCESS_KEY, ACCESS_KEY_SECRET, token]
    assert not any(s in caplog.text for s in forbidden)
    for cassette in CASSETTES.glob("*.yaml"):
        text = cassette.read_text()
        assert not any(s in text for s in forbidden), cassette.name
        assert "authorization" not in text.lower(), cassette.name
    values = duck.query("SELECT string_agg(CAST(state AS VARCHAR), '') FROM {ds}._dlt_pipeline_state")[0][0]
    assert values and not any(s in values for s in forbidden)
    # dlt's pipeline folder: state, schemas, the trace of the last run, load packages.
    files = [f for f in (duck.tmp_path / "dlt").rglob("*") if f.is_file()]
    assert any(f.name.startswith("trace") for f in files) and any("schema" in f.name for f in files)
    for path in files:
        data = path.read_bytes()
        assert not any(s.encode() in data for s in forbidden), path
    # Every text column of every table of the warehouse.
    columns = duck.query("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                         "'{ds}' AND data_type = 'VARCHAR'")
    assert len(columns) > 50
    for table, column in columns:
        hits = duck.query(f'SELECT count(*) FROM {{ds}}."{table}" WHERE ' + " OR ".join(
            f"contains(\"{column}\", '{s}')" for s in forbidden))[0][0]
        assert hits == 0, f"{table}.{column}"
