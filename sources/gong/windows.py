"""Date windows for incremental reads: where a run starts, where it ends, and what state it leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pendulum
from pendulum import DateTime, Duration

from .client import GongError


def parse_instant(value: object, name: str) -> DateTime:
    """Parses a date or date-time (ISO-8601; a bare date means midnight UTC) into a UTC DateTime."""
    try:
        parsed = pendulum.parse(str(value).strip(), tz="UTC")
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        raise GongError(f"{name} {value!r} is not a date: use YYYY-MM-DD or an ISO-8601 date-time.") from None
    if not isinstance(parsed, DateTime):
        if isinstance(parsed, pendulum.Date):
            return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz="UTC")
        raise GongError(f"{name} {value!r} is not a date: use YYYY-MM-DD or an ISO-8601 date-time.")
    return parsed.in_timezone("UTC")


@dataclass(frozen=True)
class SyncWindow:
    """The configured bounds of a windowed resource and the rule that moves its state forward.

    A run reads `[from, to)`: `from` is the explicit start, or the stored end of the last synced
    window minus the lookback, or `default_history` before now on a first run; `to` is the explicit
    end or now.
    """

    start: Optional[DateTime]
    end: Optional[DateTime]
    lookback: Duration
    default_history: Duration

    def validate(self) -> None:
        """Raises GongError when the explicit bounds are reversed or the lookback is negative."""
        if self.start and self.end and self.start >= self.end:
            raise GongError(
                f"The start {self.start.to_date_string()} is not before the end {self.end.to_date_string()}: "
                "give --start earlier than --end."
            )
        if self.lookback.total_seconds() < 0:
            raise GongError("lookback_days must be zero or more.")

    def resolve(self, synced_until: Optional[str], now: DateTime) -> tuple[DateTime, DateTime]:
        """Returns the `[from, to)` this run reads, given the stored state and the current time."""
        end = self.end or now
        if self.start is not None:
            start = self.start
        elif synced_until:
            start = pendulum.parse(synced_until).in_timezone("UTC") - self.lookback
        else:
            start = now - self.default_history
        return start, end

    @staticmethod
    def advance(synced_until: Optional[str], start: DateTime, end: DateTime, now: DateTime) -> DateTime:
        """Returns the new `synced_until` after `[start, end)` was read completely.

        State only moves forward, and only when the window touches what was already synced (a
        backfill of older history leaves it where it was); it never passes the present moment.
        """
        reached = min(end, now)
        if not synced_until:
            return reached
        previous = pendulum.parse(synced_until).in_timezone("UTC")
        if start <= previous:
            return max(previous, reached)
        return previous
