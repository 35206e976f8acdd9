"""The thin runner of one sync: for each window of the plan, and each chunk of its calls, extract,
normalize, load; each load commits its data with the state it advanced.

Before the first window it loads what an interrupted run left behind (or drops it, when asked), and
plans the run (`sources/gong/plan.py`): where it starts, and, for a long range, how it is cut into
windows (with one request counting the range's calls when that tells what it costs). The calls, and
what follows them, are read by a `CallsFeed` (`sources/gong/feed.py`) ahead of the loads; everything
else by the resources while they are extracted. Every failure leaves here as one sentence (`UserError`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import (
    UserError,
    deepest_cause,
    scrub,
    setting_error,
    step_message,
    step_message_generic,
    user_message,
)

logger = logging.getLogger("gong_sync.pipeline")

# dlt's normalizer runs in worker processes instead of this one: it is pure Python, and here it held the
# interpreter's lock away from the threads reading Gong (their answers came ~4-6 s late). Same hour, 10,240
# calls at 3 requests/second: 1.12-1.14 of requests/3 with 2 workers, 1.19-1.24 with none; rate limit off,
# 128 against 117 calls/s (bench/RESULTS.md).
NORMALIZE_WORKERS = 2


class LoadJobRetryNote(logging.Filter):
    """Turns dlt's log of a load job it retries (a traceback, then the traceback again as the retry's message)
    into one progress line, e.g. when the destination dropped the connection; when dlt gives up, the run ends
    in one sentence (pipelines/errors.py), and dlt's warning that the package was not fully loaded is dropped.

    Matches dlt 1.x's wording ("Transient exception in job <id> in file ...", "Job for <id> retried in load
    ...", "Package <id> was not fully loaded"); worded otherwise, dlt's own lines show again, nothing else
    changes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Transient exception in job "):
            table = message[len("Transient exception in job "):].split(".", 1)[0]
            error = record.exc_info[1] if record.exc_info else None
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            logger.info("the destination failed to load %s (%s); retrying", table, scrub(reason))
            return False
        return not (message.startswith("Job for ") and " retried in load " in message) and \
            not (message.startswith("Package ") and " was not fully loaded" in message)


def note_load_job_retries() -> None:
    """Installs `LoadJobRetryNote` on dlt's logger (once)."""
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(f, LoadJobRetryNote) for f in dlt_logger.filters):
        dlt_logger.addFilter(LoadJobRetryNote())


