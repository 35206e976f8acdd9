"""`run_sync`: one sync of Gong into a warehouse, the entry point of the CLI, the demo and the benchmark.

Runs the Gong dlt source through one dlt pipeline into DuckDB (the default), Postgres, or any
destination dlt supports, configured by dlt's own keys, and returns what it did (`SyncResult`).
Arguments and settings are checked before anything is read; every failure is a `UserError` whose
message is one sentence for the user (pipelines/errors.py). The command line is pipelines/cli.py.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError, deepest_cause, step_message, step_message_generic, user_message

DEFAULT_PIPELINE_NAME = "gong"
DEFAULT_DATASET = "gong"
DEFAULT_WINDOW_DAYS = 7.0
DEFAULT_WINDOW_REQUESTS = 100
# Pages of calls (100 each, with their transcripts) loaded at most at once while a window is read ahead.
DEFAULT_CHUNK_PAGES = 10
DEFAULT_RECONCILE_DAYS = 30.0

logger = logging.getLogger("gong_sync.pipeline")


@dataclass
class SyncResult:
    """What one sync did: rows per table, requests per endpoint, window, and why it stopped early."""

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
    nested_arrow: bool = True,
) -> SyncResult:
    """Runs one sync and returns what it did; raises UserError for mistakes the user can fix.

    Holds a lock so that two runs of the same pipeline never overlap, and counts every request in
    the company's daily ledger (kept beside dlt's pipelines), so the budget spans runs of a day.
    A long range (a backfill, a first run, a resumed run) is cut into windows of `window_days`
    that each load and commit on their own. `reconcile` re-reads `reconcile_days` and deletes the
    calls Gong no longer returns there. `drop_pending` discards what an interrupted run left unloaded
    instead of finishing it (its windows are read again, as their state never committed).
    `nested_arrow=False` leaves the calls' nested tables to dlt's normalizer (sources/gong/nested.py).
    """
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.run_lock import RunLock, RunLockedError
    from sources.gong import GongError

    began = time.monotonic()
    check_arguments(resources, start, end, window_days, window_requests, chunk_pages, reconcile_days)
    pipelines_dir = pipelines_dir or get_dlt_pipelines_dir()
    try:
        with RunLock(Path(pipelines_dir) / f"{pipeline_name}.gong-sync.lock", pipeline_name):
            runner = _SyncRunner(resources, destination, dataset, pipeline_name, pipelines_dir,
                                 {"chunk_pages": chunk_pages, "nested_arrow": nested_arrow, **(source_options or {})},
                                 progress)
            try:
                result = runner.run(start, end, full_refresh, reconcile, reconcile_days, window_days, drop_pending,
                                    window_requests)
            finally:
                runner.close()
    except RunLockedError as exc:
        raise UserError(str(exc)) from None
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
    for name, value, least in (("--window-days", window_days, 0), ("--window-requests", window_requests, 0),
                               ("--chunk-pages", chunk_pages, 0)):
        if value < least:
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


def setting_error(exc: BaseException) -> UserError:
    """The UserError for an error met while setting up or running: a UsageError when a setting is invalid."""
    from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException

    from pipelines.errors import root_causes
    from sources.gong import GongConfigError

    message = user_message(exc)
    if any(isinstance(e, (GongConfigError, ConfigValueCannotBeCoercedException)) for e in root_causes(exc)):
        return UsageError(message)
    return UserError(message)


class _SyncRunner:
    """One locked sync: finishes leftovers of an interrupted run, then loads window after window."""

    def __init__(self, resources: Sequence[str], destination: Any, dataset: str, pipeline_name: str,
                 pipelines_dir: str, options: dict[str, Any], progress: Any) -> None:
        import dlt

        from sources.gong import make_client
        from sources.gong.budget import BudgetLedger

        # Transcripts arrive as Arrow tables; stamp them with the load id like every other table.
        os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
        self.resources = list(resources)
        self.destination = destination
        self.options = options
        self.own_client = options.get("client") is None
        from pipelines.destinations import check_destination, make_destination

        try:
            self.client = options.pop("client", None) or make_client()
        except Exception as exc:  # dlt wraps errors raised while resolving the configuration
            raise setting_error(exc) from None
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
        if self.client.ledger is None:
            host = re.sub(r"[^A-Za-z0-9.-]+", "_", self.client.base_url.split("://", 1)[-1])
            self.client.ledger = BudgetLedger(Path(pipelines_dir) / "gong_request_budget" / f"{host}.json")
        self.refresh: Optional[str] = None
        self.seed: Optional[dict[str, Any]] = None  # the first page of the first window, if already read
        # The calls' nested tables, built as Arrow tables by the calls resource and written into each load
        # package it extracts (sources/gong/nested.py): dlt's normalizer would take most of a sync's CPU.
        from sources.gong import NestedTables

        self.nested = NestedTables() if options.pop("nested_arrow", True) else None
        # Less fixed work per load (pipelines/load_speed.py): the DuckDB file's credentials, looked up at the
        # first load (False until then), and dlt's table chains walked once per chain.
        from pipelines.load_speed import speed_up_table_chains

        self.duckdb: Any = False
        speed_up_table_chains()
        self.result = SyncResult(dataset=dataset, destination=str(getattr(destination, "destination_name",
                                                                          destination)))

    def close(self) -> None:
        if self.own_client:
            self.client.close()

    def run(self, start: Optional[str], end: Optional[str], full_refresh: bool, reconcile: bool,
            reconcile_days: float, window_days: float, drop_pending: bool = False,
            window_requests: int = 0) -> SyncResult:
        from sources.gong.windows import parse_instant

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
        now = pendulum_now()
        end_at = parse_instant(end, "The end date (--end)") if end else now
        if reconcile and not start:
            start = (end_at - _days(reconcile_days)).isoformat()
        self.now = now.start_of("second").isoformat()
        if any(_is_windowed(n) for n in self.resources):
            windows = self._windows(start, end, now, window_days, limit=window_requests)
        else:  # whole lists only: one pass
            windows = [(start, end)]
        seen: Optional[set[str]] = set() if reconcile else None
        index = 0
        before = self._windowed_requests()
        # Reads a window's calls (and their transcripts) in the background, ahead of the pipeline: the
        # window is then loaded in chunks of pages while the rest arrives, and the next window is read
        # while the last chunk of this one is normalized and loaded.
        ahead = self._read_ahead(windows[0], self._names(0), seed=self.seed) if windows else None
        try:
            while index < len(windows):
                w_start, w_end = windows[index]
                if not self._names(index):
                    break
                if len(windows) > 1:
                    logger.info("window %d of %d: %s .. %s", index + 1, len(windows), w_start, w_end or "now")
                pages = self._chunked_pages(ahead, self._names(index), last=index == len(windows) - 1)
                chunk = 0
                while True:
                    names = self._names(index, chunk, tail=pages is not None and pages.tail_pending)
                    self._guard(lambda s=w_start, e=w_end, n=names, p=pages: self._extract(
                        self._source(s, e, n, seen, p)))
                    # A chunk that took no page means the calls were not read at all: nothing is left. A last
                    # chunk that held back the reads of its last pages is loaded first, then a tail reads them.
                    stopped = bool(self.client.stop_reason)
                    tail_next = pages is not None and pages.tail_pending and not stopped
                    done = not tail_next and (pages is None or pages.exhausted or not pages.taken or stopped)
                    if done:
                        if ahead is not None:
                            ahead.close()
                            ahead = None
                        after = self._windowed_requests()
                        windows = self._bound_by_requests(windows, index, after - before, window_requests,
                                                          window_days)
                        before = after
                        if index + 1 < len(windows) and not self.client.stop_reason:
                            ahead = self._read_ahead(windows[index + 1], self._names(index + 1))
                    self._guard(self._normalize_and_load)
                    if done or self.client.stop_reason:
                        break
                    chunk += 1
                if self.client.stop_reason and ahead is None:
                    break
                # Stopped while the next window was read ahead: what was fetched is still loaded.
                index += 1
        finally:
            if ahead is not None:
                ahead.close()
        if reconcile and seen is not None and not self.client.stop_reason:
            begin = parse_instant(start, "The start date (--start)") if start else end_at
            self._guard(lambda: self._reconcile(seen, begin.isoformat(), end_at.isoformat()))
        self._summarize(windows)
        return self.result

    def _names(self, index: int, chunk: int = 0, tail: bool = False) -> list[str]:
        """The resources a window's chunk reads: all in the first window, the windowed ones in the first
        chunk of the others (whole lists are read once per run), calls and what follows them after; the
        tail of a window only what follows the calls."""
        if tail:
            return [n for n in self.resources if _follows_calls(n)]
        if chunk:
            return [n for n in self.resources if n == "calls" or _follows_calls(n)]
        return list(self.resources) if index == 0 else [n for n in self.resources if _is_windowed(n)]

    def _chunked_pages(self, ahead: Any, names: Sequence[str], last: bool = False) -> Any:
        """Spreads a window's calls over several loads when they are read ahead; None otherwise.

        In the run's `last` window, the last chunk may leave the reads of its last pages to a tail load
        (`Prefetcher.worth_deferring`): its calls are loaded while those answers arrive. Between windows
        nothing is gained by it: the next window is read while the last chunk loads.
        """
        from sources.gong import ChunkedPages

        size = int(self.options.get("chunk_pages") or 0)
        if ahead is None or size <= 0 or not any(n == "calls" or _follows_calls(n) for n in names):
            return None
        # One resource that follows the calls decides, page by page, which pages it leaves to the tail.
        follows = "calls" in names and sum(1 for n in names if _follows_calls(n)) == 1
        return ChunkedPages(size, defer=ahead.worth_deferring if last and follows else None)

    def _first_calls_body(self, start: Optional[str], end: Optional[str]) -> Optional[dict[str, Any]]:
        """The body of the first request the calls resource sends for the window (`start`, `end`), with
        its own options and stored `synced_until`; None when that window is empty."""
        from sources.gong import first_calls_request

        options = {k: self.options[k] for k in ("include_media", "lookback_days") if k in self.options}
        lookbacks = self.options.get("lookback_days_by_resource") or {}
        if "calls" in lookbacks:
            options["lookback_days"] = lookbacks["calls"]
        synced_until = None if self.refresh else _calls_state(self.pipeline).get("synced_until")
        return first_calls_request(start_date=start, end_date=end, now=self.now, synced_until=synced_until,
                                   **options)

    def _read_ahead(self, window: tuple[Optional[str], Optional[str]], names: Sequence[str],
                    seed: Optional[dict[str, Any]] = None) -> Any:
        """Starts reading the calls of `window` in the background (see sources/gong/prefetch.py)."""
        from sources.gong import prefetch_calls

        if not self.options.get("prefetch", True):
            return None
        try:
            return prefetch_calls(self.client, names, self._first_calls_body(*window), seed=seed,
                                  schema=self._schema_copy(names))
        except Exception as exc:  # reading ahead only saves time: never fail a run for it
            logger.debug("not reading ahead: %s", type(exc).__name__)
            return None

    def _schema_copy(self, names: Sequence[str]) -> Any:
        """A copy of the schema the calls will be extracted with, for the reader ahead to split each page of
        calls into its rows and nested tables as it arrives (its thread's CPU time is mostly free, the
        pipeline's is not); None when the calls' nested tables are left to dlt's normalizer."""
        import dlt

        from sources.gong import apply_contract

        if self.nested is None or "calls" not in names or not self._nested_as_parquet():
            return None
        # A full refresh extracts into a new schema; otherwise the pipeline's own goes on.
        stored = self.pipeline.schemas["gong"] if not self.refresh and "gong" in self.pipeline.schemas else None
        schema = stored.clone() if stored is not None else dlt.Schema("gong")
        apply_contract(schema)
        return schema

    def _source(self, start: Optional[str], end: Optional[str], names: Sequence[str],
                seen: Optional[set[str]] = None, pages: Any = None) -> Any:
        from sources.gong import gong_source

        # The runner decides each window's bounds; the configured start date only places the first.
        options = {k: v for k, v in self.options.items()
                   if k not in ("start_date", "end_date", "prefetch", "chunk_pages")}
        options.setdefault("now", getattr(self, "now", None))
        try:
            # Nested tables are built only when the calls themselves are loaded (transcripts or access lists
            # read without them would load a chain of tables without its root), into Parquet files.
            nested = self.nested if "calls" in names and self._nested_as_parquet() else None
            source = gong_source(start_date=start, end_date=end, client=self.client, seen_call_ids=seen,
                                 calls_pages=pages, nested_tables=nested, **options)
        except Exception as exc:  # dlt wraps errors raised while the source is built
            raise setting_error(exc) from None
        return source.with_resources(*names) if names else source.with_resources()

    def _windows(self, start: Optional[str], end: Optional[str], now: Any, window_days: float,
                 limit: int = 0) -> list[tuple[Optional[str], Optional[str]]]:
        """Cuts [start, end) into windows of `window_days`; one window when the range is short.

        With a request bound (`limit`), a longer range is cut into equal windows of about `limit`
        requests each, counted by one request to Gong when only calls and what follows them are read;
        otherwise a first window of one day measures how dense the data is (see `_bound_by_requests`).

        The bounds the user gave are passed on as given (a bare date means a company day to the
        date-only endpoints); an open start resumes from the stored state, an open end is now.
        """
        from sources.gong.windows import parse_instant

        end_at = parse_instant(end, "The end date (--end)") if end else now
        if start:
            begin = parse_instant(start, "The start date (--start)").start_of("second")
        else:
            begin, from_state = self._resume_point(now)
            begin = begin.start_of("second")
            if not from_state:  # a first run starts where configured, for every resource alike
                start = begin.isoformat()
        if window_days <= 0 or end_at - begin <= _days(window_days):
            return [(start, end)]
        bounds: list[tuple[Optional[str], Optional[str]]] = []
        count = self._windows_by_count(start, end, limit) if limit else None
        if count is not None:
            span = (end_at - begin).total_seconds()
            cuts = [begin.add(seconds=round(span * i / count)) for i in range(count)] + [end_at]
            bounds = [(cuts[i].isoformat(), cuts[i + 1].isoformat()) for i in range(count)]
        else:
            cursor = begin
            # With a request bound, a first window of one day measures how dense the data is (see below).
            size = _days(min(1.0, window_days)) if limit else _days(window_days)
            while cursor < end_at:
                nxt = min(cursor + size, end_at)
                bounds.append((cursor.isoformat(), nxt.isoformat()))
                cursor = nxt
                size = _days(window_days)
        bounds[0] = (start or bounds[0][0], bounds[0][1])
        bounds[-1] = (bounds[-1][0], end)
        return bounds

    def _windows_by_count(self, start: Optional[str], end: Optional[str], limit: int) -> Optional[int]:
        """How many windows of about `limit` requests the range takes, from Gong's count of its calls.

        The count is the calls resource's own first request over the whole range (`start`, `end` as the
        first window would get them): when one window will do, that answer is its first page. None when
        the count cannot tell (other windowed resources are read too, or the request failed for a reason
        the first window will meet and report again).
        """
        from sources.gong import GongStopRun, count_calls

        windowed = [n for n in self.resources if _is_windowed(n)]
        if "calls" not in windowed or not all(n == "calls" or _follows_calls(n) for n in windowed):
            return None
        body = self._guard(lambda: self._first_calls_body(start, end))
        if body is None:
            return None

        def count() -> Any:
            try:
                return count_calls(self.client, body)
            except GongStopRun:  # the quota or a long Retry-After: the first window stops the run cleanly
                return None

        counted = self._guard(count)
        if counted is None:
            return None
        total, pages, answer = counted
        # Each page of calls is followed by one batch request per resource that reads per page of calls.
        requests = pages * len(windowed)
        count = max(1, math.ceil(requests / limit))
        if count == 1 and self.options.get("prefetch", True):
            self.seed = answer
        logger.info("%d calls in the range: about %d requests, read in %d window(s)", total, requests, count)
        return count

    def _windowed_requests(self) -> int:
        """Requests so far to the endpoints whose cost grows with the window (whole lists excluded)."""
        from sources.gong.catalog import BY_NAME

        paths = {BY_NAME[n].path for n in self.resources if _is_windowed(n)}
        return sum(count for path, count in self.client.request_counts.items() if path in paths)

    @staticmethod
    def _bound_by_requests(windows: list[tuple[Optional[str], Optional[str]]], index: int, used: int,
                           limit: int, window_days: float) -> list[tuple[Optional[str], Optional[str]]]:
        """Re-cuts the windows after `index` so that each takes about `limit` requests.

        The requests a window took measure how dense the data is; the rest of the range is cut into
        equal windows of the size that density allows: at least an hour, and at most `window_days` or
        four times the window just measured, whichever is longer (sparse data makes longer windows, and
        fewer windows mean fewer partial pages, but one quiet day is no proof of a quiet month). A window
        is what a crash or a spent quota can cost.
        """
        if not limit or index + 1 >= len(windows):
            return windows
        import pendulum

        def at(value: Optional[str]) -> Any:
            return pendulum.parse(value).in_timezone("UTC") if value else pendulum_now()

        span = (at(windows[index][1]) - at(windows[index][0])).total_seconds()
        longest = max(_days(window_days).total_seconds(), 4 * span)
        size = span * (limit / used) if used else _days(window_days).total_seconds()
        size = min(max(size, 3600.0), longest)
        rest_start, last_end = at(windows[index + 1][0]), windows[-1][1]
        rest = (at(last_end) - rest_start).total_seconds()
        if rest <= 0:
            return windows
        count = max(1, math.ceil(rest / size - 1e-9))
        cuts = [rest_start.add(seconds=round(rest * i / count)) for i in range(count + 1)]
        bounds: list[tuple[Optional[str], Optional[str]]] = [
            (cuts[i].isoformat(), cuts[i + 1].isoformat()) for i in range(count)]
        bounds[0] = (windows[index + 1][0], bounds[0][1])
        bounds[-1] = (bounds[-1][0], last_end)
        if len(bounds) != len(windows) - index - 1:
            logger.info("window %d took %d requests (bound %d): the rest of the range is cut into %d windows",
                        index + 1, used, limit, len(bounds))
        return windows[:index + 1] + bounds

    def _resume_point(self, now: Any) -> tuple[Any, bool]:
        """Where an open run starts, and whether that comes from the stored state.

        That is the stored calls window minus the lookback, or on a first run the configured
        start date (default: 30 days ago).
        """
        import dlt
        import pendulum

        from sources.gong.settings import DEFAULT_HISTORY_DAYS, DEFAULT_LOOKBACK_DAYS
        from sources.gong.windows import parse_instant

        if self._warehouse_exists():
            self._guard(self.pipeline.sync_destination)
        calls = {} if self.refresh else _calls_state(self.pipeline)
        lookback = self.options.get("lookback_days") or dlt.config.get("sources.gong.lookback_days", float)
        lookback = DEFAULT_LOOKBACK_DAYS if lookback is None else float(lookback)
        if calls.get("synced_until"):
            return pendulum.parse(calls["synced_until"]).in_timezone("UTC") - _days(lookback), True
        configured = self.options.get("start_date") or dlt.config.get("sources.gong.start_date", str)
        if configured:
            return parse_instant(configured, "start_date"), False
        return now - _days(DEFAULT_HISTORY_DAYS), False

    def _finish_pending(self) -> None:
        """Loads what an interrupted run left extracted or normalized, before anything new is read.

        Also restores the pipeline's state from the destination when the local copy is missing or older
        (dlt's run() does that once per pipeline; the windows are then extracted, normalized and
        loaded step by step).
        """
        if not self.pipeline.has_pending_data:
            if self._warehouse_exists():  # a DuckDB file not yet written holds no state to restore
                self.pipeline.run()
        else:
            count = len(self.pipeline.list_extracted_load_packages()) + len(
                self.pipeline.list_normalized_load_packages())
            logger.info("finishing %d load package(s) left by an interrupted run", count)
            # run() with no data loads exactly what is pending (and restores the state first if needed).
            try:
                self.pipeline.run()
            except Exception as exc:
                # A kill can land after the warehouse committed a job but before dlt recorded it, and the
                # job then cannot run twice (e.g. a unique key in a staging table). Nothing of such a
                # package reached the final tables' committed state, so drop it: its window is read again.
                logger.warning("the package an interrupted run left could not be completed (%s); it was "
                               "dropped and its window will be read again", deepest_cause(exc).__class__.__name__)
                self.pipeline.abort_packages()
                self.pipeline.run()
                return
            self.result.pending_loaded = count

    def _warehouse_exists(self) -> bool:
        """False for a DuckDB file that does not exist yet: nothing to restore from it, and connecting would
        create it (a run that fails before its first load leaves no empty file behind)."""
        from pipelines.destinations import duckdb_file

        database = duckdb_file(self.pipeline)
        return database is None or Path(database).exists()

    def _nested_as_parquet(self) -> bool:
        """Whether the calls' nested tables are written as Parquet files (sources/gong/nested.py): only for a
        destination that loads Parquet files (DuckDB; CSV would read their empty strings back as NULL)."""
        from pipelines.destinations import is_duckdb

        return is_duckdb(self.pipeline.destination)

    def _with_file_formats(self, source: Any) -> Any:
        """Sets the file format of every selected table for this destination (pipelines/destinations.py), also
        over a format an earlier run stored in the schema."""
        from pipelines.destinations import file_format
        from sources.gong.catalog import BY_NAME

        for name, resource in source.selected_resources.items():
            endpoint = BY_NAME.get(name)
            resource.apply_hints(file_format=file_format(self.pipeline.destination,
                                                         arrow=endpoint is not None and endpoint.decode is not None))
        return source

    def _extract(self, source: Any) -> None:
        try:
            self.pipeline.extract(self._with_file_formats(source), refresh=self.refresh)
        finally:
            if self.nested is not None:
                self.nested.take()  # nothing of a failed extract is left for the next one
        self.refresh = None

    def _normalize_and_load(self) -> None:
        self._add_counts(self.pipeline.normalize())
        self._load()

    def _load(self) -> None:
        if not self.pipeline.list_normalized_load_packages():
            self.pipeline.load()  # nothing to hold the database open for
            return
        with self._loading():
            self.pipeline.load()

    def _loading(self) -> Any:
        """DuckDB held open for the length of a load (pipelines/load_speed.py); nothing for other warehouses."""
        from pipelines.load_speed import duckdb_credentials, duckdb_load_session

        if self.duckdb is False:
            try:
                self.duckdb = duckdb_credentials(self.pipeline)
            except Exception as exc:  # only a saving: the load itself reports what is wrong
                logger.debug("DuckDB credentials not found: %s", type(exc).__name__)
                self.duckdb = None
        return duckdb_load_session(self.duckdb)

    def _reconcile(self, seen: set[str], start: str, end: str) -> None:
        """Deletes the calls stored for [start, end) that Gong no longer returns, with all their rows."""
        from sources.gong import gong_tombstones

        stored = self._stored_call_ids(start, end)
        gone = sorted(stored - seen)
        self.result.deleted_calls = len(gone)
        logger.info("reconcile: %d calls stored in the window, %d returned by Gong, %d to delete",
                    len(stored), len(seen & stored), len(gone))
        if gone:
            with self._loading():
                self.pipeline.run(self._with_file_formats(gong_tombstones(gone)))

    def _stored_call_ids(self, start: str, end: str) -> set[str]:
        from dlt.destinations.exceptions import DatabaseUndefinedRelation

        try:
            with self.pipeline.sql_client() as sql:
                table = sql.make_qualified_table_name("calls")
                rows = sql.execute_sql(f"SELECT id FROM {table} WHERE started >= %s AND started < %s",
                                       _as_datetime(start), _as_datetime(end))
        except DatabaseUndefinedRelation:
            return set()
        return {str(r[0]) for r in rows or []}

    def _add_counts(self, info: Any) -> None:
        for table, count in (dict(info.row_counts) if info else {}).items():
            if not table.startswith("_dlt"):
                self.result.row_counts[table] = self.result.row_counts.get(table, 0) + count

    def _summarize(self, windows: list[tuple[Optional[str], Optional[str]]]) -> None:
        state = _calls_state(self.pipeline)
        result = self.result
        result.request_counts = dict(self.client.request_counts)
        result.requests_used = self.client.requests_used
        result.budget_left = self.client.budget_left
        result.stop_reason = self.client.stop_reason
        result.windows = len(windows)
        if "calls" in self.resources or "transcripts" in self.resources:
            result.window = state.get("last_window")
            if len(windows) > 1 and windows[0][0]:
                result.window = [windows[0][0], (state.get("last_window") or [None, windows[-1][1]])[1]]
        if self.pipeline.destination:
            result.destination = self.pipeline.destination.destination_name

    def _guard(self, step: Any) -> Any:
        """Runs one pipeline step, turning every failure into one sentence for the user."""
        from dlt.common.configuration.exceptions import ConfigurationException
        from dlt.pipeline.exceptions import PipelineStepFailed

        from sources.gong import GongError

        try:
            return step()
        except UserError:
            raise
        except PipelineStepFailed as exc:
            raise UserError(step_message(exc)) from None
        except (GongError, ConfigurationException) as exc:
            raise setting_error(exc) from None
        except Exception as exc:
            raise UserError(step_message_generic(exc, self.destination)) from None


def _calls_state(pipeline: Any) -> dict[str, Any]:
    return pipeline.state.get("sources", {}).get("gong", {}).get("resources", {}).get("calls", {})


def _follows_calls(name: str) -> bool:
    """True for the resources read per page of calls (transcripts, call user access)."""
    from sources.gong.catalog import BY_NAME

    endpoint = BY_NAME.get(name)
    return endpoint is not None and endpoint.parent == "calls"


def _is_windowed(name: str) -> bool:
    from sources.gong.catalog import BY_NAME

    endpoint = BY_NAME[name]
    if endpoint.window is not None and endpoint.window.to_param is None:
        return False  # a "since" read already reaches the present: it runs once, with the first window
    return endpoint.window is not None or endpoint.kind in ("calls", "transcripts", "call_batches", "coaching")


def _days(days: float) -> Any:
    import pendulum

    return pendulum.duration(seconds=int(float(days) * 86400))


def _as_datetime(value: str) -> Any:
    import pendulum

    return pendulum.parse(value).in_timezone("UTC")


def pendulum_now() -> Any:
    """The current UTC time, to the second."""
    import pendulum

    return pendulum.now("UTC").start_of("second")
