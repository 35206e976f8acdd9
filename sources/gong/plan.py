"""The plan of one sync: which windows of the range are loaded, in what order, by which resources. No I/O.

A run reads one range of time. Where it starts is the one resume rule (`resume_point`): the explicit
start, else the end of the last committed calls window minus the lookback, else the configured start
date, else 30 days before now. A range longer than `window_days` is cut into windows that each load and
commit on their own (what a crash or a spent quota can cost): as many equal windows as make each take
about `window_requests` requests, when Gong's count of the range's calls tells what the range costs,
else windows of `window_days`. The plan is fixed before the first window is read; each window's calls
are then loaded in chunks of pages as they arrive (`sources/gong/feed.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pendulum
from pendulum import DateTime

from .catalog import BY_NAME
from .settings import TRANSCRIPT_BATCH_SIZE

DEFAULT_HISTORY_DAYS = 30


@dataclass(frozen=True)
class Window:
    """One load unit of the plan: the bounds given to the source and the resources it reads.

    `start` None resumes every windowed resource from its own state (the first window of a run without
    --start); `end` None reads up to the run's present moment. `calls_start`/`calls_end` are the calls
    read of this window, as the resume rule resolves it.
    """

    index: int
    start: Optional[str]
    end: Optional[str]
    resources: tuple[str, ...]
    calls_start: DateTime
    calls_end: DateTime


def resume_point(start: Optional[DateTime], synced_until: Optional[str], lookback_days: float,
                 configured_start: Optional[DateTime], now: DateTime) -> tuple[DateTime, bool]:
    """Where a run's range begins, and whether that comes from the stored state."""
    if start is not None:
        return start.start_of("second"), False
    if synced_until:
        resumed = pendulum.parse(synced_until).in_timezone("UTC") - days(lookback_days)
        return resumed.start_of("second"), True
    if configured_start is not None:
        return configured_start.start_of("second"), False
    return (now - days(DEFAULT_HISTORY_DAYS)).start_of("second"), False


def days(count: float) -> pendulum.Duration:
    return pendulum.duration(seconds=int(float(count) * 86400))


def windowed(names: Sequence[str]) -> list[str]:
    """The resources whose cost grows with the range (they are read in every window)."""
    return [n for n in names if BY_NAME[n].windowed]


def counted(names: Sequence[str]) -> bool:
    """Whether one request counting the range's calls tells what every window costs: the windowed
    resources are the calls and what follows them, or read one request per window or per day."""
    return any(BY_NAME[n].read_by_feed for n in windowed(names))


def estimated_requests(names: Sequence[str], call_pages: int, span_days: float) -> float:
    """Requests the windowed `names` take over a range: per page of calls (the page and one batch per
    follower), per day (day-stepped stats), per partition (one request each, e.g. audit logs' logTypes)."""
    names = windowed(names)
    total = 0.0
    if any(BY_NAME[n].read_by_feed for n in names):
        total += call_pages * (1 + sum(1 for n in names if BY_NAME[n].follows_calls))
    for name in names:
        endpoint = BY_NAME[name]
        if endpoint.read_by_feed:
            continue
        per = max(1, len(endpoint.partitions))
        steps = span_days if endpoint.window.step == "day" else span_days / 30 if endpoint.window.step == "month" \
            else 1
        total += per * max(1.0, steps)
    return total


def plan_windows(resources: Sequence[str], start: Optional[str], end: Optional[str], begin: DateTime,
                 finish: DateTime, window_days: float, window_requests: int,
                 calls_total: Optional[int] = None, page_size: int = TRANSCRIPT_BATCH_SIZE) -> list[Window]:
    """The windows of the range [begin, finish): one when it is short, else equal windows of about
    `window_requests` requests (with Gong's count of the calls, `calls_total`) or of `window_days`.

    The first window keeps `start` as given (None: each resource resumes from its own state), the last
    `end` (None: now); the others get the cuts. Whole lists are read in the first window only.
    """
    names = tuple(resources)
    span = (finish - begin).total_seconds()
    count = 1
    if window_days > 0 and span > days(window_days).total_seconds():
        if window_requests > 0 and calls_total is not None:
            pages = math.ceil(calls_total / page_size)
            count = max(1, math.ceil(estimated_requests(names, pages, span / 86400) / window_requests))
        else:
            count = math.ceil(span / days(window_days).total_seconds() - 1e-9)
    cuts = [begin.add(seconds=round(span * i / count)) for i in range(count)] + [finish]
    later = tuple(windowed(names))
    return [Window(index=i, start=start if i == 0 else cuts[i].isoformat(),
                   end=end if i == count - 1 else cuts[i + 1].isoformat(),
                   resources=names if i == 0 else later, calls_start=cuts[i], calls_end=cuts[i + 1])
            for i in range(count)]
