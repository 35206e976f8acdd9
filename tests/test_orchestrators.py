"""The orchestrator recipes (issue 20): orchestration/dagster_gong.py and orchestration/airflow_gong.py, run as a
user's scheduler would run them, against the simulator served over HTTP, with the credentials in the same
SOURCES__GONG__* environment the CLI reads, into a DuckDB file of the test's own.

Dagster: the sync and the dbt models materialized in process (`dagster.materialize`); a spent quota is a
RetryRequested with a wait, not a Failure; a UserError a Failure with the one sentence. Airflow: the task
callables run without Airflow (it is not in requirements.lock, see README); a stopped-early run raises the
retry exception. Only the DAG-parsing test skips when Airflow is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from simulator import GongSimulator
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, SIM_NOW, sim_config

ROOT = Path(__file__).resolve().parents[1]
START = (SIM_NOW - timedelta(days=7)).isoformat()
END = SIM_NOW.isoformat()
SIM = dict(days=5, calls_per_day=5, users=4, sentences_per_call=8, private_ratio=0.15)


@pytest.fixture
def sim() -> Iterator[GongSimulator]:
    with GongSimulator(sim_config(**SIM)) as simulator:
        yield simulator


@pytest.fixture
def gong_env(sim: GongSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment the README asks for (SOURCES__GONG__*), pointing at the simulator; returns the folder for
    the warehouse and dlt's pipelines."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "GONG_SYNC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", sim.base_url)
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
    monkeypatch.setenv("SOURCES__GONG__RATE_LIMIT", "0")  # the simulator answers at any rate
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def expected_rows(sim: GongSimulator) -> tuple[int, int]:
    """The calls and transcript sentences a sync of [START, END) loads: the simulator's non-private calls, and the
    sentences of those whose transcript is ready."""
    now = SIM_NOW
    calls = [sim.call_meta(c) for c in sim.call_ids(include_private=False)
             if START <= sim.call_meta(c).started.isoformat() < END]
    sentences = sum(len(m["sentences"]) for c in calls if c.transcript_at <= now for m in sim.data.transcript(c))
    return len(calls), sentences


def counts(path: Path, dataset: str = "gong") -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        calls = con.execute(f"SELECT count(*) FROM {dataset}.calls").fetchone()[0]
        sentences = con.execute(f"SELECT count(*) FROM {dataset}.transcripts").fetchone()[0]
    return calls, sentences


# ---------------------------------------------------------------------------------------------------- Dagster


def dagster_run(work: Path, sync: dict[str, Any], assets: Any = None, instance: Any = None) -> Any:
    """Materializes the recipe's assets (default: the sync and the models) in process."""
    import dagster as dg

    from orchestration import dagster_gong as recipe

    resource = recipe.GongWarehouse(duckdb_file=str(work / "warehouse.duckdb"), pipelines_dir=str(work / "dlt"))
    config: dict[str, Any] = {"gong_sync": {"config": sync}}
    chosen = assets or [recipe.gong_sync, recipe.gong_models]
    if recipe.gong_models in chosen:
        config["gong_models"] = {"config": {"target_path": str(work / "dbt_target"),
                                            "log_path": str(work / "dbt_logs")}}
    if instance is None:
        with dg.DagsterInstance.ephemeral() as own:
            return dagster_run(work, sync, assets, own)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recipe and Dagster warn of nothing on a clean run
        return dg.materialize(chosen, resources={"gong_warehouse": resource}, run_config={"ops": config},
                              raise_on_error=False, instance=instance)


def step_failures(result: Any) -> list[Any]:
    return [e for e in result.all_events if e.is_step_failure]


def test_dagster_materializes_the_sync_and_the_models_with_their_row_counts(sim: GongSimulator,
                                                                          gong_env: Path) -> None:
    result = dagster_run(gong_env, {"start": START, "end": END})
    assert result.success, [e.step_failure_data.error.message for e in step_failures(result)]
    calls, sentences = expected_rows(sim)
    assert counts(gong_env / "warehouse.duckdb") == (calls, sentences) and calls > 10 and sentences > 50
    synced = result.asset_materializations_for_node("gong_sync")[0].metadata
    rows = synced["row_counts"].value
    assert (rows["calls"], rows["transcripts"]) == (calls, sentences)
    assert synced["rows_loaded"].value == sum(rows.values()) and rows["users"] == 4
    assert synced["requests"].value == sum(synced["request_counts"].value.values()) > 0
    assert synced["window"].value == f"{START} .. {END} (end exclusive)"
    assert synced["windows"].value == 1 and synced["dataset"].value == "gong"
    assert "stop_reason" not in synced
    models = result.asset_materializations_for_node("gong_models")[0].metadata
    assert models["mart_rows"].value["fct_calls"] == calls
    assert models["models"].value > 7 and models["tests_passed"].value > 100
    assert models["test_warnings"].value == [] and models["marts_schema"].value == "gong_marts"


