"""Airflow recipe for gong-sync: copy this file into your DAGs folder, with gong-sync installed where the tasks run.

    pip install -r requirements.lock   # in the Airflow environment (apache-airflow 3.3.2 installs beside these
    pip install --no-deps -e .         # pins without changing one), then gong-sync itself

Two DAGs, each a sync task (`sync_task`) and the dbt models downstream (`models_task`,
`pipelines.models.build_models`):

- `gong_sync`: every day at 06:00 UTC, an incremental sync (`pipelines.gong_pipeline.run_sync`), then the models.
- `gong_reconcile`: Sundays at 03:30 UTC, `run_sync(..., reconcile=True)`: re-reads the last 30 days and deletes
  the calls Gong no longer returns, then the models (which drop them too). The two never overlap: gong-sync's
  run lock would refuse the second run of the same pipeline.

The tasks call `run_sync` rather than a generic dlt task (dlt's `PipelineTasksGroup`), which would run the dlt
source without gong-sync's windows, chunked loads, run lock and daily budget ledger.

Retry semantics. A run that Gong's quota or rate limit stopped early (`SyncResult.stop_reason`; the CLI's exit
code 3: completed work is kept, run again later) raises `GongRetryLater`, an `AirflowException`: Airflow retries
the task after `retry_delay` (2 hours), up to `retries` (3) times, and each retry resumes from the last committed
window. The exception carries `seconds_to_wait`, the wait the stop reason implies (until just after midnight UTC
for a spent daily budget), for a retry callback or policy of your own. A `UserError` (bad credentials, an
unreachable warehouse, a run already in progress, ...) raises `GongSyncFailed`, an `AirflowFailException`: the
task fails at once, without retries, with gong-sync's one sentence saying what to fix.

Configuration: the DAG's params (`resources` as "calls,transcripts", a backfill's `start` / `end`,
`full_refresh`), overridden per run when triggering; the warehouse from GONG_SYNC_DESTINATION (default duckdb),
GONG_SYNC_DATASET (default gong), GONG_SYNC_PIPELINE_NAME and GONG_SYNC_DUCKDB_FILE on the workers. Credentials
are read as the CLI reads them, by dlt: SOURCES__GONG__BASE_URL, SOURCES__GONG__ACCESS_KEY /
SOURCES__GONG__ACCESS_KEY_SECRET (or SOURCES__GONG__BEARER_TOKEN), DESTINATION__<NAME>__CREDENTIALS, from the
workers' environment, `.dlt/secrets.toml` of their working directory, or dlt's Airflow Variable
`dlt_secrets_toml`. Nothing secret is in the DAG.

Without Airflow installed, this module still imports (the DAGs are then None) and `sync_task` / `models_task`
run as plain functions: the tests run them against the simulator that way.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from pipelines.errors import UserError

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:
    try:  # Airflow 2
        from airflow import DAG  # type: ignore[no-redef]
        from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]
        from airflow.operators.python import PythonOperator  # type: ignore[no-redef]
    except ImportError:  # no Airflow: the task callables still import and run
        DAG = None  # type: ignore[assignment,misc]
        PythonOperator = None  # type: ignore[assignment,misc]

        class AirflowException(Exception):  # type: ignore[no-redef]
            """Stands in for Airflow's exception when Airflow is not installed."""

        class AirflowFailException(AirflowException):  # type: ignore[no-redef]
            """Stands in for Airflow's fail-without-retry exception when Airflow is not installed."""

log = logging.getLogger("gong_sync.airflow")

# What a task retries on GongRetryLater (and on anything unexpected); GongSyncFailed is never retried.
RETRIES = 3
RETRY_DELAY = timedelta(hours=2)
DEFAULT_RETRY_WAIT_S = 15 * 60
AFTER_MIDNIGHT_S = 5 * 60


class GongRetryLater(AirflowException):
    """Gong's quota or rate limit stopped the sync early; its completed work is kept: run it again later.

    `seconds_to_wait` is how long the stop reason says to wait; `result` is what the run did (`result_dict`).
    """

    def __init__(self, reason: str, seconds_to_wait: int, result: Optional[dict[str, Any]] = None) -> None:
        super().__init__(f"gong-sync stopped early, retry later (in about {seconds_to_wait} s): {reason}")
        self.reason = reason
        self.seconds_to_wait = seconds_to_wait
        self.result = result or {}


class GongSyncFailed(AirflowFailException):
    """A mistake to fix (gong-sync's UserError): its message is the one sentence saying what; not retried."""


def retry_wait_s(stop_reason: str, now: Optional[datetime] = None) -> int:
    """Seconds to wait after a run stopped early: until 5 minutes after midnight UTC for a spent daily budget;
    the wait Gong asked for (no later than that) for a long Retry-After; 15 minutes otherwise."""
    now = now or datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    until_reset = int((midnight - now).total_seconds()) + AFTER_MIDNIGHT_S
    if "daily request budget" in stop_reason:
        return until_reset
    asked = re.search(r"asked to wait (\d+) s", stop_reason)
    if asked:
        return max(60, min(int(asked.group(1)), until_reset))
    return DEFAULT_RETRY_WAIT_S


