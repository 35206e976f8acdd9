"""The table contract on loaded rows (README "The contract, in short"; CHANGELOG.md "Table contract changes
(issue 21)"): every resource synced from the simulator into DuckDB (the calls' nested tables built as Arrow
tables, `sources/gong/nested.py`) and into Postgres (dlt's normalizer), then checked in the warehouse: every
child row carries its parent row's business key, offsets and durations carry their unit, days are dates in
child tables as in their parents, ids are text, the same thing has the same name, no empty string from Gong
is stored, and Gong's JSON documents are JSON columns that the warehouse's JSON functions read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.export_schema import JOIN_KEYS, parent_column, seed_simulator_crm
from pipelines.gong_pipeline import run_sync
from simulator import GongSimulator
from sources.gong.catalog import resource_names
from sources.gong.client import ClientSettings, GongClient
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, SIM_NOW, RecordingSession, Warehouse, sim_config

TEXT = {"VARCHAR", "character varying", "text"}
NUMBERS = {"BIGINT", "INTEGER", "DOUBLE", "bigint", "integer", "double precision"}
# A numeric column named like an offset or a duration must say its unit: `_s` seconds, `_ms` milliseconds.
TIMELIKE = re.compile(r"(^|_)(duration|time|start|end|offset|interval|sec|seconds)(_|$)")
# trackers.said_at_interval is in minutes or in percent of the call, as its said_at_unit column says.
UNIT_IN_ANOTHER_COLUMN = {("trackers", "said_at_interval")}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Every resource (opt-in ones too) synced once from a live simulator into a fresh warehouse."""
    tmp_path: Path = tmp_path_factory.mktemp(request.param)
    wh = Warehouse(request.param, tmp_path)
    config = sim_config(users=8, calls_per_day=6, days=10, sentences_per_call=6)
    sim = GongSimulator(config)
    url = sim.start()
    client = GongClient(url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=None),
                        session=RecordingSession())
    try:
        seed_simulator_crm(client)
        result = run_sync(resource_names(), start=(SIM_NOW - timedelta(days=10)).isoformat(),
                          end=SIM_NOW.isoformat(), destination=wh.destination, dataset=wh.dataset,
                          pipeline_name=f"contract_{request.param}", pipelines_dir=str(tmp_path / "dlt"),
                          source_options={"client": client, "company_timezone": "America/New_York"}, window_days=30)
        assert result.stop_reason is None
        yield wh
    finally:
        client.close()
        sim.stop()
        wh.drop()


