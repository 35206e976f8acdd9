"""Window planning: date-time and company-day date windows, lookback, and the date-only traps."""

from __future__ import annotations

import pendulum
import pytest

from sources.gong.catalog import BY_NAME, Window
from sources.gong.client import GongError
from sources.gong.windows import SyncWindow, literal_date, parse_instant

NOW = pendulum.datetime(2026, 11, 1, 3, 0, tz="UTC")  # still Oct 31 in New York and in UTC-12
STATS = BY_NAME["interaction_stats"].window
assert STATS is not None


def window(start: str | None = None, end: str | None = None, lookback_days: float = 3,
           tz: str = "America/New_York", period: str = "WEEK") -> SyncWindow:
    w = SyncWindow(
        start=parse_instant(start, "start") if start else None, end=parse_instant(end, "end") if end else None,
        lookback=pendulum.duration(days=lookback_days), default_history=pendulum.duration(days=30),
        company_timezone=tz, period=period,
        start_day=literal_date(start) if start else None, end_day=literal_date(end) if end else None,
    )
    w.validate()
    return w


def test_stats_days_end_before_the_company_day_that_has_not_ended() -> None:
    plan = window(start="2026-10-25").plan(STATS, None, NOW)
    days = [(r.params["fromDate"], r.params["toDate"]) for r in plan.requests]
    assert days[0] == ("2026-10-25", "2026-10-26"), "a bare start date is that day in the company's zone"
    assert days[-1] == ("2026-10-30", "2026-10-31"), "toDate never passes the company's current day (Oct 31)"
    assert len(days) == 6 and all(a < b for a, b in days)
    assert [r.context["day"] for r in plan.requests] == [d for d, _ in days]
    assert plan.new_state == "2026-10-31"


def test_same_day_window_is_never_sent() -> None:
    plan = window().plan(STATS, "2026-10-31", NOW)
    assert [r.params for r in plan.requests] == [
        {"fromDate": "2026-10-28", "toDate": "2026-10-29"},
        {"fromDate": "2026-10-29", "toDate": "2026-10-30"},
        {"fromDate": "2026-10-30", "toDate": "2026-10-31"},
    ], "the lookback re-reads 3 days; the current day waits until it is over"
    plan = window(lookback_days=0).plan(STATS, "2026-10-31", NOW)
    assert plan.requests == [] and plan.new_state == "2026-10-31"


def test_default_timezone_is_the_safest_one() -> None:
    w = SyncWindow(start=None, end=None, lookback=pendulum.duration(days=0),
                   default_history=pendulum.duration(days=2))
    plan = w.plan(STATS, None, pendulum.datetime(2026, 11, 1, 11, 0, tz="UTC"))
    assert plan.requests[-1].params["toDate"] == "2026-10-31", "at 11:00 UTC it is still Oct 31 in UTC-12"


def test_answered_scorecards_include_today_and_use_review_dates() -> None:
    spec = BY_NAME["answered_scorecards"].window
    plan = window(start="2026-10-20").plan(spec, None, NOW)
    assert [r.params for r in plan.requests] == [{"reviewFromDate": "2026-10-20", "reviewToDate": "2026-11-01"}]


def test_period_windows_start_on_the_period_start() -> None:
    spec = BY_NAME["activity_by_period"].window
    plan = window(start="2026-10-22", period="WEEK").plan(spec, None, NOW)  # a Thursday
    assert plan.requests[0].params == {"fromDate": "2026-10-19", "toDate": "2026-10-31"}
    assert plan.requests[0].context == {"period": "WEEK"}
    plan = window(start="2026-10-22", period="MONTH").plan(spec, None, NOW)
    assert plan.requests[0].params["fromDate"] == "2026-10-01"


def test_datetime_windows_with_lookback_and_backfills_do_not_move_state_backwards() -> None:
    spec = Window("datetime", "fromDateTime", "toDateTime")
    plan = window().plan(spec, "2026-10-30T00:00:00+00:00", NOW)
    assert plan.requests[0].params == {"fromDateTime": "2026-10-27T00:00:00+00:00",
                                       "toDateTime": "2026-11-01T03:00:00+00:00"}
    assert plan.new_state == "2026-11-01T03:00:00+00:00"
    older = window(start="2026-01-01", end="2026-02-01").plan(spec, "2026-10-30T00:00:00+00:00", NOW)
    assert older.new_state == "2026-10-30T00:00:00+00:00", "a backfill of old history keeps the state"


def test_since_windows_and_month_steps() -> None:
    since = BY_NAME["manual_crm_associations"].window
    plan = window().plan(since, "2026-10-30T00:00:00+00:00", NOW)
    assert plan.requests[0].params == {"fromDateTime": "2026-10-27T00:00:00+00:00"}
    months = BY_NAME["coaching"].window
    plan = window(start="2026-09-15").plan(months, None, NOW)
    assert [(r.params["from"][:10], r.params["to"][:10]) for r in plan.requests] == [
        ("2026-09-01", "2026-10-01"), ("2026-10-01", "2026-11-01"), ("2026-11-01", "2026-11-01")]
    assert plan.requests[-1].params["to"] == NOW.isoformat()


@pytest.mark.parametrize("kwargs, message", [
    ({"start": "2026-11-02", "end": "2026-11-01"}, "is not before the end"),
    ({"tz": "Mars/Olympus"}, "is not a time zone"),
    ({"period": "FORTNIGHT"}, "activity_period"),
])
def test_bad_window_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(GongError, match=message):
        window(**kwargs)
