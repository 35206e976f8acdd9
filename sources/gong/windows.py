"""Date windows for incremental reads: where a run starts, where it ends, and what state it leaves.

Two kinds of windows exist in Gong's API: date-times (`fromDateTime` inclusive, `toDateTime`
exclusive) and plain dates in the company's time zone (`fromDate` inclusive, `toDate` exclusive,
and for the stats endpoints a `toDate` no later than the company's current day). A window is
planned from the configured bounds and the stored state (the exclusive end of the last completed
window), minus a lookback, and cut into the requests an endpoint needs (one per day or month where
rows are keyed by day or month).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import pendulum
from pendulum import Date, DateTime, Duration

from .catalog import Window
from .client import GongConfigError

PERIODS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")

# When the company's time zone is not configured, date windows end at the current day of the
# westernmost time zone: a toDate Gong could call "in the future" is then impossible anywhere.
SAFEST_TIMEZONE = "Etc/GMT+12"


def parse_instant(value: object, name: str) -> DateTime:
    """Parses a date or date-time (ISO-8601; a bare date means midnight UTC) into a UTC DateTime."""
    try:
        parsed = pendulum.parse(str(value).strip(), tz="UTC")
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise GongConfigError(f"{name} {value!r} is not a date: use YYYY-MM-DD or an ISO-8601 date-time.") from None
    if isinstance(parsed, DateTime):
        return parsed.in_timezone("UTC")
    if isinstance(parsed, Date):
        return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
    raise GongConfigError(f"{name} {value!r} is not a date: use YYYY-MM-DD or an ISO-8601 date-time.")


def literal_date(value: object) -> Optional[Date]:
    """Returns the date a bare `YYYY-MM-DD` names (for date-only endpoints it means that day in the
    company's time zone, not midnight UTC), or None for a date-time."""
    text = str(value).strip()
    if len(text) != 10:
        return None
    try:
        return Date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Request:
    """One request of a window: the filter values to send and the context its rows get."""

    params: dict[str, str]
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """The requests of one run of a windowed resource and the state to store once all succeeded."""

    requests: list[Request]
    start: str
    end: str
    new_state: Optional[str]


@dataclass(frozen=True)
class SyncWindow:
    """The configured bounds of windowed resources and the rule that moves their state forward.

    A run reads `[from, to)`: `from` is the explicit start, or the stored end of the last completed
    window minus the lookback, or `default_history` before now on a first run; `to` is the explicit
    end or now (for date windows, capped by the company's current day as the endpoint requires).
    """

    start: Optional[DateTime]
    end: Optional[DateTime]
    lookback: Duration
    default_history: Duration
    company_timezone: str = SAFEST_TIMEZONE
    period: str = "WEEK"
    start_day: Optional[Date] = None
    end_day: Optional[Date] = None
    now: Optional[DateTime] = None

    def present(self) -> DateTime:
        """The run's present moment: the pinned `now`, else the current second."""
        return self.now if self.now is not None else pendulum.now("UTC").start_of("second")

    def pinned(self) -> SyncWindow:
        """This window with its present moment fixed (one read sees one `now`)."""
        return self if self.now is not None else replace(self, now=self.present())

    def validate(self) -> None:
        """Raises GongConfigError when the bounds are reversed, the lookback negative or a setting unknown."""
        if self.start and self.end and self.start >= self.end:
            raise GongConfigError(
                f"The start {self.start.to_date_string()} is not before the end {self.end.to_date_string()}: "
                "give --start earlier than --end."
            )
        if self.lookback.total_seconds() < 0:
            raise GongConfigError(f"lookback_days {self.lookback.total_days():g} is negative: give 0 or more days.")
        if self.period not in PERIODS:
            raise GongConfigError(f"activity_period {self.period!r} is not one of {', '.join(PERIODS)}.")
        try:
            pendulum.timezone(self.company_timezone)
        except Exception:
            raise GongConfigError(
                f"company_timezone {self.company_timezone!r} is not a time zone name like America/New_York."
            ) from None

    def resolve(self, synced_until: Optional[str], now: DateTime) -> tuple[DateTime, DateTime]:
        """Returns the date-time `[from, to)` this run reads, given the stored state and the time."""
        end = self.end or now
        if self.start is not None:
            start = self.start
        elif synced_until:
            start = pendulum.parse(synced_until).in_timezone("UTC") - self.lookback
        else:
            start = now - self.default_history
        return start.start_of("second"), end

    @staticmethod
    def advance(synced_until: Optional[str], start: Any, end: Any, now: Any) -> Any:
        """Returns the new state after `[start, end)` was read completely.

        State only moves forward, and only when the window touches what was already synced (a
        backfill of older history leaves it where it was); it never passes the present moment.
        """
        reached = min(end, now)
        if not synced_until:
            return reached
        previous = _parse_state(synced_until, type(reached))
        if start <= previous:
            return max(previous, reached)
        return previous

    def plan(self, spec: Window, synced_until: Optional[str], now: DateTime) -> Plan:
        """Returns the requests that read this run's window of an endpoint, and the state to store after."""
        if spec.kind == "date":
            return self._plan_dates(spec, synced_until, now)
        return self._plan_datetimes(spec, synced_until, now)

    def _plan_datetimes(self, spec: Window, synced_until: Optional[str], now: DateTime) -> Plan:
        start, end = self.resolve(synced_until, now)
        if spec.to_param is None:  # "since": nothing bounds the end but the present
            end = now
        requests: list[Request] = []
        if start < end:
            if spec.step == "month":
                cursor = start.start_of("month")
                start = cursor
                while cursor < end:
                    nxt = cursor.add(months=1)
                    requests.append(Request(
                        {spec.from_param: cursor.isoformat(), spec.to_param or "": min(nxt, end).isoformat()},
                        {"periodStart": cursor.isoformat(), "periodEnd": nxt.isoformat()},
                    ))
                    cursor = nxt
            else:
                params = {spec.from_param: start.isoformat()}
                if spec.to_param:
                    params[spec.to_param] = end.isoformat()
                requests.append(Request(params))
        new_state = self.advance(synced_until, start, end, now).isoformat() if start < end else synced_until
        return Plan(requests, start.isoformat(), end.isoformat(), new_state)

    def _plan_dates(self, spec: Window, synced_until: Optional[str], now: DateTime) -> Plan:
        tz = pendulum.timezone(self.company_timezone)
        today = now.in_timezone(tz).date()
        cap = today if spec.to_limit == "today" else today.add(days=1)
        end = min(self.end_day or self.end.in_timezone(tz).date(), cap) if self.end else cap
        if self.start is not None:
            start = self.start_day or self.start.in_timezone(tz).date()
        elif synced_until:
            start = Date.fromisoformat(synced_until[:10]).subtract(days=math.ceil(self.lookback.total_days()))
        else:
            start = today.subtract(days=math.ceil(self.default_history.total_days()))
        if spec.align_to_period:
            start = period_start(start, self.period)
        requests: list[Request] = []
        if start < end:  # a from equal to the to is an empty (and refused) window: never sent
            if spec.step == "day":
                day = start
                while day < end:
                    nxt = day.add(days=1)
                    requests.append(Request({spec.from_param: day.isoformat(), spec.to_param or "": nxt.isoformat()},
                                            {"day": day.isoformat()}))
                    day = nxt
            else:
                requests.append(Request({spec.from_param: start.isoformat(), spec.to_param or "": end.isoformat()},
                                        {"period": self.period} if spec.align_to_period else {}))
        new_state = self.advance(synced_until, start, end, cap).isoformat() if start < end else synced_until
        return Plan(requests, start.isoformat(), end.isoformat(), new_state)


def period_start(day: Date, period: str) -> Date:
    """Returns the first day of the calendar period (Gong's weeks start on Monday) containing `day`."""
    if period == "WEEK":
        return day.subtract(days=day.weekday())
    if period == "MONTH":
        return day.replace(day=1)
    if period == "QUARTER":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    if period == "YEAR":
        return day.replace(month=1, day=1)
    return day


def _parse_state(value: str, kind: type) -> Any:
    if kind is Date or (isinstance(kind, type) and issubclass(kind, Date) and not issubclass(kind, DateTime)):
        return Date.fromisoformat(value[:10])
    return pendulum.parse(value).in_timezone("UTC")
