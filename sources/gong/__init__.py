"""dlt source for the Gong API v2.

`gong_source` returns one resource per entry of the endpoint catalog (`catalog.py`). Entries with
a parent (trackers per workspace, folder calls per folder, ...) become dlt transformers fed by
the parent's pages; entries with a window read incrementally from dlt state (the exclusive end of
the last completed window, minus a lookback, because Gong adds and edits data late); everything is
merged on its key, and a re-synced parent's child rows are replaced (dlt's normalizer makes the
nested tables and their keys). Calls are read from POST /v2/calls/extensive with their full content
by a `CallsFeed` (feed.py), which also reads what follows each page of them (transcripts, as Arrow
tables of one row per sentence; call access lists), 100 non-private call ids a request; the
resources that follow the calls take what it read.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from collections import deque
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

from .catalog import BY_NAME, CATALOG, Endpoint
from .client import ClientSettings, GongClient, GongConfigError, GongError, GongStopRun
from .feed import CallsFeed, Chunk, Page
from .gate import RowGate
from .pii import PiiConfiguration, PiiPolicy, PiiSettingsError
from .rows import records_to_rows, transcript_rows
from .settings import (
    DEFAULT_DAILY_BUDGET,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_RETRY_AFTER_S,
    DEFAULT_RATE_LIMIT,
)
from .windows import SAFEST_TIMEZONE, Request, SyncWindow, literal_date, parse_instant

__all__ = ["gong_source", "make_client", "CallsFeed", "Chunk", "GongClient", "GongConfigError", "GongError",
           "GongStopRun", "SyncWindow"]

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
    chunk: Optional[Chunk] = None,
    pii: Optional[PiiConfiguration] = None,
    rejected: Optional[list[dict[str, Any]]] = None,
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
    resource starts reading. `chunk`, pages of calls a `CallsFeed` read (with what follows them), is what
    the calls resource and its followers load; without it, the calls resource reads its window itself.
    `pii` (`[sources.gong.pii]`) keeps, hashes or drops each group of personal data before it is loaded
    (pii.py); every page passes a `RowGate` (gate.py), which sets the records it cannot load aside:
    into `rejected`, a list, when given (run_sync loads it into `_gong_rejected`), else counted and logged.
    """
    try:
        policy = PiiPolicy.from_config(pii)
    except PiiSettingsError as exc:
        raise GongConfigError(str(exc)) from None
    contract: dict[str, Any] = {}
    if use_contract:
        apply_contract(dlt.current.source_schema())
        if CONTRACT_PATH.exists():
            contract = _read_contract(str(CONTRACT_PATH), CONTRACT_PATH.stat().st_mtime_ns).get("tables") or {}
    if client is None:
        client = make_client(base_url, access_key, access_key_secret, bearer_token,
                             rate_limit, daily_budget, max_retry_after_s)
    window = _sync_window(start_date, end_date, lookback_days, company_timezone, activity_period, now)
    overrides = _lookback_overrides(lookback_days_by_resource)
    resources: dict[str, DltResource] = {}
    calls = _CallsRead(client, chunk, include_media, seen_call_ids)
    gates = {e.name: RowGate(e, policy, contract.get(e.name), rejected) for e in CATALOG}
    for endpoint in CATALOG:
        parent = resources[endpoint.parent] if endpoint.parent else None
        own_window = window
        if endpoint.name in overrides:
            own_window = replace(window, lookback=pendulum.duration(seconds=int(overrides[endpoint.name] * 86400)))
            own_window.validate()
        resources[endpoint.name] = _build_resource(client, endpoint, own_window, parent, calls, gates[endpoint.name])
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
        # the feed never reads the same call twice for one window.
        hints["merge_key"] = list(endpoint.merge_key)
        del hints["primary_key"]
        # Explicitly not a primary key in dlt's schema, also for a schema stored by an earlier version.
        hints["columns"] = {**(endpoint.columns or {}),
                            **{k: {"name": k, "primary_key": False, "nullable": False}
                               for k in endpoint.primary_key}}
    return hints


