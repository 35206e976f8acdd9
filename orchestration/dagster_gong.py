"""Dagster recipe for gong-sync: copy this file into your Dagster code location (or point `dagster dev -f` at it).

    make install          # dagster 1.13.27 and dagster-dlt 0.29.27 are pinned in requirements.lock
    .venv/bin/dagster asset materialize -f orchestration/dagster_gong.py --select gong_sync,gong_models
    dagster dev -f orchestration/dagster_gong.py     # the UI and the schedules: also needs dagster-webserver

What it defines (`defs` at the bottom):

- `gong_sync`: one asset, one sync. It calls `pipelines.gong_pipeline.run_sync` and puts what the run did in the
  materialization's metadata: rows per table (`row_counts`, and `rows_loaded` in total), requests per endpoint,
  the calls window and how many windows it was cut into, the daily budget left, and for a reconcile the calls
  deleted. One asset rather than one per resource or table, because a Gong sync is one unit of work: one run
  lock, one window plan, one daily request budget and rate limit shared by every resource, and transcripts
  that are read by the calls feed as each page of calls arrives. Assets per resource group would either run
  the whole sync once per asset or report tables materialized that the run did not touch; the tables are in
  the metadata instead.
- `gong_models`: the dbt models downstream (`pipelines.models.build_models`: staging views and marts in
  `<dataset>_stg` / `<dataset>_marts`), with the models built, the tests passed and the rows of every mart.
- `gong_daily` job and `gong_daily_schedule` (every day at 06:00 UTC: sync, then the models), and the
  `gong_reconcile` job and `gong_weekly_reconcile_schedule` (Sundays at 03:30 UTC: `run_sync(...,
  reconcile=True)`, which deletes the calls Gong no longer returns in the last `reconcile_days`, then the
  models, which drop them too). The two schedules never overlap: a second run of the same pipeline would be
  refused by gong-sync's run lock (a Failure saying so).

Why not dagster-dlt's `@dlt_assets` (dagster-dlt 0.29.27 is pinned beside dagster, for your own dlt sources):
it runs `pipeline.run(source)` once, so it would skip what `run_sync` adds around the dlt source: the windows
planned from Gong's count and committed one by one, the chunked loads, the lock that keeps two runs of one
pipeline apart, the daily budget ledger shared by every run of the day, loading what an interrupted run left,
and the one-sentence errors. A long backfill would be one load that a spent quota loses whole.

Outcomes:

- A run that Gong's quota or rate limit stopped early (`SyncResult.stop_reason`, the CLI's exit code 3:
  completed work is kept, run again later) is not a failure: the asset logs an `AssetObservation` with what
  the run did load, then raises `RetryRequested`, waiting until the quota can have come back: until 5 minutes
  after midnight UTC for a spent daily budget, the wait Gong asked for (at most until then) for a long
  Retry-After, 15 minutes otherwise; at most `max_retry_wait_s`, up to `retries_when_stopped` times. Each retry
  resumes from the last committed window. Dagster's executor waits in the run's process: set
  `max_retry_wait_s` lower, or `retries_when_stopped: 0` to leave it to the next scheduled run (the step then
  fails with "Exceeded max_retries of 0").
- A `UserError` (bad credentials, an unreachable warehouse, a run already in progress, ...) is a
  `Failure` whose description is gong-sync's one sentence saying what to fix; it is not retried.

Configuration: the warehouse is the `gong_warehouse` resource (`GongWarehouse`: destination, dataset, pipeline
name, an optional DuckDB file), defaulting to GONG_SYNC_DESTINATION / GONG_SYNC_DATASET as the CLI does; what a
run syncs is the asset's run config (`GongSyncConfig`: resources, a backfill's start and end, reconcile, window
sizes). Credentials are read exactly as the CLI reads them, by dlt: SOURCES__GONG__BASE_URL,
SOURCES__GONG__ACCESS_KEY / SOURCES__GONG__ACCESS_KEY_SECRET (or SOURCES__GONG__BEARER_TOKEN), the other
SOURCES__GONG__* settings and DESTINATION__<NAME>__CREDENTIALS from the environment, or `.dlt/secrets.toml` and
`.dlt/config.toml` of the working directory (start Dagster from the project folder). Nothing secret goes into
Dagster's config. gong-sync's progress lines ("window 3 of 9") appear in the run's log.

Importing this module (Dagster 1.13.27) prints no warning; nothing is filtered.
"""

# No `from __future__ import annotations`: Dagster reads the config and resource types of the assets' arguments.
import contextlib
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import dagster as dg

from pipelines.errors import UserError