class SyncRunner:
    """One locked sync of `resources` into `destination`: build it, `run` it, `close` it."""

    def __init__(self, resources: Sequence[str], destination: Any, dataset: str, pipeline_name: str,
                 pipelines_dir: str, options: dict[str, Any], chunk_pages: int, progress: Any,
                 result: Any) -> None:
        import dlt

        from pipelines.destinations import check_destination, make_destination, note_destination_switches
        from sources.gong import make_client
        from sources.gong.budget import attach_company_limits

        self.resources = list(resources)
        self.destination = destination
        self.options = dict(options)
        # The records the source's row gates set aside (sources/gong/gate.py), loaded with each unit.
        self.rejected: list[dict[str, Any]] = []
        self.options["rejected"] = self.rejected
        self.chunk_pages = chunk_pages
        self.result = result
        self.own_client = self.options.get("client") is None
        try:
            self.client = self.options.pop("client", None) or make_client()
        except Exception as exc:  # dlt wraps errors raised while resolving the configuration
            raise setting_error(exc) from None
        note_destination_switches()
        note_load_job_retries()
        try:
            self.pipeline = dlt.pipeline(pipeline_name=pipeline_name,
                                         destination=make_destination(destination, dataset, pipeline_name),
                                         dataset_name=dataset, pipelines_dir=pipelines_dir, progress=progress)
            check_destination(self.pipeline)
        except UserError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise UserError(f"The destination {destination!r} could not be set up: {user_message(exc)}") from None
        attach_company_limits(self.client, pipelines_dir)
        self.refresh: Optional[str] = None
        self.now: Optional[str] = None
        # A client given by the caller may have served earlier runs: the result counts this run's requests.
        self._counted_before = (self.client.requests_used, dict(self.client.request_counts))

    def close(self) -> None:
        if self.own_client:
            self.client.close()

    # ------------------------------------------------------------------------------------------- the run

    def run(self, start: Optional[str], end: Optional[str], full_refresh: bool, reconcile: bool,
            reconcile_days: float, window_days: float, drop_pending: bool, window_requests: int) -> Any:
        """Runs the sync and returns the result object, filled in."""
        import pendulum

        from pipelines import reconcile as reconciling
        from pipelines.destinations import check_lake
        from sources.gong import GongError
        from sources.gong.windows import parse_instant

        check_lake(self.pipeline.destination, reconcile)
        self._source(start, end, [])  # the source's settings are checked before anything is read
        if drop_pending and self.pipeline.has_pending_data:
            logger.info("dropping the load packages an interrupted run left behind")
            # Restores the local state to before those packages; an aborted package being loaded is
            # closed by the next run() below.
            self._guard(self.pipeline.abort_packages)
            self._guard(self.pipeline.run)
        self._guard(self._finish_pending)
        # A full refresh drops the source's tables and state with the first window it loads.
        self.refresh = "drop_sources" if full_refresh else None
        now = pendulum.now("UTC").start_of("second")
        self.now = now.isoformat()
        finish = parse_instant(end, "The end date (--end)") if end else now
        if reconcile and not start:
            start = (finish - pendulum.duration(seconds=int(reconcile_days * 86400))).isoformat()
        windows, first_page = self._guard(lambda: self._plan(start, end, now, finish, window_days, window_requests))
        seen: Optional[set[str]] = set() if reconcile else None
        feed = self._feed(windows, first_page, seen)
        try:
            for window in windows:
                if len(windows) > 1:
                    logger.info("window %d of %d: %s .. %s", window.index + 1, len(windows),
                                window.calls_start.isoformat(), window.calls_end.isoformat())
                self._load_window(window, feed)
                if self.client.stop_reason:
                    break
        except GongError as exc:  # a read of the feed failed (met where the pipeline takes its pages)
            raise setting_error(exc) from None
        except UserError:
            raise
        except Exception as exc:
            raise UserError(step_message_generic(exc, self.destination)) from None
        finally:
            if feed is not None:
                feed.close()
        if reconcile and seen is not None and not self.client.stop_reason:
            begin = windows[0].calls_start
            self.result.deleted_calls = self._guard(lambda: reconciling.delete_vanished_calls(
                self.pipeline, seen, begin, finish, soft=self.result.soft_delete, now=now))
        self._summarize(windows)
        return self.result

    def _load_window(self, window: Any, feed: Any) -> None:
        """Loads one window: its first chunk with every resource of the window, the others with the calls
        and what follows them."""
        from sources.gong.catalog import BY_NAME

        follows = [n for n in window.resources if BY_NAME[n].read_by_feed]
        chunks = feed.chunks(window.index) if feed is not None and follows else iter([None])
        for number, chunk in enumerate(chunks):
            names = window.resources if number == 0 else follows
            self._guard(lambda c=chunk, n=names: self._extract(self._source(window.start, window.end, n, c)))
            self._guard(self._normalize_and_load)
            if self.client.stop_reason:
                return

    def _plan(self, start: Optional[str], end: Optional[str], now: Any, finish: Any, window_days: float,
              window_requests: int) -> tuple[list[Any], Optional[dict[str, Any]]]:
        """The run's windows, and the first page of calls when counting read it for the one window."""
        from sources.gong.plan import counted, plan_windows, resume_point, windowed
        from sources.gong.settings import TRANSCRIPT_BATCH_SIZE
        from sources.gong.windows import parse_instant

        if self._warehouse_exists():
            self.pipeline.sync_destination()  # the state stored with the data, if newer than the local one
        calls = {} if self.refresh else _calls_state(self.pipeline)
        configured = self._setting("start_date", str)
        begin, from_state = resume_point(parse_instant(start, "The start date (--start)") if start else None,
                                         calls.get("synced_until"), self._calls_lookback(),
                                         parse_instant(configured, "start_date") if configured else None, now)
        if not start and not from_state:
            start = begin.isoformat()  # a first run starts where configured, for every resource alike
        total = first_page = None
        page_size = TRANSCRIPT_BATCH_SIZE
        if windowed(self.resources) and counted(self.resources) and window_requests > 0 and window_days > 0 and \
                (finish - begin).total_seconds() > window_days * 86400:
            total, first_page = self.client.count_calls(begin, finish, self._include_media())
            if first_page is not None and (first_page.get("records") or {}).get("cursor"):
                page_size = max(1, len(first_page.get("calls") or []))
            logger.info("%d calls in the range", total)
        windows = plan_windows(self.resources, start, end, begin, finish, window_days, window_requests, total,
                               page_size)
        if not windowed(self.resources):
            windows = windows[:1]
        return windows, first_page if len(windows) == 1 else None

    def _feed(self, windows: list[Any], first_page: Optional[dict[str, Any]], seen: Optional[set[str]]) -> Any:
        """Starts reading the calls of every window, and what follows them; None when no calls are read."""
        from sources.gong import CallsFeed
        from sources.gong.catalog import BY_NAME

        if not any(BY_NAME[n].read_by_feed for n in self.resources):
            return None
        followers = [n for n in self.resources if BY_NAME[n].follows_calls]
        return CallsFeed(self.client, [(w.calls_start, w.calls_end) for w in windows], followers,
                         include_media=self._include_media(), chunk_pages=self.chunk_pages, first_page=first_page,
                         seen_call_ids=seen).start()

    # ------------------------------------------------------------------------------------------ the steps

    def _source(self, start: Optional[str], end: Optional[str], names: Sequence[str], chunk: Any = None) -> Any:
        from sources.gong import gong_source

        options = {k: v for k, v in self.options.items() if k not in ("start_date", "end_date")}
        options.setdefault("now", self.now)
        try:
            source = gong_source(start_date=start, end_date=end, client=self.client, chunk=chunk, **options)
        except Exception as exc:  # dlt wraps errors raised while the source is built
            raise setting_error(exc) from None
        return source.with_resources(*names) if names else source.with_resources()

    def _with_file_formats(self, source: Any) -> Any:
        """Sets the file format of every selected table for this destination (pipelines/destinations.py), also
        over a format an earlier run stored in the schema."""
        from pipelines.destinations import as_lake_table, file_format
        from sources.gong.catalog import BY_NAME

        for name, resource in source.selected_resources.items():
            endpoint = BY_NAME.get(name)
            resource.apply_hints(file_format=file_format(self.pipeline.destination,
                                                         arrow=endpoint is not None and endpoint.decode is not None))
            if endpoint is not None:  # a lake's tables are Delta tables, merged by upsert
                as_lake_table(resource, source.schema, self.pipeline.destination, endpoint.primary_key,
                              endpoint.merge_key or ())
        return source

    def _extract(self, source: Any) -> None:
        from pipelines.destinations import as_lake_table
        from sources.gong.gate import rejected_resource

        self.pipeline.extract(self._with_file_formats(source), refresh=self.refresh)
        self.refresh = None
        if self.rejected:
            # Into the source's schema, with the unit's own rows (normalized and loaded together).
            rejected = as_lake_table(rejected_resource(self.rejected), source.schema, self.pipeline.destination)
            self.pipeline.extract(rejected, schema=source.schema)
            self.rejected.clear()

    def _normalize_and_load(self) -> None:
        from pipelines.destinations import drop_replaced_rows

        info = self.pipeline.normalize(workers=NORMALIZE_WORKERS)
        for table, count in (dict(info.row_counts) if info else {}).items():
            if not table.startswith("_dlt"):
                self.result.row_counts[table] = self.result.row_counts.get(table, 0) + count
        drop_replaced_rows(self.pipeline, self.pipeline.load())  # on a lake (elsewhere the merge did)

    def _finish_pending(self) -> None:
        """Loads what an interrupted run left extracted or normalized, before anything new is read.

        Also restores the pipeline's state from the destination when the local copy is missing or older
        (dlt's run() does that once per pipeline; the windows are then extracted, normalized and
        loaded step by step).
        """
        from pipelines.destinations import drop_replaced_rows

        if not self.pipeline.has_pending_data:
            if self._warehouse_exists():  # a DuckDB file not yet written holds no state to restore
                self.pipeline.run()
            return
        count = len(self.pipeline.list_extracted_load_packages()) + len(self.pipeline.list_normalized_load_packages())
        logger.info("finishing %d load package(s) left by an interrupted run", count)
        # run() with no data loads exactly what is pending (and restores the state first if needed).
        try:
            info = self.pipeline.run()
        except Exception as exc:
            # A kill can land after the warehouse committed a job but before dlt recorded it, and the
            # job then cannot run twice (e.g. a unique key in a staging table). Nothing of such a
            # package reached the final tables' committed state, so drop it: its window is read again.
            logger.warning("the package an interrupted run left could not be completed (%s); it was "
                           "dropped and its window will be read again", deepest_cause(exc).__class__.__name__)
            self.pipeline.abort_packages()
            self.pipeline.run()
            return
        drop_replaced_rows(self.pipeline, info)  # on a lake (elsewhere the merge did)
        self.result.pending_loaded = count

    def _warehouse_exists(self) -> bool:
        """False for a DuckDB file that does not exist yet: nothing to restore from it, and connecting would
        create it (a run that fails before its first load leaves no empty file behind)."""
        from pipelines.destinations import duckdb_file

        database = duckdb_file(self.pipeline)
        return database is None or Path(database).exists()

    def _setting(self, name: str, kind: type) -> Any:
        """A source setting as the source will see it: given to run_sync, else dlt's configuration."""
        import dlt

        if name in self.options:
            return self.options[name]
        return dlt.config.get(f"sources.gong.{name}", kind)

    def _calls_lookback(self) -> float:
        from sources.gong.settings import DEFAULT_LOOKBACK_DAYS

        by_resource = self._setting("lookback_days_by_resource", dict) or {}
        lookback = by_resource.get("calls", self._setting("lookback_days", float))
        return DEFAULT_LOOKBACK_DAYS if lookback is None else float(lookback)

    def _include_media(self) -> bool:
        return bool(self._setting("include_media", bool))

    def _summarize(self, windows: list[Any]) -> None:
        from sources.gong.catalog import BY_NAME

        state = _calls_state(self.pipeline)
        result = self.result
        used, counts = self._counted_before
        result.request_counts = {path: n - counts.get(path, 0) for path, n in self.client.request_counts.items()
                                 if n - counts.get(path, 0)}
        result.requests_used = self.client.requests_used - used
        result.budget_left = self.client.budget_left
        result.stop_reason = self.client.stop_reason
        result.windows = len(windows)
        if any(BY_NAME[n].read_by_feed for n in self.resources):
            result.window = state.get("last_window")
            if len(windows) > 1 and result.window:
                result.window = [windows[0].calls_start.isoformat(), result.window[1]]
        if self.pipeline.destination:
            result.destination = self.pipeline.destination.destination_name

    def _guard(self, step: Callable[[], Any]) -> Any:
        """Runs one pipeline step, turning every failure into one sentence for the user."""
        from dlt.common.configuration.exceptions import ConfigurationException
        from dlt.pipeline.exceptions import PipelineStepFailed

        from sources.gong import GongError, GongStopRun

        try:
            return step()
        except (UserError, GongStopRun):  # a spent budget stops the run early: run_sync says so (exit 3)
            raise
        except PipelineStepFailed as exc:
            raise UserError(step_message(exc)) from None
        except (GongError, ConfigurationException) as exc:
            raise setting_error(exc) from None
        except Exception as exc:
            raise UserError(step_message_generic(exc, self.destination)) from None


def _calls_state(pipeline: Any) -> dict[str, Any]:
    return pipeline.state.get("sources", {}).get("gong", {}).get("resources", {}).get("calls", {})
