"""dlt source for the Gong API v2.

`gong_source` returns one resource per entry of the endpoint catalog (`catalog.py`). Entries with
a parent (trackers per workspace, folder calls per folder, ...) become dlt transformers fed by
the parent's pages; entries with a window read incrementally from dlt state (the exclusive end of
the last completed window, minus a lookback, because Gong adds and edits data late); everything is
merged on its key, and a re-synced parent's child rows are replaced. Calls are read from
POST /v2/calls/extensive with their full content; transcripts follow each page of calls in
batches of up to 100 non-private call ids, as Arrow tables of one row per sentence.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import dlt
import pendulum
import pyarrow as pa
import yaml
from dlt.common.configuration import with_config
from dlt.sources import DltResource

from .catalog import BY_NAME, CATALOG, DELETED_FLAG, Endpoint
from .client import ClientSettings, GongClient, GongConfigError, GongError, GongStopRun
from .nested import NestedTables, schema_agrees, split_nested, write_into_current_package
from .prefetch import Answer, ChunkedPages, Prefetcher, request_key
from .rows import TRANSCRIPT_SCHEMA, transcript_table
from .settings import (
    CALLS_CONTENT_SELECTOR,
    DEFAULT_DAILY_BUDGET,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_RETRY_AFTER_S,
    DEFAULT_RATE_LIMIT,
    TRANSCRIPT_BATCH_SIZE,
)
from .windows import SAFEST_TIMEZONE, Request, SyncWindow, literal_date, parse_instant

__all__ = ["gong_source", "gong_tombstones", "make_client", "prefetch_calls", "ChunkedPages", "GongClient",
           "GongConfigError", "GongError", "NestedTables", "SyncWindow"]

logger = logging.getLogger("gong_sync.source")

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "schemas" / "gong.schema.yaml"


@functools.lru_cache(maxsize=4)
def _read_contract(path: str, mtime_ns: int) -> dict[str, Any]:
    """The parsed contract (a sync builds the source once per window or chunk: parse it once)."""
    return yaml.safe_load(Path(path).read_text()) or {}


def apply_contract(schema: dlt.Schema, path: Path = CONTRACT_PATH) -> None:
    """Adds the contract's tables and columns (the exported dlt schema) to the source's schema.

    A table the schema already holds exactly as the contract says is left as it is (the same result as
    updating it; a sync builds its source once per chunk, and dlt's update of ~60 tables takes ~40 ms)."""
    if not path.exists():
        return
    contract = _read_contract(str(path), path.stat().st_mtime_ns)
    for name, table in (contract.get("tables") or {}).items():
        if not name.startswith("_dlt"):
            columns = {col: {**spec, "name": col} for col, spec in (table.get("columns") or {}).items()}
            # Never claim a table has seen data: dlt creates a table in the warehouse when it first does.
            # Nor a file format: the runner chooses one per destination (pipelines/destinations.py).
            hints = {k: v for k, v in table.items() if k not in ("x-normalizer", "columns", "file_format")}
            if not _holds(schema.tables.get(name), hints, columns):
                schema.update_table(copy.deepcopy({**hints, "name": name, "columns": columns}))


def _holds(table: Optional[dict[str, Any]], hints: dict[str, Any], columns: dict[str, dict[str, Any]]) -> bool:
    """Whether a schema's `table` already has every one of the contract's `hints` and column properties."""
    if table is None or any(table.get(k) != v for k, v in hints.items()):
        return False
    have = table.get("columns") or {}
    return all(col in have and all(have[col].get(k) == v for k, v in spec.items()) for col, spec in columns.items())


@dlt.source(name="gong")
def gong_source(
    base_url: Optional[str] = dlt.config.value,
    access_key: Optional[str] = dlt.secrets.value,
    access_key_secret: Optional[str] = dlt.secrets.value,
    bearer_token: Optional[str] = dlt.secrets.value,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    company_timezone: str = SAFEST_TIMEZONE,
    activity_period: str = "WEEK",
    rate_limit: Optional[float] = DEFAULT_RATE_LIMIT,
    daily_budget: Optional[int] = DEFAULT_DAILY_BUDGET,
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    include_media: bool = False,
    lookback_days_by_resource: Optional[dict[str, float]] = None,
    client: Any = None,
    use_contract: bool = True,
    seen_call_ids: Any = None,
    now: Optional[str] = None,
    calls_pages: Any = None,
    nested_tables: Any = None,
) -> Sequence[DltResource]:
    """Returns every Gong resource, reading through `client` or a client built from the credentials.

    `start_date` is where a first run begins (default: 30 days ago); `end_date` bounds a backfill
    (default: now). Later runs start at the end of the last completed window minus `lookback_days`.
    Date-only endpoints count days in `company_timezone` (default: the westernmost zone, which
    never asks Gong for a day that has not begun); `activity_period` is the aggregation period of
    `activity_by_period`. Opt-in resources are returned unselected. The schema starts from the table
    contract in schemas/ (`use_contract=False` only to regenerate it). `lookback_days_by_resource`
    overrides the lookback per resource (e.g. {"audit_logs": 1, "calls": 7}). `seen_call_ids`, a set,
    collects the id of every non-private call Gong returned (reconcile runs compare it with the warehouse).
    `now` pins the present moment of the run (an open end, the state's ceiling); default: when a
    resource starts reading. `calls_pages`, a `ChunkedPages`, spreads one window's calls over several
    pipeline runs (one chunk of pages each); the calls state then advances with the last chunk.
    `nested_tables`, a `NestedTables`, has the calls' nested tables built as Arrow tables and written into
    the load package as Parquet files (see `nested.py`) instead of leaving them to dlt's normalizer: only
    for a destination that loads Parquet files.
    """
    if use_contract:
        apply_contract(dlt.current.source_schema())
    if client is None:
        client = make_client(base_url, access_key, access_key_secret, bearer_token,
                             rate_limit, daily_budget, max_retry_after_s)
    window = _sync_window(start_date, end_date, lookback_days, company_timezone, activity_period, now)
    overrides = _lookback_overrides(lookback_days_by_resource)
    resources: dict[str, DltResource] = {}
    calls_read = _CallsRead(calls_pages)
    for endpoint in CATALOG:
        parent = resources[endpoint.parent] if endpoint.parent else None
        own_window = window
        if endpoint.name in overrides:
            own_window = replace(window, lookback=pendulum.duration(seconds=int(overrides[endpoint.name] * 86400)))
            own_window.validate()
        resources[endpoint.name] = _build_resource(client, endpoint, own_window, parent, include_media,
                                                   seen_call_ids, calls_read, nested_tables)
    for endpoint in CATALOG:
        resources[endpoint.name].selected = endpoint.default
    return list(resources.values())


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _lookback_overrides(by_resource: Optional[dict[str, float]]) -> dict[str, float]:
    """`lookback_days_by_resource` checked: known resources, zero or more days each."""
    try:
        overrides = {str(k): float(v) for k, v in (by_resource or {}).items()}
    except (TypeError, ValueError, AttributeError):
        raise GongConfigError("lookback_days_by_resource must map resource names to days, e.g. "
                              "{calls = 7, audit_logs = 1}.") from None
    unknown = sorted(set(overrides) - set(BY_NAME))
    if unknown:
        raise GongConfigError(f"lookback_days_by_resource names unknown resources {', '.join(unknown)}: "
                              f"choose from {', '.join(BY_NAME)}.")
    negative = sorted(name for name, days in overrides.items() if days < 0)
    if negative:
        raise GongConfigError(f"lookback_days_by_resource gives {', '.join(negative)} a negative lookback: give 0 "
                              "or more days.")
    return overrides


def _sync_window(start_date: Optional[str], end_date: Optional[str], lookback_days: float,
                 company_timezone: str = SAFEST_TIMEZONE, activity_period: str = "WEEK",
                 now: Optional[str] = None) -> SyncWindow:
    window = SyncWindow(
        start=parse_instant(start_date, "The start date (--start or start_date)") if start_date else None,
        end=parse_instant(end_date, "The end date (--end or end_date)") if end_date else None,
        lookback=pendulum.duration(seconds=int(float(lookback_days) * 86400)),
        default_history=pendulum.duration(days=DEFAULT_HISTORY_DAYS),
        company_timezone=company_timezone,
        period=str(activity_period).upper(),
        start_day=literal_date(start_date) if start_date else None,
        end_day=literal_date(end_date) if end_date else None,
        now=parse_instant(now, "now").start_of("second") if now else None,
    )
    window.validate()
    return window


@with_config(sections=("sources", "gong"))
def make_client(
    base_url: Optional[str] = dlt.config.value,
    access_key: Optional[str] = dlt.secrets.value,
    access_key_secret: Optional[str] = dlt.secrets.value,
    bearer_token: Optional[str] = dlt.secrets.value,
    rate_limit: Optional[float] = DEFAULT_RATE_LIMIT,
    daily_budget: Optional[int] = DEFAULT_DAILY_BUDGET,
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
) -> GongClient:
    """Returns a GongClient for one company, configured like the source (SOURCES__GONG__*).

    Raises GongError naming a missing setting, GongConfigError a malformed one. A rate limit of 0 turns the
    limiter off (for a local stand-in of Gong; Gong itself answers 429 above 3 requests a second).
    """
    for name, value in (("rate_limit", rate_limit), ("daily_budget", daily_budget),
                        ("max_retry_after_s", max_retry_after_s)):
        try:
            number = float(value) if value is not None else 0.0
        except (TypeError, ValueError):
            number = math.nan
        if not number >= 0:  # also NaN
            raise GongConfigError(f"SOURCES__GONG__{name.upper()} {value!r} is not a number of 0 or more: fix it "
                                  "in .dlt/config.toml or the environment.")
    settings = ClientSettings(
        rate_limit=float(rate_limit) if rate_limit else None,
        daily_budget=int(daily_budget) if daily_budget else None,
        max_retry_after_s=float(max_retry_after_s),
    )
    return GongClient(base_url or "", access_key, access_key_secret, bearer_token, settings=settings)


def _hints(endpoint: Endpoint) -> dict[str, Any]:
    hints: dict[str, Any] = {
        "name": endpoint.name,
        "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
        "primary_key": list(endpoint.primary_key),
        "columns": endpoint.columns or None,
    }
    if endpoint.merge_key:
        # dlt deletes the stored rows that match the primary key OR the merge key: with a merge key
        # (e.g. every sentence of a call) the first is redundant, and the OR makes DuckDB group the
        # whole stored table on every load (memory and time growing with the table). So dlt merges on
        # the merge key alone; the catalog's primary key stays the table's unique key (tested), and
        # the reader never yields the same parent twice in one load (see `_call_batches_reader`).
        hints["merge_key"] = list(endpoint.merge_key)
        del hints["primary_key"]
        # Explicitly not a primary key in dlt's schema, also for a schema stored by an earlier version.
        hints["columns"] = {**(endpoint.columns or {}),
                            **{k: {"name": k, "primary_key": False, "nullable": False}
                               for k in endpoint.primary_key}}
    return hints


def _build_resource(client: GongClient, endpoint: Endpoint, window: SyncWindow, parent: Optional[DltResource],
                    include_media: bool, seen_call_ids: Optional[set[str]], calls_read: _CallsRead,
                    nested_tables: Optional[NestedTables] = None) -> DltResource:
    # One `calls_read` for the calls and every resource that follows them: the calls state waits for all.
    if endpoint.kind == "calls":
        return _calls_resource(client, endpoint, window, include_media, seen_call_ids, calls_read, nested_tables)
    if endpoint.kind == "transcripts":
        return dlt.transformer(_call_batches_reader(client, endpoint, _transcript_rows, calls_read),
                               data_from=parent, **_hints(endpoint))
    if endpoint.kind == "call_batches":
        return dlt.transformer(_call_batches_reader(client, endpoint, lambda page: _rows(endpoint, page, {}),
                                                    calls_read), data_from=parent, **_hints(endpoint))
    if endpoint.kind == "coaching":
        return dlt.transformer(_coaching_reader(client, endpoint, window), data_from=parent, **_hints(endpoint))
    if parent is not None:
        def read_children(parent_rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
            for parent_row in parent_rows:
                values = {param: parent_row.get(field) for param, field in endpoint.parent_params.items()}
                if any(v is None for v in values.values()):
                    continue
                yield from _read_endpoint(client, endpoint, window, {k: str(v) for k, v in values.items()})

        return dlt.transformer(read_children, data_from=parent, **_hints(endpoint))

    def read_list() -> Iterator[list[dict[str, Any]]]:
        yield from _read_endpoint(client, endpoint, window, {})

    return dlt.resource(read_list, **_hints(endpoint))()


def _read_endpoint(client: GongClient, endpoint: Endpoint, window: SyncWindow,
                   parent_values: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Reads every request of one endpoint (per partition and window step) and yields pages of rows.

    A window's state advances only when all of its requests completed; a clean stop (quota) ends the
    resource and keeps what was read.
    """
    state = dlt.current.resource_state() if endpoint.window else {}
    for partition in endpoint.partitions or (None,):
        base = dict(parent_values)
        if partition is not None and endpoint.partition_param:
            base[endpoint.partition_param] = partition
        # Each parent value and partition keeps its own window (e.g. one per logType or manager).
        state_key = "|".join([*parent_values.values(), *([partition] if partition else [])]) or "all"
        windows = state.setdefault("windows", {}) if endpoint.window else {}
        if endpoint.window:
            plan = window.plan(endpoint.window, windows.get(state_key), window.present())
            requests = plan.requests
            logger.log(logging.DEBUG if parent_values or partition else logging.INFO,
                       "%s%s: window %s .. %s (%s)", endpoint.name, f" [{partition}]" if partition else "",
                       plan.start, plan.end, _plural(len(requests), "request"))
        else:
            plan, requests = None, [Request({})]
        count = 0
        try:
            for request in requests:
                params = {**base, **{k: v for k, v in request.params.items() if k}}
                ctx = {**base, **request.context}
                for page in _pages(client, endpoint, params, ctx):
                    rows = _rows(endpoint, page, ctx)
                    count += len(rows)
                    if rows:
                        yield rows
        except GongStopRun as exc:
            client.stop(str(exc))
            return
        if plan is not None and client.stop_reason is None and plan.new_state:
            windows[state_key] = plan.new_state
        # Per-parent reads (one per folder, profile, user...) would flood the progress output.
        logger.log(logging.DEBUG if parent_values or partition else logging.INFO, "%s%s: %s read", endpoint.name,
                   f" [{partition}]" if partition else "", _plural(count, "row"))


def _pages(client: GongClient, endpoint: Endpoint, params: dict[str, Any],
           ctx: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    path = endpoint.path
    params = dict(params)
    if "{" in path:
        for key in list(params):
            if "{" + key + "}" in path:
                path = path.replace("{" + key + "}", str(params.pop(key)))
    if endpoint.method == "GET":
        return client.paginate("GET", path, endpoint.data_key, params={**endpoint.query, **params} or None,
                               label=endpoint.path)
    body = copy.deepcopy(endpoint.body)
    if endpoint.window and endpoint.window.align_to_period:
        body["aggregationPeriod"] = ctx["period"]
    body["filter"] = params
    return client.paginate("POST", path, endpoint.data_key, body=body, label=endpoint.path)


def _rows(endpoint: Endpoint, page: Iterable[dict[str, Any]], ctx: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for record in page:
        made = endpoint.row(record, ctx)
        if isinstance(made, list):
            rows.extend(made)
        elif made is not None:
            rows.append(made)
    return rows


def _calls_body(window: SyncWindow, synced_until: Optional[str], include_media: bool) -> tuple[Any, Any, Any]:
    """The window `[start, end)` a calls read covers, and the body of its first request."""
    now = window.present()
    start, end = window.resolve(synced_until, now)
    selector = copy.deepcopy(CALLS_CONTENT_SELECTOR)
    selector["exposedFields"]["media"] = bool(include_media)
    body = {
        "filter": {"fromDateTime": start.isoformat(), "toDateTime": end.isoformat()},
        "contentSelector": selector,
    }
    return start, end, body


class CallsPage:
    """A page of /v2/calls/extensive as the reader ahead read it, off the resource's thread: the rows of
    its non-private calls split into their root rows and nested Arrow tables (`split_nested`, with a
    copy of the source's schema, whose `facts` the resource checks against its own before it takes the
    split), what the resource needs of its calls, and the answer as received (the
    resource splits that itself when the split it was given does not hold)."""

    __slots__ = ("count", "ids", "rows_count", "roots", "tables", "facts", "keys", "content", "_reread", "nbytes")

    def __init__(self, count: int, ids: list[str], rows_count: int,
                 roots: list[dict[str, Any]], tables: dict[str, pa.Table], facts: dict[str, Any],
                 content: bytes, reread: Any) -> None:
        self.count = count  # records on the page, private ones included
        self.ids = ids  # ids of the non-private calls
        self.rows_count = rows_count
        self.roots, self.tables, self.facts = roots, tables, facts
        self.keys = frozenset(str(r.get("id")) for r in roots)
        self.content = content
        self._reread = reread
        # What the store counts for it beside the answer (`Answer.size`): the Arrow tables, and the root rows
        # (Python objects: about half the answer's bytes, measured with tracemalloc on the simulator's calls).
        self.nbytes = sum(t.nbytes for t in tables.values()) + len(content) // 2

    def __len__(self) -> int:
        return self.count

    def rows(self) -> list[dict[str, Any]]:
        """The call rows of the page's non-private calls, made again from the answer as received."""
        return self._reread(self.content)


def _json_page(data_key: str) -> Any:
    """A `decode` for the reader ahead's pages of calls: the page's records and paging, read once for both the
    reader (ids and cursor) and the resource; None (decoded as usual) for an answer of another shape."""

    def decode(content: bytes) -> Optional[tuple[list[dict[str, Any]], dict[str, Any]]]:
        try:
            payload = json.loads(content)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        records, paging = payload.get(data_key), payload.get("records") or {}
        if not isinstance(records, list) or not isinstance(paging, dict) or not all(
                isinstance(c, dict) for c in records):
            return None
        return records, paging

    return decode


def _kept_rows(endpoint: Endpoint, records: list[dict[str, Any]], ctx: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The call rows of a page's non-private calls, and their ids as text."""
    kept = [c for c in records if not (c.get("metaData") or {}).get("isPrivate")]
    return _rows(endpoint, kept, ctx), [str((c.get("metaData") or {}).get("id")) for c in kept]


def calls_page_preparer(endpoint: Endpoint, include_media: bool, schema: dlt.Schema) -> Any:
    """A `prepare` for the reader ahead (`Prefetcher(prepare=...)`): turns a kept page of calls (its records and
    paging) into a `CallsPage` split with `schema` (a copy of the source's, used by that thread alone), or
    None for a page the split declines (the resource then reads the answer as received)."""
    ctx = {"includeMedia": include_media}

    def reread(content: bytes) -> list[dict[str, Any]]:
        return _kept_rows(endpoint, json.loads(content)[endpoint.data_key], ctx)[0]

    def prepare(decoded: Any, content: bytes) -> Optional[tuple[CallsPage, dict[str, Any]]]:
        records, paging = decoded
        if not isinstance(records, list):
            return None
        try:
            rows, ids = _kept_rows(endpoint, records, ctx)
            facts: dict[str, Any] = {}
            done = split_nested(rows, endpoint.name, "id", schema, None, facts)
            if done is None:
                return None
            page = CallsPage(len(records), ids, len(rows), done[0], done[1], facts, content, reread)
        except Exception as exc:  # the resource reads the answer itself, and reports what is wrong with it
            logger.debug("a page of calls is left to the resource: %s", type(exc).__name__)
            return None
        return page, paging

    return prepare


class _CallsRead:
    """What the calls resource and the resources that follow its pages (transcripts, call access) share in
    one extract: the window's `ChunkedPages`, if any, and when the window's calls state may advance.

    dlt extracts a resource and its transformers round robin: the calls resource ends before the
    transformers have read its last pages. The state advances when the calls and every selected follower
    have read every page (`finish`), so that a stop (the quota) met by the last transcript request leaves
    the window to be read again instead of marked as synced without those transcripts.
    """

    def __init__(self, chunked: Optional[ChunkedPages]) -> None:
        self.chunked = chunked
        self.followers = 0  # selected resources that read each page of calls
        self.pending = 0  # pages handed to the followers, times the followers, not yet read
        self._finish: Optional[Any] = None

    def begin(self) -> None:
        """Counts the selected followers (in the running extract's source)."""
        followers = {e.name for e in CATALOG if e.parent == "calls"}
        try:
            selected = dlt.current.source().resources.selected
        except Exception:  # not extracted as part of a source: nothing follows the calls
            selected = {}
        self.followers = sum(1 for name in selected if name in followers)

    def handed(self) -> None:
        """The calls resource yielded a page: each follower will read it."""
        self.pending += self.followers

    def read(self) -> None:
        """A follower finished reading one page."""
        self.pending -= 1
        self._maybe_finish()

    def finish(self, advance: Any) -> None:
        """Runs `advance` (the calls state's) once no follower has a page left to read."""
        self._finish = advance
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._finish is not None and self.pending <= 0:
            advance, self._finish = self._finish, None
            advance()


def _page_key(rows: list[dict[str, Any]]) -> str:
    """Names a page of calls by its first call, as the reader ahead groups the reads that follow a page."""
    return str(rows[0].get("id"))


def _calls_resource(client: GongClient, endpoint: Endpoint, window: SyncWindow, include_media: bool,
                    seen_call_ids: Optional[set[str]], calls_read: _CallsRead,
                    nested_tables: Optional[NestedTables] = None) -> DltResource:
    ctx = {"includeMedia": include_media}
    chunked = calls_read.chunked

    def split(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows to yield: without their lists when their nested tables were built here as Arrow."""
        if nested_tables is None:
            return rows
        done = split_nested(rows, endpoint.name, "id", dlt.current.source_schema(), nested_tables.seen)
        if done is None:
            return rows  # dlt's normalizer decides (e.g. a field Gong just added)
        roots, tables = done
        nested_tables.add(tables)
        return roots

    def split_prepared(page: CallsPage) -> list[dict[str, Any]]:
        """The rows to yield of a page the reader ahead split already: its split as it is when this
        extract's schema would split it the same way and none of its calls was taken in this extract
        already; otherwise split here, from the answer as received."""
        if nested_tables is not None and page.keys.isdisjoint(nested_tables.seen) and schema_agrees(
                dlt.current.source_schema(), page.facts):
            nested_tables.seen.update(page.keys)
            nested_tables.add(page.tables)
            return page.roots
        logger.debug("calls: the page the reader ahead split is split again (another schema, or a call seen before)")
        return split(page.rows())

    def flush() -> None:
        """Writes the nested tables built in this extract into its load package, before dlt commits it."""
        if nested_tables is not None:
            write_into_current_package(nested_tables.take())

    def advance(state: dict[str, Any], read: dict[str, Any]) -> None:
        """Marks the window as synced, unless the run stopped or reads of the window wait for a later load."""
        if client.stop_reason is None and (chunked is None or (chunked.exhausted and not chunked.deferred)):
            start, end = read["start"], read["end"]
            state["synced_until"] = window.advance(state.get("synced_until"), start, end, read["now"]).isoformat()
            state["last_window"] = [start.isoformat(), end.isoformat()]

    def read_calls() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        calls_read.begin()
        if chunked is not None and chunked.started:
            read = chunked.context  # a later chunk of the same window
            if chunked.tail_pending:
                # The tail load: the followers read the pages the last chunk held back. The calls were
                # loaded with that chunk; only their ids go to the followers, never to the calls table.
                if "calls" in dlt.current.source().resources.selected:
                    raise RuntimeError("the tail of a window is extracted without the calls resource selected")
                for calls in chunked.take_tail():
                    calls_read.handed()
                    yield calls
                calls_read.finish(lambda: advance(state, read))
                return
            pages: Iterable[Any] = chunked.chunk()
        else:
            run_window = window.pinned()
            start, end, body = _calls_body(run_window, state.get("synced_until"), include_media)
            read = {"start": start, "end": end, "now": run_window.present(), "synced": 0, "private": 0}
            if start >= end:
                logger.info("calls: nothing to sync, the window %s .. %s is empty", start, end)
                if chunked is not None:
                    chunked.finish()
                return
            logger.info("calls: syncing calls started in [%s, %s)", start.isoformat(), end.isoformat())
            if chunked is not None:
                chunked.begin(client.paginate(endpoint.method, endpoint.path, endpoint.data_key, body=body,
                                              report_last=True), **read)
                read = chunked.context
                pages = chunked.chunk()
            else:
                pages = client.paginate(endpoint.method, endpoint.path, endpoint.data_key, body=body)
        try:
            for page in pages:
                prepared = page if isinstance(page, CallsPage) else None  # read, and split, by the reader ahead
                if prepared is not None:
                    rows, ids, made = [], prepared.ids, prepared.rows_count
                else:
                    rows, ids = _kept_rows(endpoint, page, ctx)
                    made = len(rows)
                read["private"] += len(page) - len(ids)
                if seen_call_ids is not None:
                    seen_call_ids.update(ids)
                read["synced"] += made
                logger.info("calls: %s so far (%d private skipped)", _plural(read["synced"], "call"), read["private"])
                if made:
                    calls_read.handed()
                    yield split_prepared(prepared) if prepared is not None else split(rows)
        except GongStopRun as exc:
            client.stop(str(exc))
            flush()
            return
        except GeneratorExit:  # closed early by dlt: what was yielded is committed, so are its nested tables
            flush()
            raise
        flush()
        calls_read.finish(lambda: advance(state, read))

    return dlt.resource(read_calls, **_hints(endpoint))()


def _call_id_batches(call_ids: Iterable[str]) -> Iterator[list[str]]:
    ids = list(call_ids)
    for i in range(0, len(ids), TRANSCRIPT_BATCH_SIZE):
        yield ids[i:i + TRANSCRIPT_BATCH_SIZE]


def _unread_call_ids(calls: Iterable[tuple[Any, Any]], sent: set[str]) -> list[str]:
    """The ids, as text, of the non-private calls among `(id, is_private)` pairs not read yet in this load
    (a call Gong lists on two pages is read once), now marked as read in `sent`. The resources and the
    reader ahead both use it, so that they send the very same transcript requests."""
    ids = []
    for call_id, private in calls:
        key = str(call_id)
        if not private and key not in sent:
            sent.add(key)
            ids.append(key)
    return ids


def _batch_body(batch: list[str]) -> dict[str, Any]:
    return {"filter": {"callIds": batch}}


def _transcript_rows(page: Any) -> pa.Table:
    """A page of transcripts as Arrow rows: read by Arrow already (`Endpoint.decode`), or decoded JSON."""
    return page if isinstance(page, pa.Table) else transcript_table(page)


def _call_batches_reader(client: GongClient, endpoint: Endpoint, to_rows: Any,
                         calls_read: Optional[_CallsRead] = None) -> Any:
    """Returns a transformer reading `endpoint` for each page of calls, 100 non-private call ids a request.

    `to_rows` turns one answered page into what the resource yields (an Arrow table or a list of rows).
    A page whose reads the window's last chunk holds back is read by the tail load instead.
    """
    sent: set[str] = set()
    calls_read = calls_read or _CallsRead(None)

    def read_batches(calls_page: list[dict[str, Any]]) -> Iterator[Any]:
        chunked = calls_read.chunked
        if calls_page and chunked is not None and chunked.hold_back(_page_key(calls_page), calls_page):
            return
        ids = _unread_call_ids(((c["id"], c.get("isPrivate")) for c in calls_page), sent)
        for batch in _call_id_batches(ids):
            try:
                for page in client.paginate(endpoint.method, endpoint.path, endpoint.data_key, body=_batch_body(batch),
                                            decode=endpoint.decode):
                    rows = to_rows(page)
                    if len(rows):
                        yield rows
            except GongStopRun as exc:
                client.stop(str(exc))
                return

    def read_for_calls(calls_page: list[dict[str, Any]]) -> Iterator[Any]:
        yield from read_batches(calls_page)
        calls_read.read()  # not when dlt closed this early (a failed extract commits nothing)

    return read_for_calls


def _coaching_reader(client: GongClient, endpoint: Endpoint, window: SyncWindow) -> Any:
    """Coaching is listed per manager and workspace: managers are the users others report to."""
    seen: set[str] = set()
    workspaces: list[str] = []

    def read_coaching(users_page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        managers = sorted({str(u["managerId"]) for u in users_page if u.get("managerId")} - seen)
        if not managers:
            return
        seen.update(managers)
        if not workspaces:
            try:
                workspaces.extend(str(w["id"]) for page in client.paginate("GET", "/v2/workspaces", "workspaces")
                                  for w in page)
            except GongStopRun as exc:
                client.stop(str(exc))
                return
        for workspace_id in workspaces:
            for manager_id in managers:
                yield from _read_endpoint(client, endpoint, window,
                                          {"workspace-id": workspace_id, "manager-id": manager_id})

    return read_coaching


@with_config(sections=("sources", "gong"))
def prefetch_calls(
    client: GongClient,
    resources: Sequence[str],
    body: Optional[dict[str, Any]],
    max_bytes: Optional[int] = None,
    workers: Optional[int] = None,
    seed: Optional[dict[str, Answer]] = None,
    schema: Optional[dlt.Schema] = None,
) -> Optional[Prefetcher]:
    """Starts reading ahead, in the background, the calls (and their transcripts and other per-call-batch
    resources among `resources`) that the calls resource reads from its first request `body` (see
    `first_calls_request`). With a `schema` (a copy of the source's, for this reader alone), each page of
    calls is also split into its rows and nested tables soon after it arrives (`calls_page_preparer`, on a
    thread of its own): the resource then takes them instead of making them.

    Returns the running Prefetcher (close it when the window was extracted), or None when there is
    nothing to read ahead. The reading goes through `client`, so the limiter, budget and counts hold.
    """
    selected = set(resources)
    calls = BY_NAME["calls"]
    children = [e for e in CATALOG if e.parent == calls.name and e.kind in ("transcripts", "call_batches")
                and e.name in selected]
    if body is None or (calls.name not in selected and not children):
        return None

    prepare = None
    if schema is not None and calls.name in selected:
        media = bool(((body.get("contentSelector") or {}).get("exposedFields") or {}).get("media"))
        prepare = calls_page_preparer(calls, media, schema)

    def plan(reader: GongClient, submit: Any) -> None:
        sent: set[str] = set()
        # Pages to prepare are kept decoded until they are (the reader reads them anyway); the others as received.
        decode = _json_page(calls.data_key) if prepare is not None else None
        for page in reader.paginate(calls.method, calls.path, calls.data_key, body=body, decode=decode):
            metas = [c.get("metaData") or {} for c in page]
            ids = _unread_call_ids(((m.get("id"), m.get("isPrivate")) for m in metas), sent)
            for child in children:
                for batch in _call_id_batches(ids):
                    # Grouped by the page's first call, as the calls resource names the page (`_page_key`).
                    submit(lambda e=child, b=batch: _drain(reader.paginate(e.method, e.path, e.data_key,
                                                                           body=_batch_body(b), decode=e.decode)),
                           ids[0])

    root = request_key(calls.method, calls.path, None, body)
    paths = {calls.path, *(child.path for child in children)}
    return Prefetcher(client, plan, paths, root=root, max_bytes=max_bytes, workers=workers, seed=seed,
                      prepare=prepare).start()


@with_config(sections=("sources", "gong"))
def first_calls_request(
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    now: Optional[str] = None,
    synced_until: Optional[str] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    include_media: bool = False,
) -> Optional[dict[str, Any]]:
    """The body of the first request the calls resource of `gong_source(start_date=..., end_date=...,
    now=...)` sends, given the calls state's `synced_until`; None when its window is empty."""
    window = _sync_window(start_date, end_date, lookback_days, now=now)
    start, end, body = _calls_body(window, synced_until, include_media)
    return body if start < end else None


def count_calls(client: GongClient, body: dict[str, Any]) -> tuple[int, int, dict[str, Answer]]:
    """(calls Gong has for the calls request `body`, pages a full read takes, {key: answer} of the one
    request sent).

    Sends the first page of that read: Gong announces the total on every page, so a long range can be
    cut into windows of the right size before any of them is read, and when the range stays one window
    the answer is handed to the reader ahead (`prefetch_calls(seed=...)`) instead of being asked again.
    """
    calls = BY_NAME["calls"]
    payload, answer = client.request_kept(calls.method, calls.path, body=body)
    paging = (payload or {}).get("records") or {}
    total = int(paging.get("totalRecords") or len((payload or {}).get(calls.data_key) or []))
    if not paging.get("cursor"):
        pages = 1 if total else 0
    else:
        pages = -(-total // (int(paging.get("currentPageSize") or 0) or 100))
    return total, pages, {request_key(calls.method, calls.path, None, body): answer}


def _drain(pages: Iterable[Any]) -> None:
    for _ in pages:
        pass


@dlt.source(name="gong")
def gong_tombstones(call_ids: Sequence[str]) -> Sequence[DltResource]:
    """Returns resources that delete `call_ids` from `calls` (with every child row) and `transcripts`.

    Used by reconcile runs for calls Gong no longer returns (deleted, or made private). A row flagged
    `_gong_deleted` makes dlt's merge delete the stored row with the same key instead of writing it;
    the flag never stays in the warehouse.
    """
    ids = sorted({str(c) for c in call_ids})
    calls = BY_NAME["calls"]
    transcripts = BY_NAME["transcripts"]

    def call_rows() -> Iterator[list[dict[str, Any]]]:
        yield [{"id": call_id, DELETED_FLAG: True} for call_id in ids]

    def sentence_rows() -> Iterator[pa.Table]:
        # The merge key (call_id) removes every sentence of the call; this row itself is dropped. It is
        # an Arrow table like the sentences, so the table gets no columns that only dict rows carry.
        table = transcript_table([]).to_pydict()
        table.update(call_id=ids, sentence_index=[-1] * len(ids), monologue_index=[-1] * len(ids))
        for column in ("speaker_id", "topic", "start_ms", "end_ms", "text"):
            table[column] = [None] * len(ids)
        schema = TRANSCRIPT_SCHEMA.append(pa.field(DELETED_FLAG, pa.bool_()))
        yield pa.Table.from_pydict({**table, DELETED_FLAG: [True] * len(ids)}, schema=schema)

    return [dlt.resource(call_rows, **_hints(calls))(), dlt.resource(sentence_rows, **_hints(transcripts))()]
