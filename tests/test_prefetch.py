"""Reading ahead: a window's calls and transcripts are fetched in the background (under the shared
limiter) while the pipeline normalizes and loads, and a window's calls can be loaded in chunks of
pages. The same requests go out and the same rows arrive; a wrong guess costs requests, never data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from simulator import GongSimulator
from sources.gong import first_calls_request, prefetch_calls
from sources.gong.client import ClientSettings, GongClient
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, GongFixture, RecordingSession, Warehouse, sim_config
from tests.test_incremental import END, EXTENSIVE, TRANSCRIPT, calls_state, snapshot, sync


def sent(session: RecordingSession) -> Counter:
    return Counter(json.dumps([r["method"], r["path"], r["params"], r["body"]], sort_keys=True)
                   for r in session.answered)




def loads(wh: Warehouse) -> int:
    return wh.query("SELECT count(*) FROM {ds}._dlt_loads WHERE status = 0")[0][0]


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_chunks_read_ahead_load_the_same_rows_with_the_same_requests(gong: GongFixture, tmp_path: Path) -> None:
    plain = Warehouse.duckdb_in(tmp_path, "plain")
    first = sync(gong, plain, options={"prefetch": False}, chunk_pages=0)
    plain_requests = sent(gong.session)
    gong.session.answered.clear()

    ahead = Warehouse.duckdb_in(tmp_path, "ahead")
    sync(gong, ahead, chunk_pages=2)

    assert sent(gong.session) == plain_requests, "reading ahead sends exactly the requests a plain run sends"
    answered = Counter(r["path"] for r in gong.session.answered)
    assert first.request_counts[EXTENSIVE] == answered[EXTENSIVE] > 4
    assert first.request_counts[TRANSCRIPT] == answered[TRANSCRIPT] > 4
    assert snapshot(ahead) == snapshot(plain)
    assert ahead.count("calls") == plain.count("calls") > 80
    assert loads(plain) == 4, "one load per window without chunks"
    # A window of p pages of calls is loaded in about p / 2 even chunks (a last chunk of 1 page is not
    # left alone when that makes a chunk of 3 or less): 3 pages -> 1 chunk of 3... 5 -> 2 + 2 + 1.
    pages = Counter(json.dumps(r["body"]["filter"]) for r in gong.session.answered if r["path"] == EXTENSIVE)
    assert len(pages) == 4 and max(pages.values()) >= 3

    def chunks(p: int) -> int:
        size = -(-p // max(1, (p + 1) // 2))
        return -(-p // size)

    assert loads(ahead) == sum(chunks(p) for p in pages.values()) > 4
    assert calls_state(ahead)["synced_until"] == END


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_a_stop_inside_a_chunked_window_keeps_its_chunks_and_reads_the_window_again(gong: GongFixture,
                                                                                    tmp_path: Path) -> None:
    plain = Warehouse.duckdb_in(tmp_path, "plain")
    sync(gong, plain, options={"prefetch": False}, chunk_pages=0)
    gong.session.sent.clear()

    ahead = Warehouse.duckdb_in(tmp_path, "ahead")
    # 5 calls pages and 5 transcript batches a window: the budget runs out inside the second window.
    stopped = sync(gong, ahead, client=gong.client(daily_budget=14), chunk_pages=2)
    assert stopped.stop_reason and "budget" in stopped.stop_reason
    state = calls_state(ahead)
    assert state["synced_until"] == "2026-10-26T00:00:00+00:00", "the unfinished window did not commit"
    kept = ahead.count("calls")
    assert 24 < kept < plain.count("calls"), "the chunks loaded before the stop were kept"

    resumed = sync(gong, ahead, chunk_pages=2)
    assert resumed.stop_reason is None
    assert snapshot(ahead) == snapshot(plain), "no gap and no duplicate after the stop"


@pytest.fixture
def live() -> Any:
    sim = GongSimulator(sim_config(days=6, calls_per_day=30, page_size=10, sentences_per_call=4))
    url = sim.start()
    session = RecordingSession()
    client = GongClient(url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=None),
                        session=session)
    try:
        yield client, session
    finally:
        client.close()
        sim.stop()


def read_calls(client: GongClient, start: str, end: str) -> list[str]:
    """Reads a window's calls and their transcripts the way the source does (same bodies), in this thread."""
    from sources.gong import _batch_body, _call_id_batches

    body = first_calls_request(start_date=start, end_date=end)
    ids: list[str] = []
    for page in client.paginate("POST", EXTENSIVE, "calls", body=body):
        kept = [str(c["metaData"]["id"]) for c in page if not c["metaData"].get("isPrivate")]
        ids.extend(kept)
        for batch in _call_id_batches(kept):
            for _ in client.paginate("POST", TRANSCRIPT, "callTranscripts", body=_batch_body(batch)):
                pass
    return ids


