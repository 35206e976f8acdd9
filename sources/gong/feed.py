"""Reading the calls, and what follows each page of them, ahead of the pipeline, in the plan's order.

A sync at Gong's 3 requests/second spends most of its time waiting for answers, and dlt normalizes and
loads each chunk of calls on the pipeline's thread. `CallsFeed` reads, on a thread of its own, the pages
of calls of every window of the plan (`plan.py`), one after another by cursor, and sends the requests that
follow each page (transcripts and call access lists, 100 call ids a request) to a small pool of threads:
all through the one client, so the rate limiter, the daily budget and the retries hold for every request.
The pipeline takes the pages chunk by chunk (`chunks`); while it loads a chunk, the next is read.

Nothing is guessed: the feed sends exactly the requests of the plan, once each, and the resources take
what it read (they send no request for calls or what follows them). It holds at most `ahead` pages that
the pipeline has not taken yet. Private calls are left out here (`GongClient.is_private`) and never sent
to the endpoints that follow calls.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

from pendulum import DateTime

from .catalog import BY_NAME, Endpoint
from .client import GongClient, GongStopRun
from .rows import records_to_rows
from .settings import TRANSCRIPT_BATCH_SIZE

logger = logging.getLogger("gong_sync.feed")

# Threads sending the requests that follow pages of calls: with Gong's latency (often a second) one request
# at a time cannot reach 3 per second; the rate limiter keeps them all at its pace.
DEFAULT_WORKERS = 2
# The pages of calls take the limiter's next turn while fewer reads than this wait to follow them (2 s at
# Gong's 3 requests a second): the reads that follow a page cannot start before it, and a page request that
# queues behind them leaves the rate unused (bench: answers came 10.7 s late over a 10,240-call backfill).
LEAD = 6


@dataclass
class Page:
    """One page of calls as read: the ids of its non-private calls and their rows (made here, by the catalog's
    row function: this thread waits for Gong most of the time, the pipeline's does not), how many private
    calls it left out, and the reads that follow it."""

    ids: list[str]
    made_rows: Future[list[dict[str, Any]]]
    private: int
    follower_reads: dict[str, list[Future[list[Any]]]] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the page's calls (waits until they are made)."""
        return self.made_rows.result()

    def answers(self, follower: str) -> Iterator[Any]:
        """The pages `follower` read for this page's calls, in order (once: they are let go as they are
        taken); raises what a read met."""
        reads = self.follower_reads.pop(follower, [])
        while reads:
            yield from reads.pop(0).result()


class _WindowReads:
    """The reads that follow one window's pages: how many were sent, ended, and whether one failed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.sent = self.ended = 0
        self.failed = False
        self.closed = False  # every page of the window was read: no more reads will be sent

    def add(self, read: Future[list[Any]]) -> None:
        with self._cond:
            self.sent += 1
        read.add_done_callback(self._ended)

    def _ended(self, read: Future[list[Any]]) -> None:
        with self._cond:
            self.ended += 1
            self.failed = self.failed or read.cancelled() or read.exception() is not None
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self) -> bool:
        """Waits until every read of the window ended; True when none failed."""
        with self._cond:
            while not (self.closed and self.ended >= self.sent):
                self._cond.wait()
            return not self.failed


class Chunk:
    """Pages of one window that are loaded together, handed out as they arrive: iterating a chunk waits for
    each page in turn, so its extract runs while the rest of it is read. Once iterated, `pages` holds them and
    `last` says whether it ended the window."""

    def __init__(self, feed: CallsFeed, window: int, size: int, start: DateTime, end: DateTime,
                 reads: _WindowReads) -> None:
        self.window, self.start, self.end, self.reads = window, start, end, reads
        self._feed, self._size = feed, size
        self.pages: list[Page] = []
        self.last = False
        self.complete = True  # False when the window's read stopped early (the quota): its state stays
        self._done = False

    def __iter__(self) -> Iterator[Page]:
        if self._done:
            yield from self.pages
            return
        while self._size == 0 or len(self.pages) < self._size:
            item = self._feed._take(self.window)
            if isinstance(item, _End):
                self._end(item)
                return
            self.pages.append(item)
            yield item
        if self._feed._window_may_end(self.window):
            self._end(self._feed._take(self.window))
        self._done = True

    def _end(self, item: _End) -> None:
        self._done = self.last = True
        self.complete = item.complete
        if item.error is not None:
            raise item.error

    def drain(self) -> None:
        """Takes the pages not iterated yet (the chunk's extract stopped early): the next chunk follows them."""
        for _ in self:
            pass

    def followed(self) -> bool:
        """Whether everything of the window was read: its pages to the end and every read that follows them
        (waits for those still under way)."""
        return self.last and self.complete and self.reads.wait()


def call_id(call: dict[str, Any]) -> Optional[str]:
    """A call's id as text; None for a record without one (the row gate sets it aside)."""
    value = (call.get("metaData") or {}).get("id")
    return None if value is None or value == "" else str(value)


class _End:
    """Closes a window's pages: `complete` when its read ran to the last page."""

    def __init__(self, complete: bool, error: Optional[BaseException] = None) -> None:
        self.complete = complete
        self.error = error


class CallsFeed:
    """Reads the calls of `windows` ([start, end) each) and what `followers` read for each page of them.

    `first_page`, the answer to the first window's first request if it was already received (to count the
    range's calls), is taken instead of being asked again. `seen_call_ids`, a set, collects the id of every
    non-private call read (reconcile runs compare it with the warehouse).
    """

    def __init__(self, client: GongClient, windows: Sequence[tuple[DateTime, DateTime]], followers: Sequence[str],
                 include_media: bool = False, chunk_pages: int = 10, ahead: Optional[int] = None,
                 workers: int = DEFAULT_WORKERS, first_page: Optional[dict[str, Any]] = None,
                 seen_call_ids: Optional[set[str]] = None) -> None:
        self.client = client
        self.windows = list(windows)
        self.followers: list[Endpoint] = [BY_NAME[name] for name in followers]
        self.include_media = include_media
        self.chunk_pages = max(0, chunk_pages)
        # Two chunks ahead: the next one is read while one loads, whatever the pace of each.
        self.ahead = ahead if ahead is not None else max(2 * self.chunk_pages, 1)
        self.first_page = first_page
        self.seen_call_ids = seen_call_ids
        self._cond = threading.Condition()
        self._items: list[deque[Any]] = [deque() for _ in self.windows]
        self._totals: list[Optional[int]] = [None] * len(self.windows)  # Gong's count of each window's calls
        self._page_sizes: list[int] = [TRANSCRIPT_BATCH_SIZE] * len(self.windows)  # records on its first page
        self._reads = [_WindowReads() for _ in self.windows]
        self._taken = [0] * len(self.windows)  # pages of each window the pipeline took
        self._buffered = 0
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gong-follow") \
            if self.followers else None
        self._rows_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gong-rows")
        self._thread = threading.Thread(target=self._run, name="gong-calls", daemon=True)

    # ------------------------------------------------------------------------------------ the pipeline's side

    def start(self) -> CallsFeed:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stops reading, forgets what was not taken and waits for the threads to end."""
        with self._cond:
            self._closed = True
            for items in self._items:
                items.clear()
            self._buffered = 0
            self._cond.notify_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._rows_pool.shutdown(wait=True, cancel_futures=True)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def chunks(self, window: int) -> Iterator[Chunk]:
        """The chunks of window number `window`, in order: about `chunk_pages` pages each (evened out with
        Gong's count, so 11 pages are one chunk, not 10 and 1), the last marked `last` once iterated. A read
        that failed raises its error where its page would have come."""
        start, end = self.windows[window]
        number = 0
        while True:
            chunk = Chunk(self, window, self._chunk_size(window, number), start, end, self._reads[window])
            yield chunk
            chunk.drain()
            if chunk.last:
                return
            number += 1

    def _chunk_size(self, window: int, number: int) -> int:
        """How many pages chunk `number` of a window takes (0: all of them)."""
        if self.chunk_pages <= 0:
            return 0  # the whole window
        with self._cond:
            while self._totals[window] is None and not self._items[window] and not self._closed:
                self._cond.wait()
            total = self._totals[window]
        if not total:
            return self.chunk_pages
        pages = math.ceil(total / self._page_sizes[window])
        count = max(1, (pages + self.chunk_pages // 2) // self.chunk_pages)
        size = math.ceil(pages / count)
        return size if number < count else self.chunk_pages

    def _take(self, window: int) -> Any:
        with self._cond:
            while not self._items[window]:
                if self._closed:
                    return _End(False)
                self._cond.wait()
            item = self._items[window].popleft()
            if isinstance(item, Page):
                self._taken[window] += 1
                self._buffered -= 1
                self._cond.notify_all()
            return item

    def _window_may_end(self, window: int) -> bool:
        """After a full chunk: whether the window's next item closes it. Gong's count tells, without waiting,
        that more pages follow; else (the count reached, or none) the next item is waited for."""
        with self._cond:
            expected = math.ceil((self._totals[window] or 0) / self._page_sizes[window])
            if self._taken[window] < expected:
                return False
            while not self._items[window] and not self._closed:
                self._cond.wait()
            return self._closed or isinstance(self._items[window][0], _End)

    # -------------------------------------------------------------------------------------- the reading side

    def _put(self, window: int, item: Any) -> None:
        with self._cond:
            if isinstance(item, Page):
                while self._buffered >= self.ahead and not self._closed:
                    self._cond.wait()
                self._buffered += 1
            if self._closed:
                raise _Closed()
            self._items[window].append(item)
            self._cond.notify_all()

    def _run(self) -> None:
        for index, (start, end) in enumerate(self.windows):
            try:
                try:
                    complete = self._read_window(index, start, end)
                finally:
                    self._reads[index].close()
                self._put(index, _End(complete))
                if not complete:
                    for later in range(index + 1, len(self.windows)):
                        self._put(later, _End(False))
                    return
            except _Closed:
                return
            except Exception as exc:  # the pipeline meets it when it takes the window
                try:
                    self._put(index, _End(False, exc))
                    for later in range(index + 1, len(self.windows)):
                        self._put(later, _End(False))
                except _Closed:
                    pass
                return

    def _read_window(self, index: int, start: DateTime, end: DateTime) -> bool:
        """Reads one window's pages; False when the run must stop (quota, a long Retry-After)."""
        if start >= end:
            logger.info("calls: nothing to sync, the window %s .. %s is empty", start, end)
            with self._cond:
                self._totals[index] = 0
                self._cond.notify_all()
            return True
        body = self.client.calls_body(start, end, self.include_media)
        first = self.first_page if index == 0 else None
        sent: set[str] = set()
        try:
            calls = BY_NAME["calls"]
            with self.client.first_at_the_limiter(lambda: self._following() < LEAD):
                for records, paging in self.client.pages(calls.method, calls.path, calls.data_key, body=body,
                                                         first=first):
                    self._take_page(index, records, paging, sent)
        except GongStopRun as exc:
            self.client.stop(str(exc))
            return False
        with self._cond:
            if self._totals[index] is None:
                self._totals[index] = 0
                self._cond.notify_all()
        return self.client.stop_reason is None

    def _take_page(self, index: int, records: list[dict[str, Any]], paging: dict[str, Any], sent: set[str]) -> None:
        """Hands one page of calls to the pipeline and sends the reads that follow it; its rows are made on a
        thread of their own, so that the next page is asked for at once."""
        with self._cond:
            if self._totals[index] is None:
                self._totals[index] = int(paging.get("totalRecords") or len(records))
                self._page_sizes[index] = max(1, int(paging.get("currentPageSize") or len(records)))
                self._cond.notify_all()
        kept = [c for c in records if not self.client.is_private(c)]
        page_ids = [i for i in map(call_id, kept) if i is not None]
        if self.seen_call_ids is not None:
            self.seen_call_ids.update(page_ids)
        rows = self._rows_pool.submit(records_to_rows, BY_NAME["calls"].row, kept, {"includeMedia": self.include_media})
        page = Page(page_ids, rows, len(records) - len(kept))
        # A call listed on two pages is followed once.
        ids = [i for i in dict.fromkeys(page_ids) if i not in sent]
        sent.update(ids)
        for follower in self.followers:
            page.follower_reads[follower.name] = [
                self._submit(index, follower, ids[i:i + TRANSCRIPT_BATCH_SIZE])
                for i in range(0, len(ids), TRANSCRIPT_BATCH_SIZE)]
        self._put(index, page)

    def _following(self) -> int:
        """Reads that follow pages and have not ended yet."""
        return sum(reads.sent - reads.ended for reads in self._reads)

    def _submit(self, window: int, follower: Endpoint, ids: list[str]) -> Future[list[Any]]:
        assert self._pool is not None

        def read() -> list[Any]:
            return [records for records, _ in self.client.pages(follower.method, follower.path, follower.data_key,
                                                                body=self.client.call_ids_body(ids),
                                                                decode=follower.decode)]

        future = self._pool.submit(read)
        self._reads[window].add(future)
        return future


class _Closed(Exception):
    """The feed was closed while its reader waited: it ends quietly."""
