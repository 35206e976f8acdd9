"""Incremental correctness: backfill windows, resuming, the lookback's cost, far-future state,
reconcile, the daily budget across runs, concurrent runs, and runs interrupted before loading."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import dlt
import pytest

from pipelines.cli import main
from pipelines.gong_pipeline import SyncResult, run_sync
from pipelines.run_lock import RunLock
from sources.gong import gong_source
from sources.gong.budget import BudgetLedger
from tests.conftest import GongFixture, Warehouse

EXTENSIVE = "/v2/calls/extensive"
TRANSCRIPT = "/v2/calls/transcript"
START = "2026-10-24T00:00:00+00:00"
END = "2026-11-01T00:00:00+00:00"


def sync(gong: GongFixture, wh: Warehouse, resources: tuple[str, ...] = ("calls", "transcripts"),
         start: str | None = START, end: str | None = END, window_days: float = 2, client: Any = None,
         window_requests: int = 0, options: dict[str, Any] | None = None, **kwargs: Any) -> SyncResult:
    options = {"client": client or gong.client(), "lookback_days": 1, "company_timezone": "America/New_York",
               "start_date": START, **(options or {})}
    return run_sync(list(resources), start=start, end=end, destination=wh.destination, dataset=wh.dataset,
                    pipeline_name="inc", pipelines_dir=str(wh.tmp_path / "dlt"), source_options=options,
                    window_days=window_days, window_requests=window_requests, **kwargs)


def content(wh: Warehouse, table: str, columns: str) -> Counter:
    return Counter(wh.query(f"SELECT {columns} FROM {{ds}}.{table}"))


def snapshot(wh: Warehouse) -> dict[str, Counter]:
    return {
        "calls": content(wh, "calls", "id, title, started"),
        "parties": content(wh, "calls__parties", "call_id, party_id"),
        "transcripts": content(wh, "transcripts", "call_id, sentence_index, text"),
    }


def calls_state(wh: Warehouse) -> dict[str, Any]:
    state = dlt.attach("inc", pipelines_dir=str(wh.tmp_path / "dlt")).state
    return state["sources"]["gong"]["resources"]["calls"]


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_a_backfill_loads_window_by_window(gong: GongFixture, duck: Warehouse) -> None:
    result = sync(gong, duck)
    assert result.windows == 4 and result.stop_reason is None
    loads = duck.query("SELECT load_id FROM {ds}._dlt_loads WHERE status = 0")
    assert len(loads) == 4, "each window is its own load"
    windows = [b["filter"] for b in gong.session.bodies(EXTENSIVE) if "cursor" not in b]
    assert [(w["fromDateTime"], w["toDateTime"]) for w in windows] == [
        ("2026-10-24T00:00:00+00:00", "2026-10-26T00:00:00+00:00"),
        ("2026-10-26T00:00:00+00:00", "2026-10-28T00:00:00+00:00"),
        ("2026-10-28T00:00:00+00:00", "2026-10-30T00:00:00+00:00"),
        ("2026-10-30T00:00:00+00:00", END),
    ]
    assert calls_state(duck)["synced_until"] == END
    started = duck.query("SELECT min(started), max(started) FROM {ds}.calls")[0]
    assert started[0].isoformat() >= "2026-10-24" and started[1].isoformat() < "2026-11-01"


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
@pytest.mark.parametrize("share", [0.2, 0.45, 0.7, 0.9])
def test_resuming_after_any_window_leaves_no_gap_and_no_duplicate(share: float, gong: GongFixture,
                                                                  tmp_path: Path) -> None:
    baseline = Warehouse("duckdb", tmp_path / "baseline")
    (tmp_path / "baseline").mkdir()
    budget = int(sync(gong, baseline).requests_used * share)  # stops in the first, second, third, last window
    expected = snapshot(baseline)

    wh = Warehouse("duckdb", tmp_path)
    day = ["2026-11-01"]
    ledger = BudgetLedger(tmp_path / "ledger.json", today=lambda: day[0])
    first = sync(gong, wh, client=_client(gong, ledger, budget))
    assert first.stop_reason and "budget" in first.stop_reason
    stopped_at = calls_state(wh).get("synced_until")
    assert stopped_at is None or START < stopped_at < END, "the state is the end of the last whole window"

    day[0] = "2026-11-02"  # the next UTC day: the budget is fresh; the run resumes from the state
    sent_before = len(gong.session.bodies(EXTENSIVE))
    second = sync(gong, wh, start=None, client=_client(gong, ledger, 1000))
    assert second.stop_reason is None
    assert snapshot(wh) == expected
    assert calls_state(wh)["synced_until"] == END
    if stopped_at:
        resumed = gong.session.bodies(EXTENSIVE)[sent_before]["filter"]["fromDateTime"]
        assert resumed == "2026-10-25T00:00:00+00:00" if stopped_at == "2026-10-26T00:00:00+00:00" else True
        assert resumed < stopped_at, "the resumed run re-reads the lookback before the stored state"


def _client(gong: GongFixture, ledger: BudgetLedger, budget: int) -> Any:
    client = gong.client(daily_budget=budget)
    client.ledger = ledger
    return client


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_the_daily_budget_is_remembered_across_runs_of_a_day(gong: GongFixture, duck: Warehouse) -> None:
    day = ["2026-11-01"]
    ledger = BudgetLedger(duck.tmp_path / "ledger.json", today=lambda: day[0])
    first = sync(gong, duck, client=_client(gong, ledger, 6))
    assert first.stop_reason and first.requests_used == 6 and ledger.used_today() == 6
    rows = duck.count("calls")
    assert rows > 0, "what was loaded before the budget ran out is kept"
    second = sync(gong, duck, start=None, client=_client(gong, ledger, 6))
    assert second.requests_used == 0 and second.stop_reason and "budget of 6" in second.stop_reason
    assert duck.count("calls") == rows
    day[0] = "2026-11-02"
    third = sync(gong, duck, start=None, client=_client(gong, ledger, 1000))
    assert third.stop_reason is None and third.requests_used > 0 and ledger.used_today() == third.requests_used


@pytest.mark.sim(days=10, calls_per_day=12, sentences_per_call=6)
def test_a_run_with_no_changes_costs_only_the_lookback(gong: GongFixture, warehouse: Warehouse) -> None:
    sync(gong, warehouse, window_days=30)
    before = snapshot(warehouse)
    result = sync(gong, warehouse, start=None, window_days=30)
    assert snapshot(warehouse) == before, "no new rows"
    in_lookback = warehouse.query("SELECT count(*) FROM {ds}.calls WHERE started >= '2026-10-31T00:00:00+00:00'")[0][0]
    private_too = gong.session.bodies(EXTENSIVE)[-1]["filter"]
    assert private_too == {"fromDateTime": "2026-10-31T00:00:00+00:00", "toDateTime": END}
    pages = max(1, math.ceil(in_lookback / 100))
    assert result.request_counts == {EXTENSIVE: pages, TRANSCRIPT: pages}


def test_state_far_in_the_future_yields_no_rows_and_no_error(gong: GongFixture, duck: Warehouse) -> None:
    sync(gong, duck, resources=("calls", "transcripts", "interaction_stats"), window_days=30)
    pipeline = dlt.attach("inc", pipelines_dir=str(duck.tmp_path / "dlt"))
    with pipeline.managed_state() as state:
        resources = state["sources"]["gong"]["resources"]
        resources["calls"]["synced_until"] = "2031-01-01T00:00:00+00:00"
        resources["interaction_stats"]["windows"]["all"] = "2031-01-01"
    before = snapshot(duck)
    result = sync(gong, duck, resources=("calls", "transcripts", "interaction_stats"), start=None, end=None)
    assert result.stop_reason is None and result.requests_used == 0
    assert sum(result.row_counts.values()) == 0 and snapshot(duck) == before


@pytest.mark.sim(days=10, calls_per_day=12, sentences_per_call=6)
def test_reconcile_removes_calls_gong_no_longer_returns(gong: GongFixture, warehouse: Warehouse) -> None:
    sync(gong, warehouse, window_days=30)
    before = snapshot(warehouse)
    ids = sorted(r[0] for r in warehouse.query("SELECT id FROM {ds}.calls"))
    if gong.sim is not None:
        gong.sim.delete_call(ids[3])
        gong.sim.delete_call(ids[7])
    result = sync(gong, warehouse, start=None, reconcile=True, reconcile_days=10, window_days=30)
    assert result.deleted_calls == 2
    after = snapshot(warehouse)
    gone = {c[0] for c in before["calls"]} - {c[0] for c in after["calls"]}
    assert gone == {ids[3], ids[7]}
    known = {c[0] for c in before["calls"]}
    for table, rows in after.items():
        assert not any(row[0] in gone for row in rows), f"{table} kept rows of a deleted call"
        kept = Counter({row: n for row, n in before[table].items() if row[0] not in gone})
        assert Counter({row: n for row, n in rows.items() if row[0] in known}) == kept, (
            f"{table} lost or gained rows of calls that still exist")
    added = [c for c in after["calls"] if c[0] not in known]
    assert added and all(c[2].isoformat() < START for c in added), "the longer window also loads older calls"
    assert warehouse.count("calls__trackers", f"WHERE call_id IN ('{ids[3]}', '{ids[7]}')") == 0
    columns = {r[0] for r in warehouse.query("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_schema = '{ds}' AND table_name = 'calls'")}
    assert not any(c.startswith("_gong") for c in columns) or warehouse.count(
        "calls", "WHERE _gong_deleted IS NOT NULL") == 0


def test_a_second_concurrent_run_refuses_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://gong.sim.test")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", "k")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "s")
    dlt_dir = tmp_path / "dlt"
    with RunLock(dlt_dir / "gong.gong-sync.lock", "gong"):
        code = main(["--pipelines-dir", str(dlt_dir), "--resources", "users"])
    err = capsys.readouterr().err
    assert code == 1 and re.search(r"Another gong-sync run of pipeline 'gong' is in progress \(pid \d+\)", err)
    assert len(err.strip().splitlines()) == 1


def test_what_an_interrupted_run_extracted_is_loaded_first_or_dropped(gong: GongFixture, tmp_path: Path) -> None:
    for drop in (False, True):
        wh = Warehouse("duckdb", tmp_path / str(drop))
        (tmp_path / str(drop)).mkdir()
        sync(gong, wh, resources=("workspaces",))
        pipeline = dlt.pipeline("inc", destination=wh.destination, dataset_name=wh.dataset,
                                pipelines_dir=str(wh.tmp_path / "dlt"))
        pipeline.extract(gong_source(client=gong.client(), start_date=START, end_date=END).with_resources("calls"))
        assert pipeline.has_pending_data, "a run that stopped after extract leaves a package"
        result = sync(gong, wh, resources=("workspaces",), drop_pending=drop)
        assert result.pending_loaded == (0 if drop else 1)
        assert not dlt.attach("inc", pipelines_dir=str(wh.tmp_path / "dlt")).has_pending_data
        calls = wh.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{ds}' "
                         "AND table_name = 'calls'")[0][0]
        assert calls == (0 if drop else 1)
        state = dlt.attach("inc", pipelines_dir=str(wh.tmp_path / "dlt")).state.get("sources", {}).get("gong", {})
        if drop:
            assert "calls" not in state.get("resources", {}), "a dropped package's state never commits"
        else:
            assert wh.count("calls") > 20 and state["resources"]["calls"]["synced_until"] == END


def test_a_resource_synced_for_the_first_time_later_gets_its_tables(gong: GongFixture, warehouse: Warehouse) -> None:
    sync(gong, warehouse, resources=("workspaces",), window_days=30)
    result = sync(gong, warehouse, resources=("calls",), window_days=30)
    assert warehouse.count("calls") == result.row_counts["calls"] > 0
    assert warehouse.count("calls__parties") == result.row_counts["calls__parties"] > 0


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_windows_are_also_bounded_by_requests(gong: GongFixture, tmp_path: Path) -> None:
    whole = Warehouse("duckdb", tmp_path / "whole")
    (tmp_path / "whole").mkdir()
    sync(gong, whole, window_days=30)
    gong.session.sent.clear()
    wh = Warehouse("duckdb", tmp_path)
    result = sync(gong, wh, window_days=4, window_requests=3)
    firsts = [b["filter"] for b in gong.session.bodies(EXTENSIVE) if "cursor" not in b]
    assert firsts[0] == {"fromDateTime": START, "toDateTime": END}, "one request counts the whole range"
    # 93 calls in pages of 20 with their transcripts: 10 requests, so 4 equal windows of about 3 requests
    # (2 days each), planned before the first is read.
    assert firsts[1:] == [
        {"fromDateTime": START, "toDateTime": "2026-10-26T00:00:00+00:00"},
        {"fromDateTime": "2026-10-26T00:00:00+00:00", "toDateTime": "2026-10-28T00:00:00+00:00"},
        {"fromDateTime": "2026-10-28T00:00:00+00:00", "toDateTime": "2026-10-30T00:00:00+00:00"},
        {"fromDateTime": "2026-10-30T00:00:00+00:00", "toDateTime": END},
    ]
    assert result.windows == 4
    loads = wh.query("SELECT count(*) FROM {ds}._dlt_loads WHERE status = 0")[0][0]
    assert loads == result.windows
    assert snapshot(wh) == snapshot(whole)


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_a_range_that_fits_one_window_sends_its_counting_request_once(gong: GongFixture, tmp_path: Path) -> None:
    whole = Warehouse("duckdb", tmp_path / "whole")
    (tmp_path / "whole").mkdir()
    sync(gong, whole, window_days=30)
    plain = list(gong.session.bodies(EXTENSIVE))
    gong.session.sent.clear()
    wh = Warehouse("duckdb", tmp_path)
    result = sync(gong, wh, window_days=2, window_requests=100)
    assert result.windows == 1, "10 requests fit the bound of 100: one window, not four of 2 days"
    # The request that counted the calls was the window's first page: it is not sent again.
    assert gong.session.bodies(EXTENSIVE) == plain
    assert result.request_counts[EXTENSIVE] == len(plain) == 5
    assert snapshot(wh) == snapshot(whole)


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_with_other_windowed_resources_their_requests_per_day_size_the_windows_too(gong: GongFixture,
                                                                                tmp_path: Path) -> None:
    whole = Warehouse("duckdb", tmp_path / "whole")
    (tmp_path / "whole").mkdir()
    resources = ("calls", "transcripts", "interaction_stats")
    sync(gong, whole, resources=resources, window_days=30)
    gong.session.sent.clear()
    wh = Warehouse("duckdb", tmp_path)
    result = sync(gong, wh, resources=resources, window_days=2, window_requests=12)
    firsts = [b["filter"] for b in gong.session.bodies(EXTENSIVE) if "cursor" not in b]
    # One request counts the calls: 5 pages of 20 with their transcripts (10 requests), and interaction_stats
    # costs one request per day (8): 18 requests, so 2 windows of about 12 (longer than --window-days 2).
    assert firsts == [{"fromDateTime": START, "toDateTime": END},
                      {"fromDateTime": START, "toDateTime": "2026-10-28T00:00:00+00:00"},
                      {"fromDateTime": "2026-10-28T00:00:00+00:00", "toDateTime": END}]
    assert result.windows == 2
    assert gong.session.count("/v2/stats/interaction") == 8, "each company day once"
    assert snapshot(wh) == snapshot(whole)
    stats = "SELECT user_id, day FROM {ds}.interaction_stats ORDER BY 1, 2"
    assert wh.query(stats) == whole.query(stats)


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_a_stop_at_a_windows_last_transcript_request_leaves_the_window_to_be_read_again(gong: GongFixture,
                                                                                        tmp_path: Path) -> None:
    """dlt extracts the calls and their transcripts round robin: the calls resource has ended when the last
    transcript request goes out. A stop there (the quota) must not mark the window as synced."""
    plain = Warehouse.duckdb_in(tmp_path, "plain")
    full = sync(gong, plain, window_days=10)
    total = full.requests_used
    assert full.request_counts[TRANSCRIPT] > 3 and calls_state(plain)["synced_until"] == END
    gong.session.sent.clear()

    wh = Warehouse.duckdb_in(tmp_path, "stopped")
    stopped = sync(gong, wh, window_days=10, client=gong.client(daily_budget=total - 1))
    assert stopped.stop_reason and "budget" in stopped.stop_reason
    assert len(gong.session.sent) == total - 1, "all requests but one"
    # The one not sent is the last the threads asked for: the last page's transcripts or, when the page reader
    # fell behind the transcript readers, the last page itself; either way the window is not complete.
    assert wh.count("transcripts") < plain.count("transcripts") or wh.count("calls") < plain.count("calls")
    assert "synced_until" not in calls_state(wh), "the window is not marked as synced"

    resumed = sync(gong, wh, window_days=10, start=None)
    assert resumed.stop_reason is None
    assert snapshot(wh) == snapshot(plain), "the next run read the window again: nothing is missing"


@pytest.mark.sim(days=10, calls_per_day=8, sentences_per_call=4)
def test_a_soft_reconcile_marks_vanished_calls_and_their_rows_and_keeps_the_first_time(
        gong: GongFixture, warehouse: Warehouse) -> None:
    sync(gong, warehouse, window_days=30)
    before = snapshot(warehouse)
    ids = sorted(r[0] for r in warehouse.query("SELECT id FROM {ds}.calls"))
    assert gong.sim is not None
    gong.sim.delete_call(ids[2])
    result = sync(gong, warehouse, start=None, reconcile=True, reconcile_days=10, window_days=30, soft_delete=True)
    assert result.deleted_calls == 1
    after = snapshot(warehouse)
    for table, rows in before.items():
        assert Counter({r: n for r, n in after[table].items() if r in rows}) == rows, f"{table} lost rows"
    marked = warehouse.query("SELECT id, deleted_at FROM {ds}.calls WHERE is_deleted")
    assert [m[0] for m in marked] == [ids[2]] and marked[0][1] is not None
    for table in ("calls__parties", "calls__trackers", "transcripts"):
        total = warehouse.count(table, f"WHERE call_id = '{ids[2]}'")
        assert total > 0 and warehouse.count(table, f"WHERE call_id = '{ids[2]}' AND is_deleted") == total, table
        assert warehouse.count(table, "WHERE is_deleted") == total, f"{table}: only the vanished call is marked"
    # Another reconcile finds nothing new and keeps the first time; a second vanished call gets its own.
    gong.sim.delete_call(ids[5])
    again = sync(gong, warehouse, start=None, reconcile=True, reconcile_days=10, window_days=30, soft_delete=True)
    assert again.deleted_calls == 1
    now_marked = dict(warehouse.query("SELECT id, deleted_at FROM {ds}.calls WHERE is_deleted"))
    assert set(now_marked) == {ids[2], ids[5]} and now_marked[ids[2]] == marked[0][1]


def test_soft_delete_without_reconcile_is_one_sentence(gong: GongFixture, duck: Warehouse) -> None:
    from pipelines.errors import UsageError

    with pytest.raises(UsageError, match="give --reconcile with it"):
        sync(gong, duck, soft_delete=True)
    assert gong.session.sent == []