def _settings(context: dict[str, Any]) -> dict[str, Any]:
    """The run's settings: the task's own keyword arguments (op_kwargs), over the DAG run's params, over the
    environment's GONG_SYNC_* defaults."""
    params = dict(context.get("params") or {})
    own = {k: v for k, v in context.items() if k not in ("params",) and k in _KEYS}
    merged = {**_defaults(), **{k: v for k, v in params.items() if v not in (None, "")}, **own}
    resources = merged.get("resources")
    if isinstance(resources, str):
        merged["resources"] = [r.strip() for r in resources.split(",") if r.strip()] or None
    return merged


def _defaults() -> dict[str, Any]:
    return {"destination": os.environ.get("GONG_SYNC_DESTINATION", "duckdb"),
            "dataset": os.environ.get("GONG_SYNC_DATASET", "gong"),
            "pipeline_name": os.environ.get("GONG_SYNC_PIPELINE_NAME", "gong"),
            "duckdb_file": os.environ.get("GONG_SYNC_DUCKDB_FILE") or None,
            "pipelines_dir": None, "resources": None, "start": None, "end": None, "reconcile": False,
            "reconcile_days": 30.0, "soft_delete": False, "full_refresh": False, "max_requests_per_day": None,
            "window_days": 7.0, "window_requests": 100, "chunk_pages": 10}


_KEYS = frozenset(_defaults())


def _destination(settings: dict[str, Any]) -> Any:
    if settings.get("duckdb_file") and settings["destination"] == "duckdb":
        import dlt

        return dlt.destinations.duckdb(credentials=settings["duckdb_file"])
    return settings["destination"]


def result_dict(result: Any) -> dict[str, Any]:
    """A SyncResult as the task's return value (an XCom): plain JSON."""
    return {"row_counts": dict(sorted(result.row_counts.items())), "rows_loaded": sum(result.row_counts.values()),
            "request_counts": dict(sorted(result.request_counts.items())), "requests": result.requests_used,
            "budget_left": result.budget_left, "window": result.window, "windows": result.windows,
            "deleted_calls": result.deleted_calls, "stop_reason": result.stop_reason,
            "destination": result.destination, "dataset": result.dataset}


def sync_task(**context: Any) -> dict[str, Any]:
    """The sync task: one `run_sync`; returns what it did. Raises GongRetryLater when Gong's quota stopped it
    early (Airflow retries), GongSyncFailed for a UserError (no retry)."""
    from pipelines.gong_pipeline import run_sync
    from sources.gong.catalog import resource_names

    s = _settings(context)
    try:
        result = run_sync(s["resources"] or resource_names(default_only=True), start=s["start"], end=s["end"],
                          full_refresh=bool(s["full_refresh"]), destination=_destination(s), dataset=s["dataset"],
                          pipeline_name=s["pipeline_name"], pipelines_dir=s["pipelines_dir"],
                          reconcile=bool(s["reconcile"]), reconcile_days=float(s["reconcile_days"]),
                          window_days=float(s["window_days"]), window_requests=int(s["window_requests"]),
                          chunk_pages=int(s["chunk_pages"]), soft_delete=bool(s["soft_delete"]),
                          max_requests_per_day=(int(s["max_requests_per_day"]) if s["max_requests_per_day"]
                                                else None))
    except UserError as exc:
        raise GongSyncFailed(str(exc)) from None
    done = result_dict(result)
    log.info("gong-sync loaded %s rows with %s requests: %s", done["rows_loaded"], done["requests"],
             done["row_counts"])
    if result.stop_reason:
        raise GongRetryLater(result.stop_reason, retry_wait_s(result.stop_reason), done)
    return done


def models_task(**context: Any) -> dict[str, Any]:
    """The models task: `dbt build` of transform/ on the synced dataset; GongSyncFailed for a UserError."""
    from pipelines.models import build_models

    s = _settings(context)
    try:
        built = build_models(destination=_destination(s), dataset=s["dataset"], full_refresh=bool(s["full_refresh"]),
                             pipeline_name=s["pipeline_name"], target_path=context.get("target_path"),
                             log_path=context.get("log_path"))
    except UserError as exc:
        raise GongSyncFailed(str(exc)) from None
    return {"models": len(built.models), "tests_passed": built.tests_passed, "warnings": built.warnings,
            "marts_schema": built.marts_schema, "mart_rows": dict(sorted(built.row_counts.items()))}


DEFAULT_ARGS = {"owner": "gong-sync", "retries": RETRIES, "retry_delay": RETRY_DELAY}
PARAMS = {"resources": "", "start": "", "end": "", "full_refresh": False}


def _dag(dag_id: str, schedule: str, description: str, reconcile: bool) -> Any:
    with DAG(dag_id, schedule=schedule, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False,
             max_active_runs=1, default_args=DEFAULT_ARGS, params=PARAMS, description=description,
             tags=["gong"]) as dag:
        sync = PythonOperator(task_id="sync", python_callable=sync_task,
                              op_kwargs={"reconcile": True} if reconcile else {})
        models = PythonOperator(task_id="models", python_callable=models_task, retries=0)
        sync >> models
    return dag


if DAG is not None:
    gong_sync_dag = _dag("gong_sync", "0 6 * * *", "Incremental sync of Gong, then the dbt models", False)
    gong_reconcile_dag = _dag("gong_reconcile", "30 3 * * 0",
                              "Weekly: delete the calls Gong no longer returns (last 30 days), then the dbt models",
                              True)
else:
    gong_sync_dag = gong_reconcile_dag = None