def test_dagster_progress_lines_reach_the_run_log(sim: GongSimulator, gong_env: Path) -> None:
    import dagster as dg

    from orchestration import dagster_gong as recipe

    with dg.DagsterInstance.ephemeral() as instance:
        result = dagster_run(gong_env, {"start": START, "end": END, "resources": ["calls", "transcripts"]},
                             assets=[recipe.gong_sync], instance=instance)
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    calls, _ = expected_rows(sim)
    assert any(m.startswith(f"calls: {calls} calls (") for m in messages), messages


@pytest.mark.parametrize("limit", ["quota", "budget"])
def test_dagster_a_spent_quota_is_retry_requested_not_a_failure(limit: str, sim: GongSimulator, gong_env: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from orchestration import dagster_gong as recipe

    if limit == "quota":
        sim.set_quota(3)  # Gong's own daily quota: a 429 whose Retry-After lasts until its midnight
    else:
        monkeypatch.setenv("SOURCES__GONG__DAILY_BUDGET", "3")  # gong-sync's own budget for the day
    resource = recipe.GongWarehouse(duckdb_file=str(gong_env / "warehouse.duckdb"), pipelines_dir=str(gong_env / "dlt"))
    # Through Dagster's executor (waits of 1 s, one retry): the step is up for retry, then retried, and what it
    # loaded is observed; it never fails with a Failure.
    with dg.DagsterInstance.ephemeral() as instance:
        result = dagster_run(gong_env, {"start": START, "end": END, "max_retry_wait_s": 1, "retries_when_stopped": 1},
                             assets=[recipe.gong_sync], instance=instance)
        logs = instance.all_logs(result.run_id)
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" in kinds and "STEP_RESTARTED" in kinds
    assert result.retry_attempts_for_node("gong_sync") == 1
    failures = step_failures(result)
    assert [f.step_failure_data.error.cls_name for f in failures] == ["RetryRequested"]
    assert "ASSET_MATERIALIZATION" not in kinds
    observed = [e.dagster_event.event_specific_data.asset_observation.metadata
                for e in logs if e.dagster_event and e.dagster_event.is_asset_observation]
    assert len(observed) == 2 and all("stopped" in o["stop_reason"].value for o in observed)
    assert observed[0]["rows_loaded"].value > 0, "what was read before the quota ran out is kept"

    # Called as Dagster calls it, with the recipe's defaults: RetryRequested with the wait the stop reason implies.
    with dg.build_asset_context(resources={"gong_warehouse": resource}) as context, \
            pytest.raises(dg.RetryRequested) as retry:
        recipe.gong_sync(context, recipe.GongSyncConfig(start=START, end=END))
    now = datetime.now(UTC)
    until_reset = (datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1) - now).total_seconds() + 300
    # Gong's quota: the simulator's clock is frozen at noon, so it asks to wait 12 h (but not past the reset).
    expected = min(12 * 3600, until_reset) if limit == "quota" else until_reset
    assert retry.value.max_retries == 2 and abs(retry.value.seconds_to_wait - expected) < 5


def test_dagster_a_user_error_is_a_failure_with_the_one_sentence(gong_env: Path) -> None:
    result = dagster_run(gong_env, {"start": END, "end": START}, assets=None)
    (failure,) = step_failures(result)
    assert failure.step_key == "gong_sync"
    assert failure.step_failure_data.error.cls_name == "Failure"
    assert failure.step_failure_data.user_failure_data.description == (
        f"The start {END} is not before the end {START}: give --start earlier than --end.")
    assert not (gong_env / "warehouse.duckdb").exists()


def test_dagster_definitions_hold_the_daily_schedule_and_the_weekly_reconcile() -> None:
    from orchestration import dagster_gong as recipe

    defs = recipe.defs
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["gong_daily_schedule"].cron_schedule == "0 6 * * *"
    assert schedules["gong_weekly_reconcile_schedule"].cron_schedule == "30 3 * * 0"
    assert schedules["gong_weekly_reconcile_schedule"].job_name == "gong_reconcile"
    assert defs.resolve_job_def("gong_reconcile").run_config == {"ops": {"gong_sync": {"config": {"reconcile": True}}}}
    assert defs.resolve_job_def("gong_daily").run_config is None
    assert {k.to_user_string() for k in defs.resolve_all_asset_keys()} == {"gong_sync", "gong_models"}
    assert defs.resolve_asset_graph().get(recipe.gong_models.key).parent_keys == {recipe.gong_sync.key}


