"""Reading the next window from Gong while the pipeline normalizes and loads the current one.

A sync of many windows waits on Gong's rate limit while it extracts, and leaves the connection idle
while dlt normalizes and loads. A `Prefetcher` sends, from a background thread and through the same
client (limiter, budget, retries, counts), the requests that the next window's resources will send,
and keeps the raw answers until the resources ask for them. The resources do not know:
`GongClient.request` answers from the prefetcher when it holds, or is about to hold, the very same
request, and sends the request itself otherwise. A wrong guess costs requests, never data.

Only answers a resource takes as data are kept (a 200, or Gong's "No ... found" 404); an error ends
the background reading and the resource meets the same error when it sends that request itself.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

logger = logging.getLogger("gong_sync.prefetch")

# Answers held at once, in bytes of JSON: a few seconds of requests at Gong's rate, and a bound on
# the memory the background reading can take when the rate limit is off.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# Threads reading transcripts beside the one reading pages of calls: with Gong's latency (often a
# second), one request at a time cannot reach 3 per second. 0 reads everything in one thread, in a
# fixed order (the recorded-HTTP tests use that: replaying a recording is not thread-safe).
def default_workers() -> int:
    return int(os.environ.get("GONG_SYNC_READ_AHEAD_THREADS", "2"))


class _Cancelled(Exception):
    """Unwinds the background reading when the prefetcher is closed."""


@dataclass(frozen=True)
class Answer:
    """One kept answer: the HTTP status (200, or 404 for "no records") and the body as received."""

    status: int
    content: bytes


MISS = None


def request_key(method: str, path: str, params: Optional[dict[str, Any]], body: Any) -> str:
    """The identity of a request: equal for two requests that would get the same answer."""
    return json.dumps([method.upper(), path, params or None, body], sort_keys=True, separators=(",", ":"),
                      default=str)


class Prefetcher:
    """Runs `plan(client, submit)` in a background thread and keeps the answers of the requests it sends.

    The plan reads its main sequence itself (pages that follow one another by cursor) and may hand
    independent reads to `submit(function)`, which runs them on `workers` other threads (all under the
    client's shared rate limiter), so that Gong's latency does not cap the rate. `seed` holds answers
    already received (e.g. the first page, asked for to count the calls): they are kept without being
    sent again. `paths` are the paths
    the plan reads; a request to another path is never waited for. `root` is the key of the plan's
    first request: a request to the same path without a cursor that is not the root means the plan
    guessed another window, and the background reading is stopped at once.
    """

    def __init__(self, client: Any, plan: Callable[[Any, Callable[[Callable[[], None]], None]], None],
                 paths: set[str], root: Optional[str] = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 workers: Optional[int] = None, name: str = "gong-prefetch",
                 seed: Optional[dict[str, Answer]] = None) -> None:
        self._client = client
        self._plan = plan
        self._paths = set(paths)
        self._root = root
        self._root_path = json.loads(root)[1] if root else None
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        self._answers: dict[str, Answer] = {}
        self._seed = dict(seed or {})  # answers got before the reading began: kept without sending
        self._bytes = 0
        self._waiting: Optional[str] = None
        self._done = False
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._local = threading.local()
        self._workers = default_workers() if workers is None else workers
        self._name = name
        self._pages_blocked_on: Optional[str] = None  # the answer the reader of pages waits to keep
        self._tasks = 0  # transcript reads submitted and not finished
        self.fetched = 0
        self.hits = 0
        self.peak_bytes = 0
        self.largest = 0

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> Prefetcher:
        self._client.attach_prefetcher(self)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stops the background reading, waits for it, forgets what was not taken and detaches."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        self._client.detach_prefetcher(self)
        with self._cond:
            unused = len(self._answers)
            self._answers.clear()
            self._bytes = 0
        logger.debug("prefetch: %d answers fetched ahead, %d used, %d unused", self.fetched, self.hits, unused)

    def in_background(self) -> bool:
        """True in the threads that read ahead (their requests are kept, not answered from the store)."""
        return getattr(self._local, "background", False)

    def seeded(self, key: str) -> Optional[Answer]:
        """The answer to `key` this prefetcher was given when it was made (once), or None."""
        with self._cond:
            return self._seed.pop(key, None)

    # ------------------------------------------------------------------------------- both sides

    def put(self, key: str, status: int, content: bytes) -> None:
        """Keeps one answer; waits while the store is full, unless the resources wait for this one.

        Transcript readers (the workers) also go on while the resources wait for any answer: the one
        waited for may be queued behind theirs. The reader of pages waits, so it never runs far ahead.
        """
        worker = getattr(self._local, "worker", False)
        with self._cond:
            while (self._bytes >= self.max_bytes and key != self._waiting
                   and not (worker and self._waiting is not None)) and not self._cancelled:
                if not worker:
                    self._pages_blocked_on = key
                    self._cond.notify_all()
                self._cond.wait()
            if not worker:
                self._pages_blocked_on = None
            if self._cancelled:
                raise _Cancelled()
            previous = self._answers.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.content)
            self._answers[key] = Answer(status, content)
            self._bytes += len(content)
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self.largest = max(self.largest, len(content))
            self.fetched += 1
            self._cond.notify_all()

    def take(self, key: str, path: str, has_cursor: bool) -> Optional[Answer]:
        """Returns the kept answer to `key` (waiting for it while the background reading goes on), or None."""
        if path not in self._paths:
            return MISS
        with self._cond:
            if (path == self._root_path and not has_cursor and key != self._root
                    and key not in self._answers and not self._cancelled):
                # The resource reads another window than the one guessed: stop guessing.
                logger.debug("prefetch: the resources read another window than the one prefetched")
                self._cancelled = True
                self._cond.notify_all()
            while True:
                answer = self._answers.pop(key, None)
                if answer is not None:
                    self._bytes -= len(answer.content)
                    self.hits += 1
                    self._waiting = None
                    self._cond.notify_all()
                    return answer
                blocked = self._pages_blocked_on
                if self._done or self._cancelled or (blocked is not None and blocked != key and not self._tasks):
                    # Nothing under way can bring this answer (the guess went another way): ask Gong.
                    self._waiting = None
                    return MISS
                self._waiting = key
                self._cond.notify_all()
                self._cond.wait()

    # ------------------------------------------------------------------------------- background

    def _run(self) -> None:
        self._local.background = True
        pool = (ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._name)
                if self._workers > 0 else None)
        failures: list[BaseException] = []

        def task(function: Callable[[], None]) -> None:
            self._local.background = True
            self._local.worker = True
            try:
                if not self._cancelled:
                    function()
            except _Cancelled:
                pass
            except Exception as exc:
                failures.append(exc)
                with self._cond:  # one failed read ends the reading ahead; the resources go on live
                    self._cancelled = True
            finally:
                with self._cond:
                    self._tasks -= 1
                    self._cond.notify_all()

        def submit(function: Callable[[], None]) -> None:
            if pool is None:  # one thread: read it now, in order
                if self._cancelled:
                    raise _Cancelled()
                function()
                return
            with self._cond:
                if self._cancelled:
                    raise _Cancelled()
                self._tasks += 1
            pool.submit(task, function)

        try:
            # Until the client's first answer nobody knows whether the credentials work: the resources
            # send the first request, unless they already wait for one of ours.
            with self._cond:
                while not (self._client.answered_once() or self._waiting is not None or self._cancelled):
                    self._cond.wait(timeout=0.02)
                if self._cancelled:
                    raise _Cancelled()
            self._plan(self._client, submit)
        except _Cancelled:
            pass
        except Exception as exc:  # the resources meet the same error when they send the request
            failures.append(exc)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            if failures:
                logger.debug("prefetch stopped: %s", type(failures[0]).__name__)
            with self._cond:
                self._done = True
                self._cond.notify_all()


class ChunkedPages:
    """One paginated read handed out over several pipeline runs: a chunk of about `max_pages` pages per run.

    What one run extracted is normalized and loaded while the rest is read ahead, and what a run holds
    in memory no longer grows with the window. The pages come as `(records, is_last, total)`
    (`GongClient.paginate(..., report_last=True)`): the chunk that takes the last page knows it, and
    the total Gong announces on the first page evens the chunks out (a window of 11 pages is one chunk
    of 11, not 10 and 1: every load costs the same fixed work), so a chunk holds at most 1.5 x `max_pages`.
    """

    def __init__(self, max_pages: int) -> None:
        self.max_pages = max(1, max_pages)
        self._pages: Optional[Iterator[tuple[Any, bool, Optional[int]]]] = None
        self._size = self.max_pages
        self.exhausted = False
        self.chunks = 0
        self.taken = 0  # pages the last chunk took
        self.context: dict[str, Any] = {}

    @property
    def started(self) -> bool:
        return self._pages is not None

    def begin(self, pages: Iterator[tuple[Any, bool, Optional[int]]], **context: Any) -> None:
        self._pages = pages
        self.context = dict(context)

    def finish(self) -> None:
        """Marks the read as complete (e.g. nothing to read)."""
        self.exhausted = True

    def _even_out(self, page_size: int, total: Optional[int]) -> None:
        if not total or page_size <= 0:
            return
        pages = -(-int(total) // page_size)
        chunks = max(1, (pages + self.max_pages // 2) // self.max_pages)
        self._size = -(-pages // chunks)

    def chunk(self) -> Iterator[Any]:
        if self._pages is None or self.exhausted:
            return
        first = self.chunks == 0
        self.chunks += 1
        self.taken = 0
        while self.taken < self._size:
            try:
                records, last, total = next(self._pages)
            except StopIteration:
                self.exhausted = True
                return
            if first and self.taken == 0:
                self._even_out(len(records), total)
            self.taken += 1
            yield records
            if last:
                self.exhausted = True
                return