# How long to wait before running again after a run stopped early with a reason that names no wait.
DEFAULT_RETRY_WAIT_S = 15 * 60
# Gong's quota is per UTC day: retry a little after midnight, when it has come back.
AFTER_MIDNIGHT_S = 5 * 60


def retry_wait_s(stop_reason: str, now: Optional[datetime] = None) -> int:
    """Seconds to wait before running again after a sync stopped early with `stop_reason`.

    A spent daily budget: until 5 minutes after midnight UTC. Gong asking to wait N seconds (a long
    Retry-After: the daily quota is probably spent): N, but no later than that. Anything else (Gong kept
    answering 5xx or 429): 15 minutes.
    """
    now = now or datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    until_reset = int((midnight - now).total_seconds()) + AFTER_MIDNIGHT_S
    if "daily request budget" in stop_reason:
        return until_reset
    asked = re.search(r"asked to wait (\d+) s", stop_reason)
    if asked:
        return max(60, min(int(asked.group(1)), until_reset))
    return DEFAULT_RETRY_WAIT_S


class GongWarehouse(dg.ConfigurableResource):  # type: ignore[misc]
    """Where gong-sync loads, as the CLI's --destination, --dataset, --pipeline-name and --pipelines-dir.

    `destination` is a dlt destination name (duckdb, postgres, snowflake, ...): its credentials come from
    DESTINATION__<NAME>__CREDENTIALS or .dlt/secrets.toml, never from here. `duckdb_file` puts a DuckDB
    warehouse in that file (default: gong_warehouse.duckdb in the working directory, or
    DESTINATION__DUCKDB__CREDENTIALS).
    """

    destination: str = os.environ.get("GONG_SYNC_DESTINATION", "duckdb")
    dataset: str = os.environ.get("GONG_SYNC_DATASET", "gong")
    pipeline_name: str = "gong"
    pipelines_dir: Optional[str] = None
    duckdb_file: Optional[str] = None

    def dlt_destination(self) -> Any:
        """The destination `run_sync` and `build_models` take: a name, or a DuckDB destination on `duckdb_file`."""
        if self.duckdb_file and self.destination == "duckdb":
            import dlt

            return dlt.destinations.duckdb(credentials=self.duckdb_file)
        return self.destination


class GongSyncConfig(dg.Config):  # type: ignore[misc]
    """What one sync does: the CLI's options (see `gong-sync --help`)."""

    resources: Optional[list[str]] = None  # default: every default resource
    start: Optional[str] = None  # a backfill: from this date (UTC)...
    end: Optional[str] = None  # ... to this one, exclusive (default: resume from the state, up to now)
    reconcile: bool = False
    reconcile_days: float = 30.0
    soft_delete: bool = False  # a reconcile marks the calls Gong no longer returns (is_deleted) instead
    full_refresh: bool = False
    max_requests_per_day: Optional[int] = None  # this sync's share of the company's daily Gong requests
    window_days: float = 7.0
    window_requests: int = 100
    chunk_pages: int = 10
    # A run stopped early by Gong's quota or rate limit is retried this many times...
    retries_when_stopped: int = 2
    # ... after the wait `retry_wait_s` computes, but at most this long.
    max_retry_wait_s: int = 24 * 3600


class GongModelsConfig(dg.Config):  # type: ignore[misc]
    """`build_models` options: rebuild the incremental marts from scratch; where dbt writes its files."""

    full_refresh: bool = False
    target_path: Optional[str] = None  # default: transform/target (or DBT_TARGET_PATH)
    log_path: Optional[str] = None  # default: transform/logs (or DBT_LOG_PATH)