def _build_resource(client: GongClient, endpoint: Endpoint, window: SyncWindow, parent: Optional[DltResource],
                    calls: _CallsRead, gate: RowGate) -> DltResource:
    if endpoint.name == "calls":
        return dlt.resource(_calls_reader(client, endpoint, window, calls, gate), **_hints(endpoint))()
    if endpoint.follows_calls:
        return dlt.transformer(_follower_reader(client, endpoint, calls, gate), data_from=parent, **_hints(endpoint))
    if endpoint.per_manager:
        return dlt.transformer(_coaching_reader(client, endpoint, window, gate), data_from=parent,
                               **_hints(endpoint))
    if parent is not None:
        def read_children(parent_rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
            for parent_row in parent_rows:
                values = {param: parent_row.get(field) for param, field in endpoint.parent_params.items()}
                if any(v is None for v in values.values()):
                    continue
                yield from _read_endpoint(client, endpoint, window, {k: str(v) for k, v in values.items()}, gate)

        return dlt.transformer(read_children, data_from=parent, **_hints(endpoint))

    def read_list() -> Iterator[list[dict[str, Any]]]:
        yield from _read_endpoint(client, endpoint, window, {}, gate)

    return dlt.resource(read_list, **_hints(endpoint))()


def _read_endpoint(client: GongClient, endpoint: Endpoint, window: SyncWindow,
                   parent_values: dict[str, str], gate: RowGate) -> Iterator[Any]:
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
                filters = {**base, **{k: v for k, v in request.params.items() if k}}
                ctx = {**base, **request.context}
                body = {**endpoint.body, **({"aggregationPeriod": ctx["period"]} if "period" in ctx else {})}
                for page in client.list_pages(endpoint.method, endpoint.path, endpoint.data_key, filters, body=body,
                                              query=endpoint.query):
                    rows = gate.rows(_rows(endpoint, page, ctx))
                    count += len(rows)
                    if rows:
                        yield rows
        except GongStopRun as exc:
            client.stop(str(exc))
            return
        finally:
            gate.report()
        if plan is not None and client.stop_reason is None and plan.new_state:
            windows[state_key] = plan.new_state
        # Per-parent reads (one per folder, profile, user...) would flood the progress output.
        logger.log(logging.DEBUG if parent_values or partition else logging.INFO, "%s%s: %s read", endpoint.name,
                   f" [{partition}]" if partition else "", _plural(count, "row"))


def _rows(endpoint: Endpoint, page: Iterable[dict[str, Any]], ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return records_to_rows(endpoint.row, page, ctx)


class _CallsRead:
    """What the calls resource hands to the resources that follow it (transcripts, call access) in one
    extract: for each page of calls it yielded, in order, the page as the feed read it. dlt feeds a
    transformer the parent's pages in the order they were yielded, however far behind it runs."""

    def __init__(self, client: GongClient, chunk: Optional[Chunk], include_media: bool,
                 seen_call_ids: Optional[set[str]]) -> None:
        self.client = client
        self.chunk = chunk
        self.include_media = include_media
        self.seen_call_ids = seen_call_ids
        self.queues: dict[str, deque[Page]] = {}

    def followers(self) -> list[str]:
        """The selected resources that follow the calls in the running extract."""
        try:
            selected = dlt.current.source().resources.selected
        except Exception:  # the calls resource extracted on its own: nothing follows it
            return []
        return [name for name in selected if BY_NAME[name].follows_calls] if selected else []

    def handed(self, page: Page) -> None:
        for queue in self.queues.values():
            queue.append(page)

    def take(self, follower: str) -> Optional[Page]:
        queue = self.queues.get(follower)
        return queue.popleft() if queue else None


def _calls_reader(client: GongClient, endpoint: Endpoint, window: SyncWindow, calls: _CallsRead,
                  gate: RowGate) -> Any:
    """The calls resource: the rows of the pages of calls the feed read (its chunk, or the window read here),
    each call once per extract. The calls state advances with the window's last chunk, once the window was
    read to its end and everything that follows its pages was read too."""
    def read_calls() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        followers = calls.followers()
        calls.queues = {name: deque() for name in followers}
        feed: Optional[CallsFeed] = None
        now = window.pinned().present()
        if calls.chunk is not None:
            chunks: Iterable[Chunk] = [calls.chunk]
        else:
            start, end = window.resolve(state.get("synced_until"), now)
            if start >= end:
                logger.info("calls: nothing to sync, the window %s .. %s is empty", start, end)
                return
            feed = CallsFeed(client, [(start, end)], followers, include_media=calls.include_media, chunk_pages=1,
                             seen_call_ids=calls.seen_call_ids).start()
            chunks = feed.chunks(0)
        seen: set[str] = set()
        synced = private = 0
        try:
            for chunk in chunks:
                for page in chunk:
                    rows = [row for row in page.rows if row.get("id") is None or str(row["id"]) not in seen]
                    seen.update(str(row["id"]) for row in rows if row.get("id") is not None)
                    good = gate.rows(rows)
                    synced, private = synced + len(good), private + page.private
                    if rows:
                        calls.handed(page)
                    if good:
                        yield good
                logger.info("calls: %s (%d private skipped)", _plural(synced, "call"), private)
                if chunk.last:
                    if client.stop_reason is None and chunk.followed():
                        state["synced_until"] = window.advance(state.get("synced_until"), chunk.start, chunk.end,
                                                               now).isoformat()
                        state["last_window"] = [chunk.start.isoformat(), chunk.end.isoformat()]
        finally:
            gate.report()
            if feed is not None:
                feed.close()

    return read_calls


def _follower_reader(client: GongClient, endpoint: Endpoint, calls: _CallsRead, gate: RowGate) -> Any:
    """A resource that follows the calls (transcripts, call access): for each page of calls, the rows of
    what the feed read for it."""

    def to_rows(records: Any, asked: list[str]) -> Any:
        if endpoint.decode is None:
            return gate.rows(_rows(endpoint, records, {}))
        table = gate.transcripts(transcript_rows(records), asked)
        # dlt stamps the rows it normalizes with their load id, not Arrow tables (unless configured to):
        # stamped here, so the sentences carry it like every other row.
        load_id = dlt.current.load_package_state()["load_id"]
        return table.append_column(pa.field("_dlt_load_id", pa.string(), nullable=False),
                                   pa.array([load_id] * table.num_rows, pa.string()))

    def read_for_calls(calls_page: list[dict[str, Any]]) -> Iterator[Any]:
        page = calls.take(endpoint.name)
        if page is None:
            return
        try:
            for records in page.answers(endpoint.name):
                rows = to_rows(records, page.ids)
                if len(rows):
                    yield rows
        except GongStopRun as exc:
            client.stop(str(exc))
        finally:
            gate.report()

    return read_for_calls


def _coaching_reader(client: GongClient, endpoint: Endpoint, window: SyncWindow, gate: RowGate) -> Any:
    """Coaching is listed per manager and workspace: managers are the users others report to."""
    seen: set[str] = set()
    workspaces: list[str] = []
    listing = BY_NAME["workspaces"]

    def read_coaching(users_page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        managers = sorted({str(u["managerId"]) for u in users_page if u.get("managerId")} - seen)
        if not managers:
            return
        seen.update(managers)
        if not workspaces:
            try:
                workspaces.extend(str(w["id"]) for page in client.list_pages(
                    listing.method, listing.path, listing.data_key, {}) for w in page)
            except GongStopRun as exc:
                client.stop(str(exc))
                return
        for workspace_id in workspaces:
            for manager_id in managers:
                yield from _read_endpoint(client, endpoint, window,
                                          {"workspace-id": workspace_id, "manager-id": manager_id}, gate)

    return read_coaching
