"""Gong's limits are the company's: the daily request budget and the per-second pace, shared by every process.

Gong's quota (10,000 requests a day by default) is per company and resets at midnight UTC, and its
3 requests/second hold for all of a company's integrations together. Two small files per Gong company (in
dlt's pipelines folder, so every sync and crm-upload of this machine finds them) carry both across
processes: the ledger counts the requests sent today, written on every request so a run that is killed
still counts what it spent; the pace file holds when the last requests left and any Retry-After in force,
so that two processes (a sync and a crm-upload, or two syncs of different datasets) together keep to the
rate. Each read-modify-write holds an exclusive `flock` on the file (the OS releases it if a process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock of `path`'s lock file for the block (blocking: the holders only read and write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class BudgetLedger:
    """Requests sent to one Gong company on the current UTC day by every process of this machine."""

    def __init__(self, path: Path, today: Callable[[], str] | None = None) -> None:
        self.path = Path(path)
        self._today = today or (lambda: datetime.now(UTC).date().isoformat())
        self._lock = threading.Lock()

    def used_today(self) -> int:
        """Returns how many requests were spent today (by this and other runs and processes)."""
        with self._lock, _locked(self.path):
            return self._used()

    def spend(self, n: int = 1, budget: Optional[int] = None) -> Optional[int]:
        """Records `n` more requests today and returns today's total; with a `budget`, records nothing and
        returns None when today's total has reached it (checked and spent under one lock, so that two
        processes cannot both take the last request)."""
        with self._lock, _locked(self.path):
            used = self._used()
            if budget is not None and used >= budget:
                return None
            _write_json(self.path, {"day": self._today(), "used": used + n})
            return used + n

    def _used(self) -> int:
        data = _read_json(self.path)
        try:
            return int(data["used"]) if str(data.get("day")) == self._today() else 0
        except (KeyError, TypeError, ValueError):
            return 0


class SharedPace:
    """The pace of every process's requests to one Gong company: at most `burst` requests in any
    `window_s` (+ `margin_s`), spaced evenly, and none while a Retry-After one of them received is in force.

    Each process keeps its own `RateLimiter` for its threads (priorities, the moment a request really
    leaves); a request then also takes its turn here, which only waits when another process sent one.
    Times are the wall clock (the processes share no monotonic clock).
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self._clock = clock
        self._sleep = sleep

    def take(self, window_s: float, burst: int, margin_s: float) -> None:
        """Waits until one more request of this company fits, then records it as sent now."""
        while True:
            with _locked(self.path):
                data = _read_json(self.path)
                now = self._clock()
                sent = sorted(t for t in data.get("sent", []) if isinstance(t, (int, float)) and now - t < window_s)
                wait = float(data.get("held_until", 0) or 0) - now
                if sent:
                    wait = max(wait, (window_s + margin_s) / burst - (now - sent[-1]))
                    if len(sent) >= burst:
                        wait = max(wait, window_s - (now - sent[-burst]) + margin_s)
                if wait <= 1e-9:
                    _write_json(self.path, {**data, "sent": (sent + [now])[-burst:]})
                    return
            self._sleep(wait)

    def hold(self, seconds: float) -> None:
        """Holds back the requests of every process for `seconds` (a Retry-After of Gong's)."""
        with _locked(self.path):
            data = _read_json(self.path)
            until = max(float(data.get("held_until", 0) or 0), self._clock() + seconds)
            _write_json(self.path, {**data, "held_until": until})


def attach_company_limits(client: Any, pipelines_dir: Optional[str] = None) -> None:
    """Gives `client` the ledger and the shared pace of its Gong company (by its base URL's host), in
    `pipelines_dir` (dlt's, by default), unless it has them already."""
    if pipelines_dir is None:
        from dlt.common.pipeline import get_dlt_pipelines_dir

        pipelines_dir = get_dlt_pipelines_dir()
    folder = Path(pipelines_dir) / "gong_request_budget"
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", client.base_url.split("://", 1)[-1])
    if client.ledger is None:
        client.ledger = BudgetLedger(folder / f"{host}.json")
    if client.shared_pace is None:
        client.shared_pace = SharedPace(folder / f"{host}.pace.json")
