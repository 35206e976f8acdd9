"""A controllable UTC clock: real time, or frozen and moved only by hand."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def to_utc(value: datetime) -> datetime:
    """Return an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` allowed) into aware UTC."""
    if not isinstance(text, str) or not text:
        raise ValueError("timestamp must be a non-empty string")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return to_utc(datetime.fromisoformat(value))


class Clock:
    """Thread-safe clock; frozen when given a start time, else real UTC time."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = to_utc(frozen_at) if frozen_at else None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """Current simulated time (aware UTC)."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set_now(self, value: datetime) -> None:
        """Freeze the clock at ``value``."""
        with self._lock:
            self._frozen = to_utc(value)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or backward) by ``delta``."""
        with self._lock:
            if self._frozen is not None:
                self._frozen = self._frozen + delta
            else:
                self._offset += delta
