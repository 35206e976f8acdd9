"""The daily request budget, remembered across runs of the same UTC day.

Gong's quota (10,000 requests a day by default) is per company and resets at midnight UTC. A
ledger file records how many requests this machine has sent to one Gong company today; it is
written on every request, so a run that is killed still counts what it spent.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


class BudgetLedger:
    """Requests sent to one Gong company on the current UTC day, persisted in a small JSON file."""

    def __init__(self, path: Path, today: Callable[[], str] | None = None) -> None:
        self.path = Path(path)
        self._today = today or (lambda: datetime.now(UTC).date().isoformat())
        self._lock = threading.Lock()
        self._day, self._used = self._read()

    def used_today(self) -> int:
        """Returns how many requests were spent today (by this and earlier runs)."""
        with self._lock:
            self._roll()
            return self._used

    def spend(self, n: int = 1) -> int:
        """Records `n` more requests today and returns today's total."""
        with self._lock:
            self._roll()
            self._used += n
            self._write()
            return self._used

    def _roll(self) -> None:
        today = self._today()
        if self._day != today:
            self._day, self._used = today, 0

    def _read(self) -> tuple[str, int]:
        try:
            data = json.loads(self.path.read_text())
            return str(data["day"]), int(data["used"])
        except (OSError, ValueError, KeyError, TypeError):
            return self._today(), 0

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"day": self._day, "used": self._used}))
        os.replace(tmp, self.path)
