"""`run_sync`: one sync of Gong into a warehouse, the one entry point of the CLI, the demo, the benchmark and
the orchestrators.

Runs the Gong dlt source through one dlt pipeline into DuckDB (the default), Postgres, or any destination
dlt supports, configured by dlt's own keys, and returns what it did (`SyncResult`). Arguments and
settings are checked before anything is read; every failure is a `UserError` whose message is one
sentence for the user (pipelines/errors.py). The steps are in pipelines/runner.py, the command line in
pipelines/cli.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError, setting_error

DEFAULT_PIPELINE_NAME = "gong"
DEFAULT_DATASET = "gong"
DEFAULT_WINDOW_DAYS = 7.0
DEFAULT_WINDOW_REQUESTS = 100
# Pages of calls (100 each, with their transcripts) loaded at once while the next ones are read.
DEFAULT_CHUNK_PAGES = 10
DEFAULT_RECONCILE_DAYS = 30.0


@dataclass
class SyncResult:
    """What one sync did: rows per table, requests per endpoint, the calls window, and why it stopped early.

    `stop_reason` is set when Gong's quota or a long Retry-After stopped the run (exit code 3: completed work
    is kept, run again later); `windows` is how many windows the range was cut into.
    """

    row_counts: dict[str, int] = field(default_factory=dict)
    request_counts: dict[str, int] = field(default_factory=dict)
    requests_used: int = 0
    budget_left: Optional[int] = None
    window: Optional[list[str]] = None
    stop_reason: Optional[str] = None
    destination: str = ""
    dataset: str = ""
    windows: int = 1
    deleted_calls: Optional[int] = None
    pending_loaded: int = 0
    elapsed_s: Optional[float] = None
    soft_delete: bool = False  # a reconcile marks the calls Gong no longer returns (is_deleted) instead

    @property
    def rejected(self) -> int:
        """Records set aside in `_gong_rejected` (sources/gong/gate.py): Gong sent them, they cannot load."""
        return self.row_counts.get("_gong_rejected", 0)


def run_sync(
    resources: Sequence[str],
    start: Optional[str] = None,
    end: Optional[str] = None,
    full_refresh: bool = False,
    destination: Any = "duckdb",
    dataset: str = DEFAULT_DATASET,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    pipelines_dir: Optional[str] = None,
    source_options: Optional[dict[str, Any]] = None,
    reconcile: bool = False,
    reconcile_days: float = DEFAULT_RECONCILE_DAYS,
    window_days: float = DEFAULT_WINDOW_DAYS,
    progress: Any = None,
    drop_pending: bool = False,
    window_requests: int = DEFAULT_WINDOW_REQUESTS,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    max_requests_per_day: Optional[int] = None,
    soft_delete: bool = False,
) -> SyncResult:
    """Runs one sync and returns what it did; raises UserError (UsageError for a bad argument or setting) with
    one sentence for the user.

    `resources` are catalog names (`sources.gong.catalog.resource_names()`); `start`/`end` bound a backfill
    (end exclusive; default: resume from the state, up to now). `destination` is a dlt destination or its
    name ("duckdb": the file gong_warehouse.duckdb). `source_options` are passed to `gong_source` (e.g.
    `client`, `lookback_days`, `company_timezone`). A range longer than `window_days` is cut into windows of
    about `window_requests` requests that each load and commit on their own, and each window's calls load
    in chunks of `chunk_pages` pages. `reconcile` re-reads `reconcile_days` and deletes the calls Gong no
    longer returns there. `drop_pending` discards what an interrupted run left unloaded instead of loading
    it (its windows are read again, as their state never committed). `max_requests_per_day` is the share of
    the company's daily requests this sync may spend, counted with every other run of the company's day (the
    daily budget, SOURCES__GONG__DAILY_BUDGET, when not given); a run that reaches it stops early. With
    `soft_delete`, a reconcile marks the vanished calls and their rows (`is_deleted`, `deleted_at`) instead of
    deleting them.

    Holds a lock so that two runs of the same pipeline never overlap, and counts every request in the
    company's daily ledger (kept beside dlt's pipelines), so the budget spans the runs of a day.
    """
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.run_lock import RunLock, RunLockedError
    from pipelines.runner import SyncRunner
    from sources.gong import GongError, GongStopRun

    began = time.monotonic()
    check_arguments(resources, start, end, window_days, window_requests, chunk_pages, reconcile_days)
    if max_requests_per_day is not None and max_requests_per_day <= 0:
        raise UsageError(f"--max-requests-per-day {max_requests_per_day} must be more than 0.")
    pipelines_dir = pipelines_dir or get_dlt_pipelines_dir()
    if soft_delete and not reconcile:
        raise UsageError("--soft-delete marks what a reconcile finds: give --reconcile with it.")
    result = SyncResult(dataset=dataset, destination=str(getattr(destination, "destination_name", destination)),
                        soft_delete=soft_delete)
    try:
        with RunLock(Path(pipelines_dir) / f"{pipeline_name}.gong-sync.lock", pipeline_name):
            runner = SyncRunner(resources, destination, dataset, pipeline_name, pipelines_dir, source_options or {},
                                chunk_pages, progress, result)
            if max_requests_per_day is not None:
                runner.client.settings.daily_budget = max_requests_per_day
            try:
                runner.run(start, end, full_refresh, reconcile, reconcile_days, window_days, drop_pending,
                           window_requests)
            finally:
                runner.close()
    except RunLockedError as exc:
        raise UserError(str(exc)) from None
    except GongStopRun as exc:  # before the first window loaded (e.g. the day's share spent by earlier runs)
        result.stop_reason = str(exc)
    except GongError as exc:
        raise setting_error(exc) from None
    result.elapsed_s = time.monotonic() - began
    return result


def check_arguments(resources: Sequence[str], start: Optional[str], end: Optional[str], window_days: float,
                    window_requests: int, chunk_pages: int, reconcile_days: float) -> None:
    """Raises UsageError for an argument no sync can run with (before anything is read or written)."""
    from sources.gong import GongError
    from sources.gong.catalog import resource_names
    from sources.gong.windows import parse_instant

    valid = resource_names()
    unknown = [n for n in resources if n not in valid]
    if unknown or not resources:
        raise UsageError(f"Unknown resource {', '.join(map(repr, unknown))}: choose from {', '.join(valid)}."
                         if unknown else f"No resource to sync: choose from {', '.join(valid)}.")
    for name, value in (("--window-days", window_days), ("--window-requests", window_requests),
                        ("--chunk-pages", chunk_pages)):
        if value < 0:
            raise UsageError(f"{name} {value:g} is negative: give 0 or more (see gong-sync --help).")
    if not reconcile_days > 0:
        raise UsageError(f"--reconcile-days {reconcile_days:g} must be more than 0.")
    try:
        begin = parse_instant(start, "The start date (--start)") if start else None
        finish = parse_instant(end, "The end date (--end)") if end else None
    except GongError as exc:
        raise UsageError(str(exc)) from None
    if begin is not None and finish is not None and begin >= finish:
        raise UsageError(f"The start {start} is not before the end {end}: give --start earlier than --end.")
