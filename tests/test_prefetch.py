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
