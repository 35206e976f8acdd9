"""dlt source for the Gong API v2.

`gong_source` returns one resource per catalog entry (see `catalog.py`): workspaces, users and
scorecards are read whole on every run and merged on their keys; calls are read from
POST /v2/calls/extensive in a window on their start time that re-reads a trailing lookback
(Gong adds and edits calls late), and transcripts follow each page of calls in batches of up to
100 non-private call ids, as Arrow tables of one row per sentence.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import dlt
import pendulum
import pyarrow as pa
from dlt.common.configuration import with_config
from dlt.sources import DltResource

from .catalog import BY_NAME, CATALOG, Endpoint
from .client import ClientSettings, GongClient, GongError, GongStopRun
from .rows import call_row, transcript_table
from .settings import (
    CALLS_CONTENT_SELECTOR,
    DEFAULT_DAILY_BUDGET,
    DEFAULT_HISTORY_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_RETRY_AFTER_S,
    DEFAULT_RATE_LIMIT,
    TRANSCRIPT_BATCH_SIZE,
)
from .windows import SyncWindow, parse_instant

__all__ = ["gong_source", "make_client", "GongClient", "GongError", "SyncWindow"]

logger = logging.getLogger("gong_sync.source")




@dlt.source(name="gong")
def gong_source(
    base_url: Optional[str] = dlt.config.value,
    access_key: Optional[str] = dlt.secrets.value,
    access_key_secret: Optional[str] = dlt.secrets.value,
    bearer_token: Optional[str] = dlt.secrets.value,
    start_date: Optional[str] = None,
    end_date: Optional[str] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    rate_limit: Optional[float] = DEFAULT_RATE_LIMIT,
    daily_budget: Optional[int] = DEFAULT_DAILY_BUDGET,
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    include_media: bool = False,
    client: Any = None,
) -> Sequence[DltResource]:
    """Returns the Gong resources, reading through `client` or a client built from the credentials.

    `start_date` is where the first run begins (default: 30 days ago); `end_date` bounds a backfill
    (default: now). Later runs start at the end of the last synced window minus `lookback_days`.
    """
    if client is None:
        client = make_client(base_url, access_key, access_key_secret, bearer_token,
                             rate_limit, daily_budget, max_retry_after_s)
    window = SyncWindow(
        start=parse_instant(start_date, "The start date (--start or start_date)") if start_date else None,
        end=parse_instant(end_date, "The end date (--end or end_date)") if end_date else None,
        lookback=pendulum.duration(seconds=int(float(lookback_days) * 86400)),
        default_history=pendulum.duration(days=DEFAULT_HISTORY_DAYS),
    )
    window.validate()
    resources: dict[str, DltResource] = {}
    for endpoint in CATALOG:
        if endpoint.kind == "list":
            resources[endpoint.name] = _list_resource(client, endpoint)
        elif endpoint.kind == "calls":
            resources[endpoint.name] = _calls_resource(client, endpoint, window, include_media)
    resources["transcripts"] = _transcripts_resource(client, BY_NAME["transcripts"], resources["calls"])
    return [resources[e.name] for e in CATALOG]


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

    Raises GongError naming a missing or malformed setting.
    """
    settings = ClientSettings(
        rate_limit=float(rate_limit) if rate_limit else None,
        daily_budget=int(daily_budget) if daily_budget else None,
        max_retry_after_s=float(max_retry_after_s),
    )
    return GongClient(base_url or "", access_key, access_key_secret, bearer_token, settings=settings)


def _hints(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
        "primary_key": list(endpoint.primary_key),
        "columns": endpoint.columns or None,
    }


def _list_resource(client: GongClient, endpoint: Endpoint) -> DltResource:
    def read_list() -> Iterator[list[dict[str, Any]]]:
        count = 0
        try:
            for page in client.paginate(endpoint.method, endpoint.path, endpoint.data_key, params=endpoint.params):
                rows = [endpoint.row(record) for record in page]
                count += len(rows)
                yield rows
        except GongStopRun as exc:
            client.stop(str(exc))
            return
        logger.info("%s: %d rows read", endpoint.name, count)

    return dlt.resource(read_list, **_hints(endpoint))()


def _calls_resource(client: GongClient, endpoint: Endpoint, window: SyncWindow,
                    include_media: bool) -> DltResource:
    selector = copy.deepcopy(CALLS_CONTENT_SELECTOR)
    selector["exposedFields"]["media"] = bool(include_media)

    def read_calls() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        now = pendulum.now("UTC").start_of("second")
        start, end = window.resolve(state.get("synced_until"), now)
        start = start.start_of("second")
        if start >= end:
            logger.info("calls: nothing to sync, the window %s .. %s is empty", start, end)
            return
        logger.info("calls: syncing calls started in [%s, %s)", start.isoformat(), end.isoformat())
        body = {
            "filter": {"fromDateTime": start.isoformat(), "toDateTime": end.isoformat()},
            "contentSelector": selector,
        }
        synced = private = 0
        try:
            for page in client.paginate(endpoint.method, endpoint.path, endpoint.data_key, body=body):
                rows = []
                for record in page:
                    if (record.get("metaData") or {}).get("isPrivate"):
                        private += 1
                        continue
                    rows.append(call_row(record, include_media))
                synced += len(rows)
                logger.info("calls: %d calls so far (%d private skipped)", synced, private)
                if rows:
                    yield rows
        except GongStopRun as exc:
            client.stop(str(exc))
            return
        if client.stop_reason is None:
            state["synced_until"] = window.advance(state.get("synced_until"), start, end, now).isoformat()
            state["last_window"] = [start.isoformat(), end.isoformat()]

    return dlt.resource(read_calls, **_hints(endpoint))()


def _transcripts_resource(client: GongClient, endpoint: Endpoint, calls: DltResource) -> DltResource:
    def read_transcripts(calls_page: list[dict[str, Any]]) -> Iterator[pa.Table]:
        call_ids = [str(c["id"]) for c in calls_page if not c.get("isPrivate")]
        for i in range(0, len(call_ids), TRANSCRIPT_BATCH_SIZE):
            batch = call_ids[i:i + TRANSCRIPT_BATCH_SIZE]
            body = {"filter": {"callIds": batch}}
            try:
                for page in client.paginate(endpoint.method, endpoint.path, endpoint.data_key, body=body):
                    table = transcript_table(page)
                    if table.num_rows:
                        yield table
            except GongStopRun as exc:
                client.stop(str(exc))
                return

    hints = _hints(endpoint)
    hints["merge_key"] = "call_id"
    return dlt.transformer(read_transcripts, data_from=calls, **hints)
