"""Every catalog resource through recorded Gong: rows, keys, child keys, requests sent, reruns.

Each resource is synced alone (its parents are read but not loaded) from a simulator that pages
every 5 records, twice over the same window: the second run must add no rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from pipelines.export_schema import JOIN_KEYS, parent_column
from pipelines.gong_pipeline import SyncResult, run_sync
from sources.gong.catalog import BY_NAME, CATALOG
from tests.conftest import GongFixture

START = "2026-10-26"
END = "2026-11-01T12:00:00+00:00"
TZ = "America/New_York"

# Child tables that must have rows and carry their root's key, per resource; every child table loaded must
# also join its direct parent on its whole key (`JOIN_KEYS`), checked below.
CHILD_KEYS: dict[str, dict[str, str]] = {
    "users": {"users__spoken_languages": "user_id"},
    "scorecards": {"scorecards__questions": "scorecard_id", "scorecards__questions__answer_options": "scorecard_id"},
    "trackers": {"trackers__language_keywords": "tracker_id", "trackers__language_keywords__keywords": "tracker_id"},
    "answered_scorecards": {"answered_scorecards__answers": "answered_scorecard_id",
                            "answered_scorecards__answers__selected_options": "answered_scorecard_id"},
    "interaction_stats": {"interaction_stats__person_interaction_stats": "user_id"},
    "activity_day_by_day": {"activity_day_by_day__calls": "user_id"},
    "permission_profiles": {"permission_profiles__team_leads": "profile_id"},
    "manual_crm_associations": {"manual_crm_associations__associated_crm_objects": "call_id"},
}


class Duck:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "w.duckdb"
        self.tmp_path = tmp_path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).fetchall()

    def tables(self) -> set[str]:
        return {r[0] for r in self.query("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'gong' AND table_name NOT LIKE '_dlt%'")}

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM gong.{table}")[0][0]


def sync(gong: GongFixture, duck: Duck, names: list[str], start: str = START, end: str = END) -> SyncResult:
    return run_sync(names, start=start, end=end, destination=dlt.destinations.duckdb(credentials=str(duck.path)),
                    dataset="gong", pipeline_name="res", pipelines_dir=str(duck.tmp_path / "dlt"),
                    source_options={"client": gong.client(), "company_timezone": TZ, "lookback_days": 2})


RESOURCES = [e.name for e in CATALOG if e.name not in ("calls", "transcripts")]


@pytest.mark.sim(page_size=5, users=6, days=8, calls_per_day=6)
@pytest.mark.parametrize("name", RESOURCES)
def test_resource_rows_keys_requests_and_rerun(name: str, gong: GongFixture, tmp_path: Path) -> None:
    endpoint = BY_NAME[name]
    duck = Duck(tmp_path)
    if gong.sim is not None and name in ("crm_integrations", "crm_schema_fields"):
        from pipelines.export_schema import seed_simulator_crm

        seed_simulator_crm(gong.client())
        gong.session.sent.clear()  # the seeding is not the resource's reading
    first = sync(gong, duck, [name])
    assert first.stop_reason is None
    rows = duck.count(name)
    assert rows > 0, f"{name} loaded no rows"
    if name == "flows":  # a company flow is listed under every owner; the merge keeps one row per flow
        assert first.row_counts[name] > rows
    else:
        assert first.row_counts[name] == rows

    key = ", ".join(endpoint.primary_key)
    dupes = duck.query(f"SELECT count(*) FROM (SELECT {key} FROM gong.{name} GROUP BY {key} HAVING count(*) > 1)")
    assert dupes[0][0] == 0
    nulls = " OR ".join(f"{k} IS NULL" for k in endpoint.primary_key)
    assert duck.query(f"SELECT count(*) FROM gong.{name} WHERE {nulls}")[0][0] == 0
    for child, child_key in CHILD_KEYS.get(name, {}).items():
        assert duck.count(child) > 0, child
        assert duck.query(f"SELECT count(*) FROM gong.{child} WHERE {child_key} IS NULL")[0][0] == 0
        orphans = duck.query(f"SELECT count(*) FROM gong.{child} WHERE {child_key} NOT IN "
                             f"(SELECT {child_key if child_key != 'user_id' or name != 'users' else 'id'} "
                             f"FROM gong.{name})")[0][0]
        assert orphans == 0, f"{child}.{child_key} must join {name}"
    for child in sorted(t for t in duck.tables() if t.startswith(name + "__")):
        parent = child.rsplit("__", 1)[0]
        key = JOIN_KEYS.get(child)
        assert key, f"{child}: declare the parent key it joins on in pipelines/export_schema.py JOIN_KEYS"
        assert duck.query(f"SELECT count(*) FROM gong.{child} WHERE "
                          + " OR ".join(f"{c} IS NULL" for c in key))[0][0] == 0, f"{child} carries {key}"
        match = " AND ".join(f"p.{parent_column(parent, c)} = c.{c}" for c in key)
        orphans = duck.query(f"SELECT count(*) FROM gong.{child} c WHERE NOT EXISTS "
                             f"(SELECT 1 FROM gong.{parent} p WHERE {match})")[0][0]
        assert orphans == 0, f"{child} joins {parent} on {key}"
    for column in (c for c in duck.query(f"SELECT column_name, data_type FROM information_schema.columns "
                                          f"WHERE table_schema = 'gong' AND table_name = '{name}'")
                   if c[0] == "id" or c[0].endswith("_id")):
        assert column[1] == "VARCHAR", f"{name}.{column[0]} must be text"

    sent = [r for r in gong.session.sent if r["path"].startswith("/v2/")]
    own = [r for r in sent if _matches(endpoint.path, r["path"])]
    assert own, f"no request went to {endpoint.path}"
    assert all(r["method"] == endpoint.method for r in own)
    if endpoint.method == "POST":
        assert all(r["params"] is None for r in own), "POST cursors and filters go in the body"
        cursors = [r["body"].get("cursor") for r in own if r["body"].get("cursor")]
    else:
        cursors = [r["params"].get("cursor") for r in own if r["params"] and r["params"].get("cursor")]
    assert len(cursors) == len(set(cursors))
    _check_window(endpoint.name, own)

    before = {t: duck.count(t) for t in duck.tables()}
    second = sync(gong, duck, [name])
    assert second.stop_reason is None
    assert {t: duck.count(t) for t in duck.tables()} == before, "a second run over the same data adds no rows"


def _matches(template: str, path: str) -> bool:
    if "{" not in template:
        return template == path
    head, tail = template.split("{", 1)[0], template.split("}", 1)[1]
    return path.startswith(head) and path.endswith(tail)


def _check_window(name: str, requests: list[dict[str, Any]]) -> None:
    def filters(r: dict[str, Any]) -> dict[str, Any]:
        return r["body"]["filter"] if r["method"] == "POST" else (r["params"] or {})

    if name in ("interaction_stats", "activity_aggregate"):
        days = sorted({(filters(r)["fromDate"], filters(r)["toDate"]) for r in requests})
        assert days[0] == ("2026-10-26", "2026-10-27") and days[-1] == ("2026-10-31", "2026-11-01")
        assert len(days) == 6, "one request per company day, the current day left out"
    elif name == "activity_day_by_day":
        assert {(filters(r)["fromDate"], filters(r)["toDate"]) for r in requests} == {("2026-10-26", "2026-11-01")}
    elif name == "activity_by_period":
        assert {r["body"]["aggregationPeriod"] for r in requests} == {"WEEK"}
        assert {filters(r)["fromDate"] for r in requests} == {"2026-10-26"}  # a Monday
    elif name == "answered_scorecards":
        assert {(filters(r)["reviewFromDate"], filters(r)["reviewToDate"]) for r in requests} == {
            ("2026-10-26", "2026-11-01")}
    elif name == "audit_logs":
        assert {filters(r)["logType"] for r in requests} == {
            "AccessLog", "UserActivityLog", "UserCallPlay", "ExternallySharedCallAccess", "ExternallySharedCallPlay"}
        assert {(filters(r)["fromDateTime"], filters(r)["toDateTime"]) for r in requests} == {
            ("2026-10-26T00:00:00+00:00", END)}
    elif name == "manual_crm_associations":
        assert {filters(r)["fromDateTime"] for r in requests} == {"2026-10-26T00:00:00+00:00"}
    elif name in ("trackers", "library_folders", "permission_profiles"):
        assert all(filters(r).get("workspaceId") for r in requests)
    elif name == "coaching":
        assert {(filters(r)["from"][:10], filters(r)["to"][:10]) for r in requests} == {
            ("2026-10-01", "2026-11-01"), ("2026-11-01", "2026-11-01")}
        assert all(filters(r)["manager-id"] and filters(r)["workspace-id"] for r in requests)
    elif name == "call_user_access":
        assert all(0 < len(r["body"]["filter"]["callIds"]) <= 100 for r in requests)


@pytest.mark.sim(page_size=5, users=6, days=8, calls_per_day=6)
def test_windows_with_no_data_are_empty_not_errors(gong: GongFixture, tmp_path: Path) -> None:
    duck = Duck(tmp_path)
    names = ["calls", "answered_scorecards", "activity_day_by_day", "audit_logs"]
    result = sync(gong, duck, names, start="2025-01-06", end="2025-01-09")
    assert result.stop_reason is None
    assert sum(result.row_counts.get(n, 0) for n in names) == 0
    assert result.request_counts["/v2/logs"] == 5 and result.request_counts["/v2/calls/extensive"] == 1


def test_transcripts_merge_on_the_call_alone() -> None:
    from sources.gong import _hints

    hints = _hints(BY_NAME["transcripts"])
    # dlt deletes by primary key OR merge key: the merge key alone (every sentence of the call) is enough.
    assert hints["merge_key"] == ["call_id"] and "primary_key" not in hints
    assert hints["columns"]["sentence_index"] == {"name": "sentence_index", "primary_key": False, "nullable": False}
    assert _hints(BY_NAME["calls"])["primary_key"] == ["id"]
