"""The calls feed: it reads each window's pages of calls and what follows them ahead of the pipeline, on
threads, and never sends a request twice or for a private call."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

import pendulum
import pytest

from pipelines.gong_pipeline import run_sync
from sources.gong.client import GongApiError, GongStopRun
from sources.gong.feed import CallsFeed
from tests.conftest import GongFixture, Warehouse

START = pendulum.datetime(2026, 10, 26, tz="UTC")
END = pendulum.datetime(2026, 11, 1, 12, tz="UTC")


def sent_twice(log: list[dict[str, Any]]) -> list[Any]:
    keys = Counter(json.dumps([r["method"], r["path"], r["query"], r["body"]], sort_keys=True) for r in log)
    return [k for k, n in keys.items() if n > 1]


@pytest.mark.sim(days=6, calls_per_day=12, page_size=5, sentences_per_call=4, private_ratio=0.2)
def test_the_feed_reads_every_page_and_its_transcripts_once_and_skips_private_calls(gong: GongFixture) -> None:
    assert gong.sim is not None
    client = gong.client()
    feed = CallsFeed(client, [(START, END)], ["transcripts"], chunk_pages=3, workers=2).start()
    try:
        chunks = [c for c in feed.chunks(0) if c.drain() is None]
        sentences = sum(t.num_rows for c in chunks for p in c.pages for t in p.answers("transcripts"))
    finally:
        feed.close()
    in_window = [i for i in gong.sim.call_ids() if START <= pendulum.instance(gong.sim.call_meta(i).started) < END]
    private = set(gong.sim.private_call_ids()) & set(in_window)
    ids = [i for chunk in chunks for page in chunk.pages for i in page.ids]
    assert ids == [r["id"] for chunk in chunks for page in chunk.pages for r in page.rows], "a row per call"
    assert sorted(ids) == sorted(set(in_window) - private) and private
    assert sum(p.private for c in chunks for p in c.pages) == len(private)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True] and chunks[-1].followed()
    log = gong.sim.request_log
    assert sent_twice(log) == [], "no request was sent twice"
    pages = [r for r in log if r["path"] == "/v2/calls/extensive"]
    batches = [r for r in log if r["path"] == "/v2/calls/transcript"]
    assert len(pages) == sum(len(c.pages) for c in chunks) and len(batches) == len(pages)
    asked = [i for r in batches for i in r["body"]["filter"]["callIds"]]
    assert sorted(asked) == sorted(ids), "each non-private call's transcript asked for once"
    assert sentences > 0
    assert gong.sim.stats()["privateTranscriptRequests"] == []


@pytest.mark.sim(days=6, calls_per_day=12, page_size=5, sentences_per_call=4)
def test_a_threaded_sync_never_sends_a_request_twice(gong: GongFixture, tmp_path: Path) -> None:
    assert gong.sim is not None
    wh = Warehouse("duckdb", tmp_path)
    result = run_sync(["calls", "transcripts", "call_user_access"], start=START.isoformat(), end=END.isoformat(),
                      destination=wh.destination, dataset=wh.dataset, pipeline_name="feed_test",
                      pipelines_dir=str(tmp_path / "dlt"), source_options={"client": gong.client()},
                      window_days=2, window_requests=6, chunk_pages=2)
    assert result.windows > 1 and result.stop_reason is None
    assert sent_twice(gong.sim.request_log) == []
    visible = len([i for i in gong.sim.call_ids(include_private=False)
                   if START <= pendulum.instance(gong.sim.call_meta(i).started) < END])
    assert wh.count("calls") == visible
    # The same rows as one window read in one chunk.
    whole = Warehouse.duckdb_in(tmp_path, "whole")
    run_sync(["calls", "transcripts", "call_user_access"], start=START.isoformat(), end=END.isoformat(),
             destination=whole.destination, dataset=whole.dataset, pipeline_name="feed_whole",
             pipelines_dir=str(tmp_path / "dlt_whole"), source_options={"client": gong.client()}, window_days=30,
             chunk_pages=0)
    assert wh.table_rows() == whole.table_rows() and wh.count("transcripts") > 0


class StubClient:
    """Pages of calls from a script; records what it was asked; `stop_at` raises GongStopRun there."""

    def __init__(self, pages: list[list[dict[str, Any]]], stop_at: Optional[int] = None,
                 fail_page: Optional[int] = None) -> None:
        self.script = pages
        self.stop_at = stop_at
        self.fail_page = fail_page
        self.bodies: list[Any] = []
        self.stop_reason: Optional[str] = None
        self.lock = threading.Lock()
        self.pages_read = 0

    calls_body = staticmethod(lambda start, end, media=False: {"filter": {"from": str(start), "to": str(end)}})
    call_ids_body = staticmethod(lambda ids: {"filter": {"callIds": list(ids)}})
    is_private = staticmethod(lambda call: bool(call["metaData"].get("isPrivate")))

    def stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    @contextlib.contextmanager
    def first_at_the_limiter(self, while_: Any) -> Iterator[None]:
        yield

    def pages(self, method: str, path: str, data_key: str, body: Any = None, decode: Any = None,
              first: Any = None) -> Any:
        with self.lock:
            self.bodies.append((path, body))
            number = len(self.bodies)
        if self.stop_at is not None and number >= self.stop_at:
            raise GongStopRun("the budget is spent")
        if path == "/v2/calls/extensive":
            for index, page in enumerate(self.script):
                if index == self.fail_page:
                    raise GongApiError("Gong's answer to /v2/calls/extensive is not valid JSON (12 bytes).")
                self.pages_read += 1
                yield page, {"totalRecords": sum(map(len, self.script))}
            return
        yield [{"callId": i} for i in body["filter"]["callIds"]], {}


def call(call_id: str, private: bool = False) -> dict[str, Any]:
    return {"metaData": {"id": call_id, "isPrivate": private, "title": f"call {call_id}"}}


def test_a_call_listed_on_two_pages_is_followed_once_and_private_calls_never() -> None:
    client = StubClient([[call("1"), call("2")], [call("2"), call("3", private=True), call("4")]])
    feed = CallsFeed(client, [(START, END)], ["call_user_access"], chunk_pages=5).start()  # type: ignore[arg-type]
    try:
        (chunk,) = [c for c in feed.chunks(0) if c.drain() is None]
        answers = [list(p.answers("call_user_access")) for p in chunk.pages]
    finally:
        feed.close()
    follows = [b for p, b in client.bodies if p != "/v2/calls/extensive"]
    assert follows == [{"filter": {"callIds": ["1", "2"]}}, {"filter": {"callIds": ["4"]}}]
    assert answers == [[[{"callId": "1"}, {"callId": "2"}]], [[{"callId": "4"}]]]
    assert [p.private for p in chunk.pages] == [0, 1] and chunk.last and chunk.followed()


def test_chunks_are_evened_out_with_gongs_count() -> None:
    pages = [[call(f"{p}-{i}") for i in range(100)] for p in range(25)]
    windows = [(START, START.add(days=1)), (START.add(days=1), END)]
    feed = CallsFeed(StubClient(pages), windows, [], chunk_pages=10).start()  # type: ignore[arg-type]
    try:
        first = [len(list(c)) for c in feed.chunks(0)]
        last = [len(list(c)) for c in feed.chunks(1)]
    finally:
        feed.close()
    assert first == [9, 9, 7], "25 pages in 3 chunks, not 10, 10 and 5"
    assert last == [9, 9, 7]


def test_the_feed_holds_at_most_its_lead_of_pages_not_taken() -> None:
    client = StubClient([[call(str(p))] for p in range(30)])
    feed = CallsFeed(client, [(START, END)], [], chunk_pages=1, ahead=3).start()  # type: ignore[arg-type]
    try:
        chunks = feed.chunks(0)
        list(next(chunks))
        for _ in range(50):  # give the reader every chance to run ahead
            threading.Event().wait(0.005)
        assert client.pages_read <= 1 + 3 + 1, "one taken, three held, one waiting to be held"
        assert len([c for c in chunks if c.drain() is None]) == 29
    finally:
        feed.close()


def test_a_stop_in_a_read_that_follows_leaves_the_window_unfinished() -> None:
    client = StubClient([[call("1")], [call("2")]], stop_at=3)
    feed = CallsFeed(client, [(START, END)], ["transcripts"], chunk_pages=5).start()  # type: ignore[arg-type]
    try:
        (chunk,) = [c for c in feed.chunks(0) if c.drain() is None]
        assert chunk.last and not chunk.followed()
    finally:
        feed.close()


def test_a_page_that_fails_raises_where_the_pipeline_takes_it_and_later_windows_are_not_read() -> None:
    client = StubClient([[call("1")], [call("2")]], fail_page=1)
    windows = [(START, START.add(days=1)), (START.add(days=1), END)]
    feed = CallsFeed(client, windows, [], chunk_pages=5).start()  # type: ignore[arg-type]
    try:
        with pytest.raises(GongApiError, match="not valid JSON"):
            for chunk in feed.chunks(0):
                chunk.drain()
    finally:
        feed.close()
    assert [p for p, _ in client.bodies] == ["/v2/calls/extensive"], "the second window was never asked for"


def test_a_first_page_already_received_is_not_asked_again(gong: GongFixture) -> None:
    client = gong.client()
    total, first = client.count_calls(START, END)
    feed = CallsFeed(client, [(START, END)], [], chunk_pages=0, first_page=first).start()
    try:
        (chunk,) = [c for c in feed.chunks(0) if c.drain() is None]
    finally:
        feed.close()
    assert sum(len(p.ids) + p.private for p in chunk.pages) == total > 0
    assert gong.session.count("/v2/calls/extensive") == 1, "the counting request was the read"


def test_an_empty_window_sends_nothing() -> None:
    client = StubClient([[call("1")]])
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    feed = CallsFeed(client, [(pendulum.instance(moment), pendulum.instance(moment))], []).start()  # type: ignore[arg-type]
    try:
        (chunk,) = [c for c in feed.chunks(0) if c.drain() is None]
    finally:
        feed.close()
    assert chunk.pages == [] and chunk.last and chunk.followed() and client.bodies == []
