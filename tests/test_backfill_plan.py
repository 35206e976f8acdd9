"""`gong-sync plan`: the estimate of a backfill against what the sync then really spends."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.backfill import format_plan, plan_backfill
from pipelines.errors import UsageError
from pipelines.gong_pipeline import run_sync
from sources.gong.catalog import resource_names
from tests.conftest import SIM_NOW, GongFixture, Warehouse

START = (SIM_NOW - timedelta(days=20)).isoformat()
END = SIM_NOW.isoformat()


@pytest.mark.sim(days=20, calls_per_day=40, users=30, private_ratio=0.1)
def test_the_plan_counts_with_a_few_requests_and_matches_what_the_sync_spends(gong: GongFixture,
                                                                            duck: Warehouse) -> None:
    names = resource_names(default_only=True)
    planner = gong.client()
    plan = plan_backfill(planner, names, START, END, window_days=5, window_requests=8, now=SIM_NOW)
    # The calls of the range and of each window, the users, the short lists read per row (workspaces,
    # folders, profiles, CRM integrations).
    assert plan.counting_requests == len(gong.session.sent) <= 1 + plan.windows + 12, gong.session.sent
    assert gong.sim is not None
    begin = SIM_NOW - timedelta(days=20)
    in_range = [c for c in gong.sim.call_ids() if begin <= gong.sim.data.by_id[c].started < SIM_NOW]
    assert plan.calls == len(in_range) > 400
    assert plan.windows > 1
    before = gong.session.count("/v2/calls/extensive")
    result = run_sync(names, start=START, end=END, destination=duck.destination, dataset=duck.dataset,
                      pipeline_name="plan", pipelines_dir=str(duck.tmp_path / "dlt"),
                      source_options={"client": gong.client()}, window_days=5, window_requests=8)
    spent = result.requests_used
    assert gong.session.count("/v2/calls/extensive") - before == result.request_counts["/v2/calls/extensive"]
    assert abs(plan.total - spent) <= max(2, 0.05 * spent), (plan.requests, result.request_counts)
    assert plan.requests["calls"] == result.request_counts["/v2/calls/extensive"]


@pytest.mark.sim(days=20, calls_per_day=40, users=8)
def test_the_plan_says_days_and_time_under_the_daily_share(gong: GongFixture) -> None:
    plan = plan_backfill(gong.client(rate_limit=3.0), resource_names(default_only=True), START, END,
                         window_days=5, window_requests=8, max_requests_per_day=40, now=SIM_NOW)
    assert plan.total > 100 and plan.spent_today == plan.counting_requests == 19
    # 40 a day, 19 of today's spent counting: 21 today, then 40 a day.
    assert plan.days == 1 + -(-(plan.total - 21) // 40)
    assert plan.wall_s == pytest.approx(plan.total / 3.0)
    text = format_plan(plan)
    assert f"under 40 requests a day (19 spent today by this company's runs): {plan.days} days" in text
    assert "    total" in text and "nothing was synced" in text


def test_a_start_after_the_end_is_one_sentence(gong: GongFixture) -> None:
    with pytest.raises(UsageError, match="is not before the end"):
        plan_backfill(gong.client(), ["calls"], END, START, now=SIM_NOW)
    assert gong.session.count("/v2/calls/extensive") == 0


@pytest.fixture(scope="module")
def served() -> Any:
    from simulator import GongSimulator
    from tests.conftest import sim_config

    with GongSimulator(sim_config(days=10, calls_per_day=100, users=4, sentences_per_call=2, now=None)) as simulator:
        yield simulator


def test_gong_sync_plan_prints_the_plan_then_the_sync_honours_the_share_across_the_days_runs(
        served: Any, tmp_path: Path) -> None:
    from tests.test_front_door import newcomer_env, run_gong_sync

    env = newcomer_env(tmp_path / "home", served.base_url)
    start = (datetime.now(UTC) - timedelta(days=9)).date().isoformat()
    share = ["--resources", "users,calls,transcripts", "--max-requests-per-day", "20", "--window-days", "2",
             "--window-requests", "2"]
    proc = run_gong_sync(tmp_path / "w", env, "plan", "--start", start, *share)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "Backfill plan:" in proc.stdout and "nothing was synced" in proc.stdout
    total = int(re.search(r"    total\s+([\d,]+)", proc.stdout).group(1).replace(",", ""))
    days = int(re.search(r"requests a day \(\d+ spent today by this company's runs\): (\d+) days?", proc.stdout)
               .group(1))
    spent_counting = int(re.search(r"this plan spent (\d+) requests? counting", proc.stdout).group(1))
    assert total > 20 and days == 1 + -(-(total - max(0, 20 - spent_counting)) // 20)
    assert not (tmp_path / "w" / "gong_warehouse.duckdb").exists(), "a plan syncs nothing"
    # The same share, spent by the day's runs together: the plan's counting requests count too.
    sync = run_gong_sync(tmp_path / "w", env, "--start", start, *share)
    assert sync.returncode == 3, sync.stderr
    assert "STOPPED EARLY" in sync.stdout
    [ledger] = [p for p in (tmp_path / "home" / ".dlt" / "pipelines" / "gong_request_budget").glob("*.json")
                if not p.name.endswith(".pace.json")]
    assert json.loads(ledger.read_text())["used"] == 20
    with duckdb.connect(str(tmp_path / "w" / "gong_warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM gong.calls").fetchone()[0] > 0, "the share's windows loaded"
    again = run_gong_sync(tmp_path / "w", env, *share)
    assert again.returncode == 3 and "Gong requests: 0" in again.stdout, again.stdout


def test_a_plan_without_a_start_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    from tests.test_front_door import newcomer_env, run_gong_sync

    proc = run_gong_sync(tmp_path / "w", newcomer_env(tmp_path / "home", "http://127.0.0.1:9"), "plan")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gong-sync: The following arguments are required: --start: see gong-sync --help."