def test_dagster_weekly_reconcile_deletes_the_calls_gong_no_longer_returns(sim: GongSimulator,
                                                                          gong_env: Path) -> None:
    from orchestration import dagster_gong as recipe

    assert dagster_run(gong_env, {"start": START, "end": END}, assets=[recipe.gong_sync]).success
    gone = sim.call_ids(include_private=False)[-1]
    sim.delete_call(gone)
    result = dagster_run(gong_env, {"reconcile": True, "end": END, "reconcile_days": 8}, assets=[recipe.gong_sync])
    assert result.success
    assert result.asset_materializations_for_node("gong_sync")[0].metadata["deleted_calls"].value == 1
    calls, _ = expected_rows(sim)
    assert counts(gong_env / "warehouse.duckdb")[0] == calls


def test_retry_waits_follow_the_stop_reason() -> None:
    from orchestration import airflow_gong, dagster_gong

    noon = datetime(2026, 11, 1, 12, tzinfo=UTC)
    for wait in (dagster_gong.retry_wait_s, airflow_gong.retry_wait_s):
        assert wait("The daily request budget of 3 requests is spent; ...", noon) == 12 * 3600 + 300
        assert wait("Gong asked to wait 120 s before calling /v2/calls again (the daily quota ...", noon) == 120
        assert wait("Gong asked to wait 90000 s before calling /v2/users again ...", noon) == 12 * 3600 + 300
        assert wait("Gong kept answering HTTP 503 for /v2/users after 6 attempts; ...", noon) == 15 * 60


# ---------------------------------------------------------------------------------------------------- Airflow


def test_airflow_sync_task_loads_the_rows_and_returns_what_it_did(sim: GongSimulator, gong_env: Path) -> None:
    from orchestration import airflow_gong as recipe

    warehouse = str(gong_env / "warehouse.duckdb")
    context = {"params": {"resources": "users,calls,transcripts", "start": START, "end": END, "full_refresh": False},
               "duckdb_file": warehouse, "pipelines_dir": str(gong_env / "dlt"), "ti": object()}
    done = recipe.sync_task(**context)
    calls, sentences = expected_rows(sim)
    assert counts(Path(warehouse)) == (calls, sentences) and calls > 10
    assert (done["row_counts"]["calls"], done["row_counts"]["transcripts"]) == (calls, sentences)
    assert done["stop_reason"] is None and done["requests"] > 0 and done["window"] == [START, END]
    built = recipe.models_task(**context, target_path=str(gong_env / "dbt_target"), log_path=str(gong_env / "dbt_logs"))
    assert built["mart_rows"]["fct_calls"] == calls and built["warnings"] == []


def test_airflow_a_stopped_run_raises_the_retry_exception_and_a_user_error_fails(
        sim: GongSimulator, gong_env: Path) -> None:
    from orchestration import airflow_gong as recipe

    sim.set_quota(3)
    context = {"params": {"start": START, "end": END}, "duckdb_file": str(gong_env / "warehouse.duckdb"),
               "pipelines_dir": str(gong_env / "dlt")}
    with pytest.raises(recipe.GongRetryLater) as retry:
        recipe.sync_task(**context)
    assert isinstance(retry.value, recipe.AirflowException)
    assert not isinstance(retry.value, recipe.AirflowFailException), "Airflow retries it"
    assert "stopped" in retry.value.reason and 60 <= retry.value.seconds_to_wait <= 24 * 3600 + 300
    assert retry.value.result["rows_loaded"] > 0, "what was read before the quota ran out is kept"
    assert recipe.DEFAULT_ARGS["retries"] == 3 and recipe.DEFAULT_ARGS["retry_delay"] == timedelta(hours=2)

    with pytest.raises(recipe.GongSyncFailed) as failed:
        recipe.sync_task(**{**context, "resources": ["calls", "deals"]})
    assert isinstance(failed.value, recipe.AirflowFailException), "Airflow fails it without retrying"
    assert str(failed.value).startswith("Unknown resource 'deals': choose from workspaces, users,")


@pytest.mark.skipif(importlib.util.find_spec("airflow") is None,
                    reason="apache-airflow is not installed (not in requirements.lock: see README, "
                           "'Running it from Dagster or Airflow'); this test parses the DAG file with Airflow's DagBag")
def test_airflow_dagbag_parses_the_dag_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.syspath_prepend(str(ROOT))
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models import DagBag
    bag = DagBag(dag_folder=str(ROOT / "orchestration" / "airflow_gong.py"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"gong_sync", "gong_reconcile"}
    for dag_id, reconcile in (("gong_sync", False), ("gong_reconcile", True)):
        dag = bag.dags[dag_id]  # (get_dag reads the metadata database in Airflow 3)
        sync, models = dag.get_task("sync"), dag.get_task("models")
        assert sync.retries == 3 and sync.retry_delay == timedelta(hours=2) and models.retries == 0
        assert sync.python_callable.__name__ == "sync_task" and models.upstream_task_ids == {"sync"}
        assert sync.op_kwargs == ({"reconcile": True} if reconcile else {})
    assert "airflow" in sys.modules