def columns(wh: Warehouse) -> dict[str, dict[str, str]]:
    """{table: {column: warehouse type}} of the data tables, dlt's own columns left out."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in wh.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = '{ds}' "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\'"):
        out.setdefault(table, {})[column] = kind
    return out


def test_every_child_row_carries_its_parent_rows_business_key(loaded: Warehouse) -> None:
    tables = columns(loaded)
    children = sorted(t for t in tables if "__" in t)
    assert len(children) >= 38, children
    for child in children:
        parent = child.rsplit("__", 1)[0]
        key = JOIN_KEYS.get(child)
        assert key, f"{child}: declare the parent key it joins on in pipelines/export_schema.py JOIN_KEYS"
        rows = loaded.count(child)
        assert rows > 0, child
        assert loaded.count(child, "WHERE " + " OR ".join(f"{c} IS NULL" for c in key)) == 0, f"{child} carries {key}"
        # The row dlt made it a child of has the very same key ...
        same = " AND ".join(f"p.{parent_column(parent, c)} = c.{c}" for c in key)
        by_dlt = loaded.query(f"SELECT count(*), sum(CASE WHEN {same} THEN 1 ELSE 0 END) FROM {{ds}}.{child} c "
                              f"JOIN {{ds}}.{parent} p ON p._dlt_id = c._dlt_parent_id")[0]
        assert tuple(by_dlt) == (rows, rows), f"{child} holds its parent row's {key}"
        # ... and the key names that row alone: joining on it finds exactly one parent per child row.
        by_key = loaded.query(f"SELECT count(*) FROM {{ds}}.{child} c JOIN {{ds}}.{parent} p ON {same}")[0][0]
        assert by_key == rows, f"{child} joins {parent} on {key}"


def test_calls_children_join_where_the_readme_says(loaded: Warehouse) -> None:
    # Tracker occurrences name their tracker, as the call's tracker and the workspace's tracker do.
    occurrences = loaded.query(
        "SELECT count(*), count(o.tracker_id), sum(CASE WHEN o.tracker_id = t.tracker_id THEN 1 ELSE 0 END) "
        "FROM {ds}.calls__trackers__occurrences o JOIN {ds}.calls__trackers t ON t._dlt_id = o._dlt_parent_id")[0]
    assert occurrences[0] > 100 and tuple(occurrences) == (occurrences[0],) * 3
    named = loaded.query("SELECT count(*), sum(CASE WHEN t.tracker_name = k.tracker_name THEN 1 ELSE 0 END) "
                         "FROM {ds}.calls__trackers t JOIN {ds}.trackers k ON k.tracker_id = t.tracker_id")[0]
    assert named[0] == loaded.count("calls__trackers") > 0 and named[1] == named[0], "the same name for a tracker"
    # A CRM field names its object; a party's also its party.
    for fields, objects in (("calls__context__objects__fields", "calls__context__objects"),
                            ("calls__parties__context__objects__fields", "calls__parties__context__objects")):
        match = loaded.query(
            f"SELECT count(*), sum(CASE WHEN f.object_id = o.object_id AND f.object_type = o.object_type "
            f"THEN 1 ELSE 0 END) FROM {{ds}}.{fields} f JOIN {{ds}}.{objects} o ON o._dlt_id = f._dlt_parent_id")[0]
        assert match[0] == loaded.count(fields) > 100 and match[1] == match[0], fields
    party_fields = loaded.query(
        "SELECT count(*) FROM {ds}.calls__parties__context__objects__fields f "
        "JOIN {ds}.calls__parties p ON p.call_id = f.call_id AND p.party_id = f.party_id")[0][0]
    assert party_fields == loaded.count("calls__parties__context__objects__fields")
    # Speakers, tracker occurrences and transcript sentences name a party by its speaker_id.
    for table in ("calls__speakers", "calls__trackers__occurrences", "transcripts"):
        spoken = loaded.count(table, "WHERE speaker_id IS NOT NULL")
        joined = loaded.query(f"SELECT count(*) FROM {{ds}}.{table} s JOIN {{ds}}.calls__parties p "
                              f"ON p.call_id = s.call_id AND p.speaker_id = s.speaker_id")[0][0]
        assert joined == spoken > 0, table
    assert loaded.count("calls__speakers s", "JOIN {ds}.calls__parties p ON p.call_id = s.call_id AND "
                        "p.speaker_id = s.speaker_id WHERE p.user_id = s.user_id") == loaded.count("calls__speakers")


def test_offsets_and_durations_carry_their_unit(loaded: Warehouse) -> None:
    unnamed = [f"{t}.{c}" for t, cols in columns(loaded).items() for c, kind in cols.items()
               if kind in NUMBERS and TIMELIKE.search(c) and not re.search(r"_(s|ms)$", c)
               and (t, c) not in UNIT_IN_ANOTHER_COLUMN]
    assert unnamed == []
    # The names say what the values are: every offset in seconds falls within its call's duration_s.
    for table, column in (("calls__trackers__occurrences", "start_time_s"), ("calls__outline", "start_time_s"),
                          ("calls__outline__items", "start_time_s"), ("calls__action_items", "snippet_end_time_s"),
                          ("calls__highlights__items__start_times", "start_time_s"),
                          ("calls__public_comments", "audio_end_time_s")):
        beyond = loaded.query(f"SELECT count(*), sum(CASE WHEN t.{column} <= c.duration_s THEN 1 ELSE 0 END) "
                              f"FROM {{ds}}.{table} t JOIN {{ds}}.calls c ON c.id = t.call_id")[0]
        assert beyond[0] > 0 and beyond[1] == beyond[0], f"{table}.{column}"
    talk = loaded.query("SELECT count(*), sum(CASE WHEN s.talk <= c.duration_s THEN 1 ELSE 0 END) FROM "
                        "(SELECT call_id, sum(talk_time_s) AS talk FROM {ds}.calls__speakers GROUP BY call_id) s "
                        "JOIN {ds}.calls c ON c.id = s.call_id")[0]
    assert talk[0] > 0 and talk[1] == talk[0], "talk_time_s is seconds of the call"
    for table in ("calls__structure", "calls__topics"):
        spans = loaded.query(f"SELECT count(*), sum(CASE WHEN s.total = c.duration_s THEN 1 ELSE 0 END) FROM "
                             f"(SELECT call_id, sum(duration_s) AS total FROM {{ds}}.{table} GROUP BY call_id) s "
                             f"JOIN {{ds}}.calls c ON c.id = s.call_id")[0]
        assert spans[0] > 0 and spans[1] == spans[0], f"{table}.duration_s: the parts add up to the call"


def test_no_empty_string_is_stored(loaded: Warehouse) -> None:
    text_columns = [(t, c) for t, cols in columns(loaded).items() for c, kind in cols.items() if kind in TEXT]
    assert len(text_columns) > 150
    empty = [f"{t}.{c}" for t, c in text_columns if loaded.count(t, f"WHERE {c} = ''")]
    assert empty == []
    # What the simulator sends empty (as Gong does) is NULL instead.
    assert loaded.count("calls", "WHERE custom_data IS NOT NULL") == 0 < loaded.count("calls")
    assert 0 < loaded.count("calls", "WHERE sdr_disposition IS NULL") < loaded.count("calls")
    assert 0 < loaded.count("trackers", "WHERE filter_query IS NULL") < loaded.count("trackers")


def test_days_are_dates_and_ids_text_in_every_table(loaded: Warehouse) -> None:
    tables = columns(loaded)
    days = {f"{t}.{c}": kind for t, cols in tables.items() for c, kind in cols.items() if c == "day"}
    assert {"activity_day_by_day__calls.day", "interaction_stats__person_interaction_stats.day"} < set(days)
    assert set(days.values()) <= {"DATE", "date"}, days
    ids = {f"{t}.{c}": kind for t, cols in tables.items() for c, kind in cols.items() if c == "id" or c.endswith("_id")}
    assert len(ids) > 80 and {k: v for k, v in ids.items() if v not in TEXT} == {}
    # A child's day is its parent's: the rows join on it (checked for every key above), and it is the
    # company's calendar day Gong sent, not the UTC date of its start.
    assert loaded.count("activity_day_by_day__calls c", "JOIN {ds}.activity_day_by_day p ON p.user_id = c.user_id "
                        "AND p.day = c.day") == loaded.count("activity_day_by_day__calls") > 0


def test_same_thing_same_name(loaded: Warehouse) -> None:
    tables = columns(loaded)
    assert [t for t, cols in tables.items() if "__" in t and "id" in cols] == [], "`id` only as a root's own key"
    assert {"speaker_id", "talk_time_s"} <= set(tables["calls__speakers"]) and "talk_time" not in tables[
        "calls__speakers"]
    assert {"tracker_id", "tracker_name"} <= set(tables["calls__trackers"])
    assert {"party_id", "speaker_id"} <= set(tables["calls__parties"])
    # An answer's selected option is an option of its question, by the same option_id.
    selected = loaded.count("answered_scorecards__answers__selected_options")
    joined = loaded.query(
        "SELECT count(*) FROM {ds}.answered_scorecards__answers__selected_options s "
        "JOIN {ds}.answered_scorecards a ON a.answered_scorecard_id = s.answered_scorecard_id "
        "JOIN {ds}.scorecards__questions__answer_options o ON o.scorecard_id = a.scorecard_id "
        "AND o.question_id = s.question_id AND o.option_id = s.option_id")[0][0]
    assert joined == selected > 0


def test_json_documents_are_json(loaded: Warehouse) -> None:
    tables = columns(loaded)
    kinds = {tables["audit_logs"]["log_record"], tables["coaching"]["metrics"],
             tables["crm_schema_fields"]["ordered_value_list"]}
    assert kinds == ({"JSON"} if loaded.kind == "duckdb" else {"jsonb"})
    duck = loaded.kind == "duckdb"
    action = "json_extract_string(log_record, '$.action')" if duck else "log_record->>'action'"
    logins = loaded.count("audit_logs", f"WHERE log_type = 'AccessLog' AND {action} = 'Login'")
    assert logins == loaded.count("audit_logs", "WHERE log_type = 'AccessLog'") > 0
    length = "json_array_length(ordered_value_list)" if duck else "jsonb_array_length(ordered_value_list)"
    assert loaded.query(f"SELECT {length} FROM {{ds}}.crm_schema_fields WHERE unique_name = 'Industry__c'") == [(2,)]
    listened = "json_extract(metrics, '$.callsListenedTo')" if duck else "metrics->'callsListenedTo'"
    assert loaded.count("coaching", f"WHERE {listened} IS NOT NULL") > 0


def test_whole_weeks_are_mondays_inside_the_range() -> None:
    from pipelines.demo import whole_weeks

    utc = SIM_NOW.tzinfo
    assert whole_weeks(datetime(2026, 11, 2, tzinfo=utc), datetime(2026, 11, 25, 9, tzinfo=utc)) == (
        date(2026, 11, 2), date(2026, 11, 23))
    assert whole_weeks(datetime(2026, 11, 2, 8, tzinfo=utc), datetime(2026, 11, 23, tzinfo=utc)) == (
        date(2026, 11, 9), date(2026, 11, 23))
    assert whole_weeks(datetime(2026, 11, 4, 8, tzinfo=utc), datetime(2026, 11, 23, tzinfo=utc)) == (
        date(2026, 11, 9), date(2026, 11, 23))


def test_a_day_is_the_company_day_gong_sent_also_east_of_utc() -> None:
    from sources.gong.rows import by_period_rows, day_by_day_rows, stats_day_row

    record = {"userId": 7, "userDailyActivityStats": [{
        "fromDate": "2026-10-26T00:00:00+05:30", "toDate": "2026-10-27T00:00:00+05:30", "callsAsHost": [11, 12]}]}
    (row,) = day_by_day_rows(record, {})
    # dlt would make the instant's UTC date of "2026-10-26T00:00:00+05:30": October 25.
    assert (row["day"], row["toDate"]) == (date(2026, 10, 26), date(2026, 10, 27))
    assert [(c["userId"], c["day"], c["callId"]) for c in row["calls"]] == [
        ("7", date(2026, 10, 26), "11"), ("7", date(2026, 10, 26), "12")], "the child carries the parent's day"
    (period,) = by_period_rows({"userId": "7", "userAggregateActivity": [
        {"fromDate": "2026-10-26T00:00:00+09:00", "toDate": "2026-11-02T00:00:00+09:00", "callsAsHost": 3}]},
        {"period": "WEEK"})
    assert (period["periodStart"], period["periodEnd"]) == (date(2026, 10, 26), date(2026, 11, 2))
    stats = stats_day_row({"userId": "7", "userEmailAddress": "", "personInteractionStats": [
        {"name": "Patience", "value": 1.5}]}, {"day": "2026-10-26"})
    assert stats["day"] == date(2026, 10, 26) and stats["personInteractionStats"][0]["day"] == date(2026, 10, 26)
    assert stats["userEmailAddress"] is None, "an empty string is NULL"


def test_an_audit_entry_keeps_its_key_and_its_record_as_json() -> None:
    import hashlib
    import json

    from sources.gong.rows import audit_log_row

    entry = {"userId": 5, "userEmailAddress": "", "eventTime": "2026-10-26T10:00:00Z",
             "logRecord": {"action": "ViewedCall", "callId": 123, "note": "", "gone": None}}
    row = audit_log_row(entry, {"logType": "UserActivityLog"})
    # The key hashes the entry as before this change (ids as text, nulls left out, empty strings kept), so a
    # re-read entry merges onto the row an earlier version stored instead of adding a second one.
    before = {"logType": "UserActivityLog", "userId": "5", "userEmailAddress": "", "eventTime": "2026-10-26T10:00:00Z",
              "logRecord": {"action": "ViewedCall", "callId": "123", "note": ""}}
    canonical = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert row["logId"] == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert row["logRecord"] == {"action": "ViewedCall", "callId": "123", "note": ""}, "the document as Gong sent it"
    assert "userEmailAddress" not in row and row["userId"] == "5"


def test_media_urls_do_not_replace_the_media_type() -> None:
    from sources.gong.rows import call_row

    call = {"metaData": {"id": 1, "media": "Video", "duration": 60},
            "media": {"audioUrl": "https://a.example/x.mp3", "videoUrl": "https://v.example/x.mp4"}}
    row = call_row(call, include_media=True)
    assert (row["media"], row["audioUrl"], row["videoUrl"], row["durationS"]) == (
        "Video", "https://a.example/x.mp3", "https://v.example/x.mp4", 60)
    assert "audioUrl" not in call_row(call), "left out unless asked for"


def test_a_library_snippet_and_a_flow_folder_are_named_as_what_they_are() -> None:
    from sources.gong.rows import flow_row, folder_call_row, library_folder_row

    row = folder_call_row({"id": 9, "addedBy": 4, "note": "", "snippet": {"fromSec": 21, "toSec": 132}},
                          {"folderId": "3"})
    assert row == {"folderId": "3", "callId": "9", "addedByUserId": "4", "snippetStartTimeS": 21,
                   "snippetEndTimeS": 132}
    assert library_folder_row({"id": 3, "createdBy": 4}, {"workspaceId": "2"}) == {
        "workspaceId": "2", "id": "3", "createdByUserId": "4"}
    assert flow_row({"id": 1, "folderId": 8, "folderName": "My Flows"}, {}) == {
        "id": "1", "flowFolderId": "8", "flowFolderName": "My Flows"}