def test_the_answers_read_ahead_are_the_ones_asked_for_and_bounded_in_memory(live: Any) -> None:
    client, session = live
    start, end = "2026-10-27T00:00:00+00:00", "2026-11-01T00:00:00+00:00"
    expected = read_calls(client, start, end)
    direct = len(session.sent)
    session.sent.clear()

    ahead = prefetch_calls(client, ["calls", "transcripts"], first_calls_request(start_date=start, end_date=end),
                           max_bytes=1, workers=2)
    assert ahead is not None
    got = read_calls(client, start, end)
    ahead.close()
    assert got == expected
    assert len(session.sent) == direct, "every request was sent once, by the background reader"
    assert ahead.hits == ahead.fetched == direct
    # With a store of 1 byte each reading thread (the pages' and two for transcripts) holds at most one
    # answer, and only while the resources wait for one.
    assert 0 < ahead.peak_bytes <= 3 * ahead.largest


def test_a_wrong_guess_costs_requests_never_data(live: Any) -> None:
    client, session = live
    expected = read_calls(client, "2026-10-30T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    direct = len(session.sent)
    session.sent.clear()

    guess = first_calls_request(start_date="2026-10-27T00:00:00+00:00", end_date="2026-10-29T00:00:00+00:00")
    ahead = prefetch_calls(client, ["calls", "transcripts"], guess, max_bytes=1, workers=2)
    assert ahead is not None
    got = read_calls(client, "2026-10-30T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    ahead.close()
    assert got == expected, "the resources read their own window, not the guessed one"
    assert ahead.hits == 0
    # The first page, and at most one more request per reading thread already under way, were wasted.
    assert 1 <= len(session.sent) - direct <= 4, "the guess was dropped when the resources asked for another window"


def load_ids(wh: Warehouse) -> list[str]:
    return [r[0] for r in wh.query("SELECT load_id FROM {ds}._dlt_loads WHERE status = 0 ORDER BY load_id")]


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_the_last_chunk_can_leave_its_pages_transcripts_to_a_tail_load(gong: GongFixture, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """At the rate limit, the last chunk's calls are loaded while its last transcripts still arrive; a small
    load of transcripts alone follows. Forced here for every page of the run's last chunk."""
    from sources.gong.prefetch import Prefetcher

    plain = Warehouse.duckdb_in(tmp_path, "plain")
    sync(gong, plain, options={"prefetch": False}, chunk_pages=0)
    plain_requests = sent(gong.session)
    gong.session.answered.clear()

    asked: list[str] = []
    monkeypatch.setattr(Prefetcher, "worth_deferring", lambda self, group: asked.append(group) or True)
    ahead = Warehouse.duckdb_in(tmp_path, "ahead")
    result = sync(gong, ahead, chunk_pages=2)
    assert result.stop_reason is None
    assert sent(gong.session) == plain_requests, "the same requests, each sent once"
    assert snapshot(ahead) == snapshot(plain)
    assert len(asked) == 1, "asked once, for the first page of the run's last chunk: the later pages follow it"
    ids = load_ids(ahead)
    tail, last_chunk = ids[-1], ids[-2]
    assert ahead.count("calls", f"WHERE _dlt_load_id = '{tail}'") == 0, "the tail loads no calls"
    assert ahead.count("transcripts", f"WHERE _dlt_load_id = '{tail}'") > 0
    held = ahead.count("calls", f"WHERE _dlt_load_id = '{last_chunk}'")
    assert held > 0 and ahead.count("transcripts", f"WHERE _dlt_load_id = '{last_chunk}'") == 0
    tail_calls = ahead.query(f"SELECT count(DISTINCT call_id) FROM {{ds}}.transcripts WHERE _dlt_load_id = '{tail}'")
    assert tail_calls[0][0] == held, "the tail holds the transcripts of exactly the calls held back"
    assert str(asked[0]) in {str(r[0]) for r in ahead.query(
        f"SELECT id FROM {{ds}}.calls WHERE _dlt_load_id = '{last_chunk}'")}, "pages are named by their first call"
    assert calls_state(ahead)["synced_until"] == END


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_a_stop_in_the_tail_load_leaves_the_window_to_be_read_again(gong: GongFixture, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from sources.gong.prefetch import Prefetcher

    plain = Warehouse.duckdb_in(tmp_path, "plain")
    full = sync(gong, plain, options={"prefetch": False}, chunk_pages=0)
    gong.session.answered.clear()

    monkeypatch.setattr(Prefetcher, "worth_deferring", lambda self, group: True)
    ahead = Warehouse.duckdb_in(tmp_path, "ahead")
    # The budget runs out at the run's very last request: a transcript batch the last chunk held back. The
    # reader ahead may meet the stop first (then the last chunk is not extracted at all) or the tail may.
    stopped = sync(gong, ahead, client=gong.client(daily_budget=full.requests_used - 1), chunk_pages=2)
    assert stopped.stop_reason and "budget" in stopped.stop_reason
    assert 0 < ahead.count("calls") <= plain.count("calls")
    assert ahead.count("transcripts") < plain.count("transcripts")
    assert calls_state(ahead)["synced_until"] == "2026-10-30T00:00:00+00:00", "the last window did not commit"

    resumed = sync(gong, ahead, chunk_pages=2)
    assert resumed.stop_reason is None
    assert snapshot(ahead) == snapshot(plain), "no gap and no duplicate after the stop"
    assert calls_state(ahead)["synced_until"] == END


def test_the_reader_of_pages_goes_first_at_the_limiter_while_its_lead_is_short() -> None:
    """Each page of calls holds up the transcript reads that follow it: its request takes the limiter's next
    turn while fewer transcript reads than the lead wait, so that the last page arrives seconds before the
    window's last answer (the last chunk's calls are loaded meanwhile)."""
    import threading

    from sources.gong.client import RateLimiter

    class Recording(RateLimiter):
        def __init__(self) -> None:
            super().__init__(3)
            self.asked: list[tuple[str, bool]] = []

        def acquire(self, urgent: bool = False) -> list[float]:
            self.asked.append((threading.current_thread().name, urgent))
            return [0.0]  # no waiting: only who asked for a turn, and how

    sim = GongSimulator(sim_config(days=6, calls_per_day=30, page_size=10, sentences_per_call=4))
    url = sim.start()
    try:
        for lead in (None, 0):
            limiter = Recording()
            client = GongClient(url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=3),
                                session=RecordingSession(), limiter=limiter)
            start, end = "2026-10-27T00:00:00+00:00", "2026-11-01T00:00:00+00:00"
            ahead = prefetch_calls(client, ["calls", "transcripts"],
                                   first_calls_request(start_date=start, end_date=end), workers=2)
            assert ahead is not None
            assert ahead.lead == 6, "two seconds of requests at 3 per second"
            if lead is not None:
                ahead.lead = lead
            read_calls(client, start, end)
            ahead.close()
            client.close()
            pages = [urgent for name, urgent in limiter.asked if name == "gong-prefetch"]
            workers = [urgent for name, urgent in limiter.asked if name.startswith("gong-prefetch_")]
            assert len(pages) >= 10 and len(workers) >= 10
            assert not any(workers), "transcript reads never jump the queue"
            if lead is None:
                # Before the n-th page at most n - 1 transcript reads can wait: the first six always go first.
                assert all(pages[:6]), "pages go first while the lead is short"
            else:
                assert not any(pages), "with no lead the pages wait their turn like the rest"
    finally:
        sim.stop()


class StubClient:
    """What a Prefetcher needs of a client when its plan puts answers itself (no HTTP)."""

    def __init__(self, rate_limit: float | None = None) -> None:
        self.rate_limit = rate_limit

    def attach_prefetcher(self, prefetcher: Any) -> None:
        pass

    def detach_prefetcher(self, prefetcher: Any) -> None:
        pass

    def answered_once(self) -> bool:
        return True


def test_waiting_to_decide_on_a_tail_never_holds_up_the_answers_waited_for() -> None:
    """With the store full, only the answer a resource asks for gets in: deciding whether to leave a page's
    reads to the tail must then give up (and let the resource ask), not wait for reads that cannot land."""
    import threading
    import time

    from sources.gong.prefetch import Prefetcher

    holder: list[Prefetcher] = []

    def plan(client: Any, submit: Any) -> None:
        submit(lambda: (time.sleep(0.2), holder[0].put("page-1-read", 200, b"x" * 10)), "page-1")
        submit(lambda: holder[0].put("page-2-read", 200, b"x" * 200), "page-2")  # fills the store

    ahead = Prefetcher(StubClient(3.0), plan, {"/x"}, max_bytes=100, workers=2)
    holder.append(ahead)
    ahead.start()
    time.sleep(0.05)
    decided: list[bool] = []
    waiter = threading.Thread(target=lambda: decided.append(ahead.worth_deferring("page-1")), daemon=True)
    waiter.start()
    waiter.join(2)
    alive = waiter.is_alive()
    answer = ahead.take("page-1-read", "/x", has_cursor=False) if not alive else None
    ahead.close()
    assert not alive and decided == [False], "gave up once the store was full"
    assert answer is not None and answer.content == b"x" * 10, "the resource then got the answer it asked for"


def test_pages_are_prepared_on_a_thread_of_their_own_and_taken_prepared() -> None:
    """The reader of pages keeps each page decoded and goes on; another thread prepares it (a page of calls:
    its rows split, `calls_page_preparer`). A resource asking for a page not yet prepared waits for it (the
    same work, done once); a page the preparation declines is kept as received, without its decoded form."""
    import threading
    import time

    from sources.gong.prefetch import Prefetcher

    holder: list[Prefetcher] = []
    threads: set[str] = set()

    def prepare(decoded: Any, content: bytes) -> Any:
        threads.add(threading.current_thread().name)
        time.sleep(0.2)  # slower than the reader: the resource meets pages still to prepare
        records, paging = decoded
        return None if records == ["declined"] else ([r.upper() for r in records], paging)

    def plan(client: Any, submit: Any) -> None:
        for n in range(3):
            holder[0].put(f"page-{n}", 200, b"{}", (["declined"] if n == 1 else [f"call-{n}"], {"cursor": n}))

    ahead = Prefetcher(StubClient(), plan, {"/x"}, workers=0, prepare=prepare)
    holder.append(ahead)
    started = time.monotonic()
    ahead.start()
    answers = [ahead.take(f"page-{n}", "/x", has_cursor=n > 0) for n in range(3)]
    waited = time.monotonic() - started
    ahead.close()
    assert [a.decoded if a else "missing" for a in answers] == [(["CALL-0"], {"cursor": 0}), None,
                                                               (["CALL-2"], {"cursor": 2})]
    assert [a.content for a in answers if a] == [b"{}"] * 3, "the answer as received stays beside what it became"
    assert waited >= 0.55, "each page was waited for until prepared, not taken as it was kept"
    assert ahead.prepared == 2 and threads == {"gong-prefetch-prepare"}


def every_row(wh: Warehouse) -> dict[str, Counter]:
    """Every row of every data table (without the load ids, which differ from run to run)."""
    tables = [t for (t,) in wh.query("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                     "'{ds}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'")]
    out = {}
    for table in tables:
        columns = [c for (c,) in wh.query("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                          f"'{{ds}}' AND table_name = '{table}' ORDER BY column_name")
                   if c != "_dlt_load_id"]
        out[table] = Counter(wh.query(f"SELECT {', '.join(columns)} FROM {{ds}}.{table}"))
    return out


@pytest.mark.sim(days=10, calls_per_day=12, page_size=5, sentences_per_call=6)
def test_pages_of_calls_split_by_the_reader_ahead_load_what_the_resource_would_make(
        gong: GongFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sources.gong as source

    checks: list[bool] = []
    real = source.schema_agrees

    def spy(schema: Any, facts: Any) -> bool:
        checks.append(real(schema, facts))
        return checks[-1]

    monkeypatch.setattr(source, "schema_agrees", spy)
    ahead = Warehouse.duckdb_in(tmp_path, "ahead")
    sync(gong, ahead, chunk_pages=2)
    pages = sum(1 for r in gong.session.answered if r["path"] == EXTENSIVE)
    assert checks == [True] * pages and pages > 10, "every page was split off the resource's thread, and taken"

    plain = Warehouse.duckdb_in(tmp_path, "plain")
    sync(gong, plain, options={"prefetch": False}, chunk_pages=0)
    # A split the resource cannot take (its schema changed since the copy) is made again from the answer.
    monkeypatch.setattr(source, "schema_agrees", lambda schema, facts: checks.append(False))
    checks.clear()
    again = Warehouse.duckdb_in(tmp_path, "again")
    sync(gong, again, chunk_pages=2)
    assert len(checks) == pages
    ours, theirs, redone = every_row(ahead), every_row(plain), every_row(again)
    assert len(ours) >= 20 and sum(map(len, ours.values())) > 1000
    assert ours == theirs == redone


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread's end is the test
def test_a_preparer_that_fails_leaves_the_pages_to_be_taken_as_kept() -> None:
    import threading

    from sources.gong.prefetch import Prefetcher

    holder: list[Prefetcher] = []

    def plan(client: Any, submit: Any) -> None:
        for n in range(2):
            holder[0].put(f"page-{n}", 200, b"{}", ([f"call-{n}"], {}))

    def prepare(decoded: Any, content: bytes) -> Any:
        raise SystemExit  # not an Exception: it ends the preparer's thread

    ahead = Prefetcher(StubClient(), plan, {"/x"}, workers=0, prepare=prepare)
    holder.append(ahead)
    ahead.start()
    answers: list[Any] = []
    taker = threading.Thread(target=lambda: answers.extend(
        ahead.take(f"page-{n}", "/x", has_cursor=n > 0) for n in range(2)), daemon=True)
    taker.start()
    taker.join(5)
    hung = taker.is_alive()
    ahead.close()
    assert not hung, "nobody waits for a preparation that will not come"
    assert [a.decoded for a in answers] == [(["call-0"], {}), (["call-1"], {})]