@contextlib.contextmanager
def _progress_to(log: Any) -> Iterator[None]:
    """Sends gong-sync's progress lines (the `gong_sync` loggers, INFO and up) to the Dagster run's log."""

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                (log.warning if record.levelno >= logging.WARNING else log.info)(record.getMessage())
            except Exception:  # noqa: BLE001 - a progress line never fails the sync
                pass

    logger = logging.getLogger("gong_sync")
    handler, level = Forward(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _sync_metadata(result: Any) -> dict[str, Any]:
    """The materialization's metadata: what the run loaded and what it cost."""
    metadata: dict[str, Any] = {
        "rows_loaded": sum(result.row_counts.values()),
        "row_counts": dg.MetadataValue.json(dict(sorted(result.row_counts.items()))),
        "requests": result.requests_used,
        "request_counts": dg.MetadataValue.json(dict(sorted(result.request_counts.items()))),
        "windows": result.windows,
        "destination": result.destination,
        "dataset": result.dataset,
    }
    if result.window:
        metadata["window"] = f"{result.window[0]} .. {result.window[1]} (end exclusive)"
    if result.budget_left is not None:
        metadata["budget_left"] = result.budget_left
    if result.deleted_calls is not None:
        metadata["deleted_calls"] = result.deleted_calls
    if result.rejected:
        metadata["rejected"] = result.rejected
    if result.pending_loaded:
        metadata["pending_loaded"] = result.pending_loaded
    if result.elapsed_s is not None:
        metadata["elapsed_s"] = round(result.elapsed_s, 1)
    if result.stop_reason:
        metadata["stop_reason"] = result.stop_reason
    return metadata


@dg.asset(group_name="gong", kinds={"dlt", "python"},
          description="Gong (API v2) synced into the warehouse by gong-sync's run_sync: windows, chunks, run lock.")
def gong_sync(context: dg.AssetExecutionContext, config: GongSyncConfig,
              gong_warehouse: GongWarehouse) -> dg.MaterializeResult:
    """One sync; RetryRequested when Gong's quota stopped it early, Failure (one sentence) for a UserError."""
    from pipelines.gong_pipeline import run_sync
    from sources.gong.catalog import resource_names

    resources = config.resources or resource_names(default_only=True)
    try:
        with _progress_to(context.log):
            result = run_sync(
                resources, start=config.start, end=config.end, full_refresh=config.full_refresh,
                destination=gong_warehouse.dlt_destination(), dataset=gong_warehouse.dataset,
                pipeline_name=gong_warehouse.pipeline_name, pipelines_dir=gong_warehouse.pipelines_dir,
                reconcile=config.reconcile, reconcile_days=config.reconcile_days, window_days=config.window_days,
                window_requests=config.window_requests, chunk_pages=config.chunk_pages,
                max_requests_per_day=config.max_requests_per_day, soft_delete=config.soft_delete)
    except UserError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    metadata = _sync_metadata(result)
    if result.stop_reason:
        wait = min(retry_wait_s(result.stop_reason), config.max_retry_wait_s)
        context.log.warning(f"gong-sync stopped early: {result.stop_reason} Retrying in {wait} s.")
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=metadata))
        raise dg.RetryRequested(max_retries=config.retries_when_stopped, seconds_to_wait=wait)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="gong", deps=[gong_sync], kinds={"dbt"},
          description="The dbt models of transform/ (staging views and marts) built on the synced dataset.")
def gong_models(context: dg.AssetExecutionContext, config: GongModelsConfig,
                gong_warehouse: GongWarehouse) -> dg.MaterializeResult:
    """`dbt build` of transform/ on the warehouse the sync loaded; Failure (one sentence) for a UserError."""
    from pipelines.models import build_models

    try:
        built = build_models(destination=gong_warehouse.dlt_destination(), dataset=gong_warehouse.dataset,
                             full_refresh=config.full_refresh, pipeline_name=gong_warehouse.pipeline_name,
                             target_path=config.target_path, log_path=config.log_path)
    except UserError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    if built.warnings:
        context.log.warning(f"dbt tests that found rows (severity warn): {', '.join(built.warnings)}")
    return dg.MaterializeResult(metadata={
        "models": len(built.models),
        "tests_passed": built.tests_passed,
        "test_warnings": dg.MetadataValue.json(built.warnings),
        "marts_schema": built.marts_schema,
        "mart_rows": dg.MetadataValue.json(dict(sorted(built.row_counts.items()))),
        "elapsed_s": round(built.elapsed_s, 1),
    })


gong_daily_job = dg.define_asset_job("gong_daily", selection=[gong_sync, gong_models],
                                     description="An incremental sync of Gong, then the dbt models.")
gong_reconcile_job = dg.define_asset_job(
    "gong_reconcile", selection=[gong_sync, gong_models],
    config={"ops": {"gong_sync": {"config": {"reconcile": True}}}},
    description="Re-reads the last 30 days and deletes the calls Gong no longer returns, then the dbt models.")
gong_daily_schedule = dg.ScheduleDefinition(name="gong_daily_schedule", job=gong_daily_job,
                                            cron_schedule="0 6 * * *", execution_timezone="UTC")
gong_weekly_reconcile_schedule = dg.ScheduleDefinition(name="gong_weekly_reconcile_schedule",
                                                       job=gong_reconcile_job, cron_schedule="30 3 * * 0",
                                                       execution_timezone="UTC")

defs = dg.Definitions(
    assets=[gong_sync, gong_models],
    jobs=[gong_daily_job, gong_reconcile_job],
    schedules=[gong_daily_schedule, gong_weekly_reconcile_schedule],
    resources={"gong_warehouse": GongWarehouse()},
)
