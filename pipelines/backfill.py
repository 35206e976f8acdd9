"""`gong-sync plan`: what a backfill will cost before it runs: requests, days under a daily share, wall time.

It asks Gong for the counts where the API announces totals (the calls of the whole range, then of each
window; the users), reads the short lists other resources are read per row of (workspaces, library
folders, permission profiles, CRM integrations), plans the windows exactly as the sync will
(`sources.gong.plan.plan_windows`, from the same count) and the date requests of each window as the source
will (`SyncWindow.plan`), and counts each resource's requests: the pages of 100 calls of each window, one
transcript batch per page, the day or month steps of the stats, one per partition (audit logs' log types),
one per parent row. A list read in pages beyond its first (long audit logs) costs more than planned: the
plan says so. Nothing is synced or written, but the counting requests are spent from the company's daily
ledger like any other.

The daily share (`--max-requests-per-day`, default the daily budget) is what the sync itself honours: the
ledger spans every run of the company's day, so a backfill run each day with the same share stops (exit 3,
its completed windows kept) when the day's share is spent, and the next day's run resumes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from pipelines.errors import UsageError

PAGE_SIZE = 100


@dataclass
class BackfillPlan:
    """The estimate of one backfill (`plan_backfill`)."""

    start: str
    end: str
    span_days: float
    calls: int
    windows: int
    requests: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)  # resources whose cost depends on rows not counted
    counting_requests: int = 0
    max_requests_per_day: Optional[int] = None
    spent_today: int = 0
    rate_limit: Optional[float] = None

    @property
    def total(self) -> int:
        """Requests the sync will send (the counting requests of this plan not included)."""
        return sum(self.requests.values())

    @property
    def days(self) -> int:
        """Days the backfill takes under the daily share (the first day has what is left of today's)."""
        if not self.max_requests_per_day:
            return 1
        first = max(0, self.max_requests_per_day - self.spent_today)
        if self.total <= first:
            return 1
        return 1 + math.ceil((self.total - first) / self.max_requests_per_day)

    @property
    def wall_s(self) -> Optional[float]:
        """Seconds of sending at the rate limit (None without one)."""
        return self.total / self.rate_limit if self.rate_limit else None


def plan_backfill(client: Any, resources: Sequence[str], start: str, end: Optional[str] = None,
                  window_days: float = 7, window_requests: int = 300,
                  max_requests_per_day: Optional[int] = None, include_media: bool = False,
                  company_timezone: Optional[str] = None, activity_period: Optional[str] = None,
                  now: Any = None) -> BackfillPlan:
    """Counts what Gong holds for [start, end) and estimates the requests of syncing `resources` over it."""
    import dlt
    import pendulum

    from sources.gong import _sync_window
    from sources.gong.catalog import BY_NAME
    from sources.gong.plan import plan_windows, windowed
    from sources.gong.windows import SAFEST_TIMEZONE, parse_instant

    now = now or pendulum.now("UTC").start_of("second")
    begin = parse_instant(start, "The start date (--start)")
    finish = parse_instant(end, "The end date (--end)") if end else now
    if begin >= finish:
        raise UsageError(f"The start date {begin.isoformat()} is not before the end {finish.isoformat()}: "
                         "give an earlier --start.")
    if max_requests_per_day is not None and max_requests_per_day <= 0:
        raise UsageError(f"--max-requests-per-day {max_requests_per_day} must be more than 0.")
    timezone = company_timezone or dlt.config.get("sources.gong.company_timezone", str) or SAFEST_TIMEZONE
    period = activity_period or dlt.config.get("sources.gong.activity_period", str) or "WEEK"
    before = client.requests_used
    names = list(resources)
    feed_names = [n for n in names if BY_NAME[n].read_by_feed]
    calls = 0
    if feed_names:
        calls, _ = client.count_calls(begin, finish, include_media)
    windows = plan_windows(names, start, end, begin, finish, window_days, window_requests, calls, PAGE_SIZE)
    plan = BackfillPlan(start=begin.isoformat(), end=finish.isoformat(),
                        span_days=(finish - begin).total_seconds() / 86400, calls=calls, windows=len(windows),
                        max_requests_per_day=max_requests_per_day or client.settings.daily_budget,
                        rate_limit=client.rate_limit)
    if feed_names:
        # Each window's own count (one request a window): its pages of calls, each followed by one batch.
        per_window = [calls] if len(windows) == 1 else [
            client.count_calls(w.calls_start, w.calls_end, include_media)[0] for w in windows]
        pages = [math.ceil(n / PAGE_SIZE) for n in per_window]
        for name in feed_names:
            # A window with no calls still asks for them once (Gong answers "no calls").
            plan.requests[name] = sum(max(p, 1) if name == "calls" else p for p in pages)
        if "calls" in plan.requests and len(windows) > 1:
            plan.requests["calls"] += 1  # the sync counts the range's calls too, to cut it into these windows
    for name in [n for n in windowed(names) if not BY_NAME[n].read_by_feed]:
        endpoint = BY_NAME[name]
        if endpoint.parent:
            plan.unknown[name] = f"one read per {endpoint.parent} row and window"
            continue
        steps = []
        for w in windows:
            sync_window = _sync_window(w.start or start, w.end, 0, timezone, period, finish.isoformat())
            steps.append(sync_window.plan(endpoint.window, None, sync_window.present()))
        requests = sum(len(p.requests) for p in steps) * max(1, len(endpoint.partitions))
        if endpoint.window.step == "whole" and endpoint.window.kind == "datetime":
            # One read a window, in pages: Gong announces the range's total (one request per partition), and
            # the entries are taken as spread like the time (a window's share of them, in pages of 100).
            requests = 0
            for partition in endpoint.partitions or (None,):
                total = _total(client, endpoint, partition, begin, finish)
                for p in steps:
                    share = (parse_instant(p.end, "end") - parse_instant(p.start, "start")).total_seconds() / \
                        max(1.0, (finish - begin).total_seconds())
                    requests += max(1, math.ceil(total * share / PAGE_SIZE))
        plan.requests[name] = requests
    lists = _Lists(client)
    for name in [n for n in names if not BY_NAME[n].windowed]:
        endpoint = BY_NAME[name]
        if endpoint.parent is None:
            plan.requests[name] = lists.pages(name)
        elif BY_NAME[endpoint.parent].windowed:
            plan.unknown[name] = f"one read per {endpoint.parent} row"
        else:
            plan.requests[name] = len(lists.parent_values(name)) * max(1, len(endpoint.partitions))
    plan.counting_requests = client.requests_used - before
    ledger = getattr(client, "ledger", None)
    plan.spent_today = ledger.used_today() if ledger is not None else plan.counting_requests
    return plan


def _total(client: Any, endpoint: Any, partition: Optional[str], begin: Any, finish: Any) -> int:
    """The records Gong announces for one date-time windowed endpoint over the whole range (one request)."""
    params = {endpoint.window.from_param: begin.isoformat()}
    if endpoint.window.to_param:
        params[endpoint.window.to_param] = finish.isoformat()
    if partition is not None and endpoint.partition_param:
        params[endpoint.partition_param] = partition
    if endpoint.method == "GET":
        payload = client.request("GET", endpoint.path, params={**endpoint.query, **params})
    else:
        payload = client.request("POST", endpoint.path, body={**endpoint.body, "filter": params})
    payload = payload or {}
    total = (payload.get("records") or {}).get("totalRecords")
    return int(total) if total is not None else len(payload.get(endpoint.data_key) or [])


class _Lists:
    """The whole lists the per-parent resources are read from (workspaces, folders, profiles...), read once
    each: a resource read per parent row costs one request per row. The users list announces its total."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def pages(self, name: str) -> int:
        from sources.gong.catalog import BY_NAME

        endpoint = BY_NAME[name]
        partitions = max(1, len(endpoint.partitions))
        if name == "users":
            payload = self.client.request(endpoint.method, endpoint.path) or {}
            total = (payload.get("records") or {}).get("totalRecords")
            return max(1, math.ceil(int(total or len(payload.get(endpoint.data_key) or [])) / PAGE_SIZE))
        if name in self.rows:
            return max(1, math.ceil(len(self.rows[name]) / PAGE_SIZE)) * partitions
        return partitions

    def parent_values(self, name: str) -> list[dict[str, str]]:
        """The request parameters of every read of `name`: one per row of its parent."""
        from sources.gong.catalog import BY_NAME
        from sources.gong.rows import records_to_rows

        endpoint = BY_NAME[name]
        parent = BY_NAME[endpoint.parent or ""]
        if parent.name not in self.rows:
            reads = [{}] if parent.parent is None else self.parent_values(parent.name)
            rows: list[dict[str, Any]] = []
            for values in reads:
                for page in self.client.list_pages(parent.method, parent.path, parent.data_key, values,
                                                   body=parent.body, query=parent.query):
                    rows += records_to_rows(parent.row, page, values)
            self.rows[parent.name] = rows
        out = []
        for row in self.rows[parent.name]:
            values = {param: row.get(field) for param, field in endpoint.parent_params.items()}
            if all(v is not None for v in values.values()):
                out.append({k: str(v) for k, v in values.items()})
        return out


def format_plan(plan: BackfillPlan) -> str:
    """The plan as the command prints it."""
    from pipelines.cli import format_duration, plural

    lines = [f"Backfill plan: {plan.start} .. {plan.end} (end exclusive, {plan.span_days:,.1f} days)",
             f"  calls in Gong for the range: {plan.calls:,}, read in {plural(plan.windows, 'window')}",
             "  requests the sync will send:"]
    width = max([len(n) for n in [*plan.requests, *plan.unknown]] + [10])
    for name, count in plan.requests.items():
        lines.append(f"    {name:<{width}}  {count:>9,}")
    for name, why in plan.unknown.items():
        lines.append(f"    {name:<{width}}  {'?':>9}  ({why}; not in the total)")
    lines.append(f"    {'total':<{width}}  {plan.total:>9,}")
    if plan.max_requests_per_day:
        lines.append(f"  under {plan.max_requests_per_day:,} requests a day ({plan.spent_today:,} spent today by this "
                     f"company's runs): {plural(plan.days, 'day')}")
    if plan.wall_s is not None:
        lines.append(f"  sending time at {plan.rate_limit:g} requests a second: {format_duration(plan.wall_s)}"
                     + (" in all, spread over the days" if plan.days > 1 else ""))
    lines.append(f"  this plan spent {plural(plan.counting_requests, 'request')} counting; nothing was synced.")
    return "\n".join(lines)
