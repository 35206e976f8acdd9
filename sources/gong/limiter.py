"""The pace of a client's requests: at most Gong's rate in any second, evenly spaced, across threads.

`RateLimiter` hands out turns; the session made by `stamping_session` tells it when each request really
leaves (when `requests` hands it to a connection, and again once a new connection has been opened), so
that the spacing Gong sees is the spacing the limiter chose. `budget.SharedPace` extends the same rule
to the processes of one company.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Optional

import requests
import urllib3


class RateLimiter:
    """Allows at most `rate` acquisitions in any sliding one-second window, across threads.

    A rate of 0 or None disables limiting. The window is measured on the monotonic clock.
    """

    def __init__(self, rate: Optional[float], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate if rate and rate > 0 else None
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stamps: deque[list[float]] = deque()  # one [time] per request in the window
        # Whole requests per window; a fractional rate below 1 becomes a longer window for one request.
        self._burst = max(1, int(self.rate)) if self.rate else 0
        self._window = (self._burst / self.rate) if self.rate else 0.0
        # A margin keeps the server's own one-second window, which sees arrivals delayed by the network
        # (and by whatever else the process is doing, e.g. a thread reading ahead waiting for Python's
        # lock while another normalizes), from counting one request too many.
        self.margin = self.BASE_MARGIN
        self._since_widened = 0
        # Requests asked for `first` that wait for their turn: the others let them go first.
        self._first = 0
        self._turns = threading.Condition()
        # Until when (monotonic) Gong asked every request to wait (a 429's Retry-After): the whole process
        # holds back, not only the thread that was answered. Written without `_lock`, which a thread waiting
        # for its turn holds while it sleeps (a float assignment is atomic).
        self._held_until = 0.0

    # 30 ms: the spread of arrival delays seen by the simulator with both cores busy (it answered 0-2 of
    # 220 requests with a 429 at this margin, bench/RESULTS.md); every 0.01 s costs 1 % of a sync's time,
    # a 429 costs a request and a second, and widens the margin until 100 requests pass without one.
    BASE_MARGIN = 0.03
    # A widened margin narrows back (halved, down to the base) after this many requests without a 429:
    # a 429 costs one request, a margin kept wide for the rest of a long run costs far more time.
    NARROW_AFTER = 100

    @property
    def window_s(self) -> float:
        """The length of the sliding window, in seconds (0 without a limit)."""
        return self._window

    @property
    def burst(self) -> int:
        """Requests allowed per window (0 without a limit)."""
        return self._burst

    def widen(self) -> None:
        """Lengthens the margin after the server said the rate was exceeded (a 429 costs a request)."""
        with self._lock:
            self.margin = min(self.margin * 2, 0.5)
            self._since_widened = 0

    def hold(self, seconds: float) -> None:
        """Holds back every request not yet sent, of every thread, for `seconds` from now (Gong's Retry-After
        is the company's, not one request's); requests then resume at the limiter's pace."""
        self._held_until = max(self._held_until, self._clock() + seconds)

    def _held(self) -> float:
        """Seconds left of a hold (0 if none)."""
        return max(0.0, self._held_until - self._clock())

    def acquire(self, first: bool = False) -> list[float]:
        """Blocks until one more request fits in the window, then records it and returns its stamp.

        Requests are spread evenly, (window + margin) / rate apart, rather than sent in bursts: a burst
        arrives bunched and queues (in this process and at Gong), and the request of a burst that was
        delayed most would then share the server's second with the next burst's first one (a 429).
        A request asked for `first` takes the next turn before those already waiting (a page of calls:
        the reads that follow it cannot be sent before it arrives). Pass the stamp to `sent` when the
        request really leaves, if that is later.
        """
        stamp = [0.0]
        if self.rate is None:
            while (held := self._held()) > 0:
                self._sleep(held)
            return stamp
        if first:
            with self._turns:
                self._first += 1
        try:
            while True:
                with self._lock:
                    while True:
                        now = self._clock()
                        # Stamps may be out of order (`sent` moves one later): keep those still in the window.
                        self._stamps = deque(s for s in self._stamps if now - s[0] < self._window)
                        wait = self._held()
                        if self._stamps:
                            wait = max(wait, (self._window + self.margin) / self._burst
                                       - (now - max(s[0] for s in self._stamps)))
                            if len(self._stamps) >= self._burst:
                                oldest = min(s[0] for s in self._stamps)
                                wait = max(wait, self._window - (now - oldest) + self.margin)
                        if wait > 1e-9:  # a float residue is no wait (a clock might not move by it)
                            self._sleep(wait)
                            continue
                        if not first and self._first:
                            break  # this turn goes to the request asked for first
                        stamp[0] = now
                        self._stamps.append(stamp)
                        self._since_widened += 1
                        if self._since_widened >= self.NARROW_AFTER and self.margin > self.BASE_MARGIN:
                            self.margin = max(self.BASE_MARGIN, self.margin / 2)
                            self._since_widened = 0
                        return stamp
                # Outside the lock, so that the request asked for first can take it; then wait for a turn again.
                with self._turns:
                    self._turns.wait_for(lambda: not self._first, timeout=0.05)
        finally:
            if first:
                with self._turns:
                    self._first -= 1
                    self._turns.notify_all()

    def sent(self, stamp: list[float]) -> None:
        """Moves a request's stamp to now, the moment `requests` hands it to the connection: preparing it
        may have waited for Python's lock (held by another thread's long C call or the garbage collector)
        for long enough that it would reach Gong in the same second as the requests after it (a 429).
        A request held up for longer than the whole window is no longer counted (as before this stamp)."""
        if self.rate is None:
            return
        # Without the lock, which a thread waiting for its turn holds while it sleeps: only the sending
        # thread writes its stamp, and `acquire` reading it just before or after is right either way.
        stamp[0] = max(stamp[0], self._clock())


def _mark_sending() -> None:
    mark = getattr(SENDING, "mark", None)
    if mark is not None:
        mark()


class _StampingHTTPConnection(urllib3.connection.HTTPConnection):
    """Marks the request again once its new connection is open: setting one up (the first request of a
    pool, or after Gong closed one) took ~60-80 ms here, by which the request reached Gong closer to the
    next one than the limiter spaced them (4 arrivals within 0.95 s)."""

    def connect(self) -> None:
        super().connect()
        _mark_sending()


class _StampingHTTPSConnection(urllib3.connection.HTTPSConnection):
    """As `_StampingHTTPConnection`, for https (the TLS handshake included)."""

    def connect(self) -> None:
        super().connect()
        _mark_sending()


class _StampingHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _StampingHTTPConnection


class _StampingHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _StampingHTTPSConnection


class _StampOnSend(requests.adapters.HTTPAdapter):
    """Tells the limiter when `requests` hands a request to the connection, and again when a new connection
    has been opened for it (see `RateLimiter.sent`); urllib3's documented pool and connection classes."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _StampingHTTPPool, "https": _StampingHTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        _mark_sending()
        return super().send(request, *args, **kwargs)


# The limiter stamp of the request this thread is sending (read by `_StampOnSend`).
SENDING = threading.local()


def stamping_session() -> requests.Session:
    session = requests.Session()
    adapter = _StampOnSend()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
