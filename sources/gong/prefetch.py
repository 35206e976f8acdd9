"""Reading the next window from Gong while the pipeline normalizes and loads the current one.

A sync of many windows waits on Gong's rate limit while it extracts, and leaves the connection idle
while dlt normalizes and loads. A `Prefetcher` sends, from a background thread and through the same
client (limiter, budget, retries, counts), the requests that the next window's resources will send,
and keeps the raw answers until the resources ask for them. The resources do not know:
`GongClient.request` answers from the prefetcher when it holds, or is about to hold, the very same
request, and sends the request itself otherwise. A wrong guess costs requests, never data.

Only answers a resource takes as data are kept (a 200, or Gong's "No ... found" 404); an error ends
the background reading and the resource meets the same error when it sends that request itself.

A `prepare` function turns each page the reader of pages kept into what the resource takes (a page of
calls: its rows, split into root rows and nested Arrow tables), on a thread of its own: that CPU time then
falls while the pipeline waits for answers, not after the last one, and the reader sends the next page
meanwhile.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

logger = logging.getLogger("gong_sync.prefetch")

# Answers held at once, in bytes (of JSON and of what it was read into, see `Answer.size`). Under a rate
# limit: what arrives while a chunk loads (a page of 100 calls split into its rows takes ~2.8 MB, a
# transcript batch ~4.4 MB; at 32 MB the readers stalled while chunks loaded: rate3_10x 1.11-1.14 against
# 1.07-1.08, bench/RESULTS.md). Without one the readers outrun the pipeline and fill any store: a smaller one
# bounds the memory the background reading takes.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
UNLIMITED_MAX_BYTES = 32 * 1024 * 1024
# Threads reading transcripts beside the one reading pages of calls: with Gong's latency (often a
# second), one request at a time cannot reach 3 per second. 0 reads everything in one thread, in a
# fixed order (the recorded-HTTP tests use that: replaying a recording is not thread-safe).
def default_workers() -> int:
    return int(os.environ.get("GONG_SYNC_READ_AHEAD_THREADS", "2"))


# How far, in seconds of requests at the rate limit, the reader of pages of calls runs ahead of the reads
# that follow each page (transcripts): its requests take the limiter's next turn while fewer reads than
# that wait. When the last page is in, that many seconds of reads are still to come, and the runner loads
# the calls meanwhile (see `worth_deferring`): about what loading a chunk of calls takes (bench/RESULTS.md).
LEAD_S = 2.0
# The reads of a last chunk's remaining pages are left to a load of their own only when they take at least
# this long to arrive: that load (extract, normalize, load of one table) costs about this much.
DEFER_MIN_S = 0.6


class _Cancelled(Exception):
    """Unwinds the background reading when the prefetcher is closed."""


@dataclass(frozen=True)
class Answer:
    """One kept answer: the HTTP status (200, or 404 for "no records"), the body as received, and the page
    as the reader ahead already decoded it (`GongClient.paginate(decode=...)`: records and paging), if so."""

    status: int
    content: bytes
    decoded: Any = None

    @property
    def size(self) -> int:
        """Bytes the answer holds: the body and the decoded records (Arrow tables and prepared pages say how
        many bytes; a list of Python objects takes about 5x its JSON)."""
        records = self.decoded[0] if self.decoded is not None else None
        if isinstance(records, list):
            return 6 * len(self.content)
        return len(self.content) + int(getattr(records, "nbytes", 0) or 0)


MISS = None


def request_key(method: str, path: str, params: Optional[dict[str, Any]], body: Any) -> str:
    """The identity of a request: equal for two requests that would get the same answer."""
    return json.dumps([method.upper(), path, params or None, body], sort_keys=True, separators=(",", ":"),
                      default=str)


class Prefetcher:
    """Runs `plan(client, submit)` in a background thread and keeps the answers of the requests it sends.

    The plan reads its main sequence itself (pages that follow one another by cursor) and may hand
    independent reads to `submit(function, group)`, which runs them on `workers` other threads (all under
    the client's shared rate limiter), so that Gong's latency does not cap the rate; `group` names what a
    read follows (a page of calls), for `worth_deferring`. The main sequence's requests go first at the
    limiter while fewer than `lead` reads wait (`urgent`). `seed` holds answers
    already received (e.g. the first page, asked for to count the calls): they are kept without being
    sent again. `paths` are the paths
    the plan reads; a request to another path is never waited for. `root` is the key of the plan's
    first request: a request to the same path without a cursor that is not the root means the plan
    guessed another window, and the background reading is stopped at once.
    """

    def __init__(self, client: Any, plan: Callable[[Any, Callable[..., None]], None],
                 paths: set[str], root: Optional[str] = None, max_bytes: Optional[int] = None,
                 workers: Optional[int] = None, name: str = "gong-prefetch",
                 seed: Optional[dict[str, Answer]] = None,
                 prepare: Optional[Callable[[Any, bytes], Any]] = None) -> None:
        self._client = client
        self._plan = plan
        self._paths = set(paths)
        self._root = root
        self._root_path = json.loads(root)[1] if root else None
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
        self._pending: Counter[Any] = Counter()  # of those, per group (the page of calls they follow)
        self._planned = False  # the plan returned: every page was read and every read submitted
        rate = getattr(client, "rate_limit", None)
        self._rate: Optional[float] = rate if rate else None
        self.max_bytes = max_bytes if max_bytes is not None else DEFAULT_MAX_BYTES if rate else UNLIMITED_MAX_BYTES
        self.lead = math.ceil(LEAD_S * self._rate) if self._rate else 0
        # `prepare(decoded, content)` turns a decoded answer of the reader of pages into what the resource takes
        # (None: the answer as received), on a thread of its own: the reader sends the next page meanwhile.
        self._prepare = prepare
        self._to_prepare: dict[str, None] = {}  # keys in the order they arrived
        self._preparing: Optional[str] = None
        self._preparer_gone = prepare is None
        self._preparer: Optional[threading.Thread] = None
        if prepare is not None:
            self._preparer = threading.Thread(target=self._run_preparer, name=f"{name}-prepare", daemon=True)
        self.prepared = 0
        self.fetched = 0
        self.hits = 0
        self.peak_bytes = 0
        self.largest = 0

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> Prefetcher:
        try:
            if self._preparer is not None:
                self._preparer.start()
            self._client.attach_prefetcher(self)
            self._thread.start()
        except BaseException:
            with self._cond:
                self._cancelled = True
                self._cond.notify_all()
            self._client.detach_prefetcher(self)
            raise
        return self

    def close(self) -> None:
        """Stops the background reading, waits for it, forgets what was not taken and detaches."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        for thread in (self._thread, self._preparer):
            if thread is not None and thread.is_alive() and threading.current_thread() is not thread:
                thread.join()
        self._client.detach_prefetcher(self)
        with self._cond:
            unused = len(self._answers)
            self._answers.clear()
            self._bytes = 0
        logger.debug("prefetch: %d answers fetched ahead, %d used, %d unused, %d pages prepared", self.fetched,
                     self.hits, unused, self.prepared)

    def in_background(self) -> bool:
        """True in the threads that read ahead (their requests are kept, not answered from the store)."""
        return getattr(self._local, "background", False)

    def urgent(self) -> bool:
        """True in the thread reading the pages while it is less than `lead` reads ahead of them."""
        return (getattr(self._local, "background", False) and not getattr(self._local, "worker", False)
                and self._tasks < self.lead)

    def worth_deferring(self, group: Any) -> bool:
        """Waits until the reads of `group` (the page of calls a resource is about to read for) are all
        answered (False), or until they are better left to a load of their own (True): every page was
        read and the reads still to come take at least `DEFER_MIN_S` at the rate limit (never without
        one). The pages extracted so far are then loaded while those answers arrive."""
        if self._rate is None:
            return False
        with self._cond:
            while True:
                # A full store lets in only the answer a resource waits for (`take`): waiting here would
                # hold up the very reads waited for.
                full = self._bytes >= self.max_bytes or self._pages_blocked_on is not None
                if self._cancelled or self._done or full or not self._pending.get(group):
                    return False
                if self._planned and self._tasks / self._rate >= DEFER_MIN_S:
                    return True
                self._cond.wait()

    def seeded(self, key: str) -> Optional[Answer]:
        """The answer to `key` this prefetcher was given when it was made (once), or None."""
        with self._cond:
            return self._seed.pop(key, None)

    # ------------------------------------------------------------------------------- both sides

    def put(self, key: str, status: int, content: bytes, decoded: Any = None) -> None:
        """Keeps one answer (and what it decoded into); waits while the store is full, unless the resources
        wait for this one.

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
                self._bytes -= previous.size
            answer = Answer(status, content, decoded)
            self._answers[key] = answer
            self._bytes += answer.size
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self.largest = max(self.largest, answer.size)
            self.fetched += 1
            # Pages the reader of pages decoded into records (a transcript it read itself is an Arrow table).
            if (self._prepare is not None and not worker and decoded is not None and isinstance(decoded[0], list)
                    and not self._preparer_gone):
                self._to_prepare[key] = None
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
                if (key == self._preparing or key in self._to_prepare) and not (self._cancelled or
                                                                                 self._preparer_gone):
                    self._cond.wait()  # it is about to be prepared: the same work, done once
                    continue
                answer = self._answers.pop(key, None)
                if answer is not None:
                    self._bytes -= answer.size
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

    def _run_preparer(self) -> None:
        """Prepares the kept pages in the order they arrived (a resource asking for one waits until it is), until
        the reading ahead ends and nothing is left to prepare, or it is stopped."""
        try:
            self._prepare_pages()
        finally:  # whatever ended it, nobody waits for a preparation any more: the pages are taken as kept
            with self._cond:
                self._preparer_gone = True
                self._to_prepare.clear()
                self._preparing = None
                self._cond.notify_all()

    def _prepare_pages(self) -> None:
        while True:
            with self._cond:
                while not self._to_prepare and not (self._done or self._cancelled):
                    self._cond.wait()
                if self._cancelled or not self._to_prepare:
                    return
                key = next(iter(self._to_prepare))
                del self._to_prepare[key]
                answer = self._answers.get(key)
                if answer is None or answer.decoded is None:
                    self._cond.notify_all()
                    continue
                self._preparing = key
            try:
                prepared = self._prepare(answer.decoded, answer.content)  # type: ignore[misc]
            except Exception as exc:  # only a saving: the resource reads the answer itself
                logger.debug("prefetch: a page was not prepared: %s", type(exc).__name__)
                prepared = None
            with self._cond:
                self._preparing = None
                self._cond.notify_all()
                if self._answers.get(key) is not answer:
                    continue  # forgotten meanwhile (the reading was stopped)
                if not (isinstance(prepared, tuple) and len(prepared) == 2):
                    prepared = None
                # Declined: the decoded records go (they take ~5x the answer's memory); the resource reads it.
                replacement = Answer(answer.status, answer.content, prepared)
                size = replacement.size
                self._answers[key] = replacement
                self._bytes += size - answer.size
                self.peak_bytes = max(self.peak_bytes, self._bytes)
                self.prepared += prepared is not None
                self._cond.notify_all()

    def _run(self) -> None:
        self._local.background = True
        pool = (ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._name)
                if self._workers > 0 else None)
        failures: list[BaseException] = []

        def task(function: Callable[[], None], group: Any) -> None:
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
                    self._pending[group] -= 1
                    if self._pending[group] <= 0:
                        del self._pending[group]
                    self._cond.notify_all()

        def submit(function: Callable[[], None], group: Any = None) -> None:
            if pool is None:  # one thread: read it now, in order
                if self._cancelled:
                    raise _Cancelled()
                function()
                return
            with self._cond:
                if self._cancelled:
                    raise _Cancelled()
                self._tasks += 1
                self._pending[group] += 1
            pool.submit(task, function, group)

        try:
            # Until the client's first answer nobody knows whether the credentials work: the resources
            # send the first request, unless they already wait for one of ours.
            with self._cond:
                while not (self._client.answered_once() or self._waiting is not None or self._cancelled):
                    self._cond.wait(timeout=0.02)
                if self._cancelled:
                    raise _Cancelled()
            self._plan(self._client, submit)
            with self._cond:
                self._planned = True
                self._cond.notify_all()
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

    With a `defer` policy (e.g. `Prefetcher.worth_deferring`), the last chunk may hold back the reads that
    follow its last pages (`hold_back`): its calls are loaded while those answers still arrive, and a
    last, small load (`tail_pending`, `take_tail`) reads them; the window counts as synced only then.
    """

    def __init__(self, max_pages: int, defer: Optional[Callable[[str], bool]] = None) -> None:
        self.max_pages = max(1, max_pages)
        self._pages: Optional[Iterator[tuple[Any, bool, Optional[int]]]] = None
        self._size = self.max_pages
        self._total_pages: Optional[int] = None
        self._final = False  # the chunk being read takes the window's last page
        self.defer = defer
        self.deferred: list[tuple[str, list[dict[str, Any]]]] = []  # (page key, its calls' id and privacy)
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
        self._total_pages = pages

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
            self._final = last or (self._total_pages is not None and self.chunks * self._size >= self._total_pages)
            yield records
            if last:
                self.exhausted = True
                return

    def hold_back(self, key: str, calls: list[dict[str, Any]]) -> bool:
        """Whether the reads that follow the page of `calls` (named `key`) wait for the tail load: once the
        policy says so for a page of the last chunk (it may wait for those reads' answers to decide), for
        that page and every later one. Asked by the one resource that reads each page of calls, in order."""
        if not self.deferred and not (self.defer is not None and self._final and self.defer(key)):
            return False
        self.deferred.append((key, [{"id": c.get("id"), "isPrivate": c.get("isPrivate")} for c in calls]))
        return True

    @property
    def tail_pending(self) -> bool:
        """True when the window's pages are all read and some pages' following reads were held back."""
        return self.exhausted and bool(self.deferred)

    def take_tail(self) -> list[list[dict[str, Any]]]:
        """The held-back pages (each call's id and privacy), for the tail load; none are held back after."""
        pages = [calls for _, calls in self.deferred]
        self.deferred = []
        self.defer = None
        return pages
