"""The Gong client: paging, cursors, errors, retries, limiter and budget (the quirks of Gong's HTTP pinned by
small recorded exchanges)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from sources.gong.client import (
    ClientSettings,
    GongApiError,
    GongAuthError,
    GongClient,
    GongStopRun,
)
from sources.gong.limiter import RateLimiter
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, GongFixture

CALLS_BODY = {"filter": {"fromDateTime": "2026-10-26T00:00:00+00:00", "toDateTime": "2026-11-01T12:00:00+00:00"}}


@pytest.mark.cassette
@pytest.mark.sim(page_size=2)
def test_get_pages_with_cursor_in_query(gong: GongFixture) -> None:
    client = gong.client()
    pages = list(client.paginate("GET", "/v2/users", "users"))
    assert [len(p) for p in pages] == [2, 2, 2]
    ids = [u["id"] for p in pages for u in p]
    assert len(set(ids)) == 6
    sent = gong.session.sent
    assert len(sent) == 3 and client.request_counts["/v2/users"] == 3
    assert sent[0]["params"] is None
    assert sent[1]["params"]["cursor"] and sent[2]["params"]["cursor"] != sent[1]["params"]["cursor"]


@pytest.mark.cassette
@pytest.mark.sim(page_size=5)
def test_post_cursor_goes_in_the_body(gong: GongFixture) -> None:
    client = gong.client()
    pages = list(client.paginate("POST", "/v2/calls/extensive", "calls", body=CALLS_BODY))
    assert len(pages) >= 3 and all(len(p) == 5 for p in pages[:-1])
    ids = [c["metaData"]["id"] for p in pages for c in p]
    assert len(ids) == len(set(ids)), "a page was served twice: the cursor did not reach Gong"
    sent = gong.session.sent
    assert all(r["params"] is None for r in sent), "a POST cursor must never go in the query string"
    assert "cursor" not in sent[0]["body"]
    cursors = [r["body"]["cursor"] for r in sent[1:]]
    assert len(cursors) == len(pages) - 1 and len(set(cursors)) == len(cursors)
    assert all(r["body"]["filter"] == CALLS_BODY["filter"] for r in sent)


@pytest.mark.cassette
def test_empty_result_404_means_no_rows(gong: GongFixture) -> None:
    client = gong.client()
    body = {"filter": {"fromDateTime": "2026-12-01T00:00:00+00:00", "toDateTime": "2026-12-02T00:00:00+00:00"}}
    assert list(client.paginate("POST", "/v2/calls/extensive", "calls", body=body)) == []
    assert len(gong.session.sent) == 1


@pytest.mark.cassette
def test_other_404_fails(gong: GongFixture) -> None:
    client = gong.client()
    with pytest.raises(GongApiError, match="HTTP 404.*BASE_URL"):
        list(client.paginate("GET", "/v2/no-such-endpoint", "things"))


@pytest.mark.cassette
def test_401_stops_after_one_request_with_a_clear_message(gong: GongFixture) -> None:
    client = gong.client(secret="wrong-secret-value")
    with pytest.raises(GongAuthError) as err:
        list(client.paginate("GET", "/v2/users", "users"))
    assert len(gong.session.sent) == 1
    message = str(err.value)
    assert "HTTP 401" in message and "SOURCES__GONG__ACCESS_KEY" in message
    assert "wrong-secret-value" not in message and ACCESS_KEY not in message


@pytest.mark.cassette
@pytest.mark.sim(rate_limit=1)
def test_429_retry_after_is_honoured(gong: GongFixture) -> None:
    client = gong.client(max_retries=5)
    for _ in range(3):
        assert client.request("GET", "/v2/workspaces")["workspaces"]
    assert gong.sleeps.waits and all(w == 1.0 for w in gong.sleeps.waits)
    assert len(gong.session.sent) == 3 + len(gong.sleeps.waits)


@pytest.mark.cassette
@pytest.mark.sim(daily_quota=2)
def test_retry_after_beyond_the_bound_stops_the_run_cleanly(gong: GongFixture) -> None:
    client = gong.client(max_retry_after_s=300)
    client.request("GET", "/v2/workspaces")
    client.request("GET", "/v2/users")
    with pytest.raises(GongStopRun, match="wait .* s"):
        client.request("GET", "/v2/settings/scorecards")
    assert gong.sleeps.waits == [], "must not sleep for hours"
    assert len(gong.session.sent) == 3
    with pytest.raises(GongStopRun):
        client.request("GET", "/v2/workspaces")
    assert len(gong.session.sent) == 3, "after a stop no further request is sent"


# Unit tests with a scripted session (no HTTP).

class ScriptedSession(requests.Session):
    """Answers each request with the next scripted (status, json, headers)."""

    def __init__(self, script: list[tuple[int, Any, dict[str, str]]]) -> None:
        super().__init__()
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, **kwargs})
        status, payload, headers = self.script.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = payload if isinstance(payload, bytes) else __import__("json").dumps(payload).encode()
        response.headers.update(headers)
        return response


def scripted_client(script: list[tuple[int, Any, dict[str, str]]], **settings: Any) -> tuple[GongClient, list]:
    sleeps: list[float] = []
    settings.setdefault("rate_limit", None)
    client = GongClient("https://example.gong.test/", ACCESS_KEY, ACCESS_KEY_SECRET,
                        settings=ClientSettings(**settings), session=ScriptedSession(script), sleep=sleeps.append)
    return client, sleeps


def test_5xx_is_retried_with_exponential_backoff() -> None:
    ok = {"workspaces": [{"id": "1"}]}
    client, sleeps = scripted_client([(503, {}, {}), (502, {}, {}), (500, {}, {}), (200, ok, {})])
    assert client.request("GET", "/v2/workspaces") == ok
    assert sleeps == [1.0, 2.0, 4.0]
    assert client.requests_used == 4 and client.request_counts["/v2/workspaces"] == 4


def test_5xx_that_never_ends_stops_cleanly_after_max_retries() -> None:
    client, sleeps = scripted_client([(503, {}, {})] * 3, max_retries=2)
    with pytest.raises(GongStopRun, match="HTTP 503"):
        client.request("GET", "/v2/workspaces")
    assert len(sleeps) == 2


def test_repeated_cursor_stops_paging_with_an_error() -> None:
    page = {"users": [{"id": "1"}], "records": {"cursor": "same"}}
    client, _ = scripted_client([(200, page, {}), (200, page, {}), (200, page, {})])
    with pytest.raises(GongApiError, match="same paging cursor"):
        list(client.paginate("GET", "/v2/users", "users"))
    assert client.requests_used == 2


def test_malformed_json_page_is_a_clear_error() -> None:
    client, _ = scripted_client([(200, b"{not json", {})])
    with pytest.raises(GongApiError, match="not valid JSON"):
        client.request("GET", "/v2/users")


def test_daily_budget_stops_before_sending_more() -> None:
    ok = {"workspaces": []}
    client, _ = scripted_client([(200, ok, {})] * 5, daily_budget=2)
    client.request("GET", "/v2/workspaces")
    client.request("GET", "/v2/workspaces")
    with pytest.raises(GongStopRun, match="budget of 2"):
        client.request("GET", "/v2/workspaces")
    assert len(client._session.calls) == 2 and client.budget_left == 0


def test_auth_header_never_in_repr_and_bearer_supported() -> None:
    session = ScriptedSession([(200, {"workspaces": []}, {})])
    client = GongClient("https://x.gong.test", bearer_token="tok-123", session=session,
                        settings=ClientSettings(rate_limit=None))
    client.request("GET", "/v2/workspaces")
    assert session.calls[0]["headers"]["Authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(client)


def test_limiter_never_exceeds_its_rate_in_any_one_second_window_across_threads() -> None:
    limiter = RateLimiter(10)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 32
    worst = max(sum(1 for s in stamps if t0 <= s < t0 + 1.0) for t0 in stamps)
    assert worst <= 10
    assert stamps[-1] - stamps[0] >= 2.0, "32 requests at 10/s cannot take under 2 s"


def test_a_request_asked_for_first_takes_the_next_turn_before_those_already_waiting() -> None:
    limiter = RateLimiter(4)  # turns (1 s + 0.03 s) / 4 = 0.26 s apart
    limiter.acquire()
    taken: list[tuple[str, float]] = []
    lock = threading.Lock()

    def take(name: str, first: bool) -> None:
        stamp = limiter.acquire(first=first)
        with lock:
            taken.append((name, stamp[0]))

    waiting = [threading.Thread(target=take, args=(f"plain{i}", False)) for i in range(2)]
    for t in waiting:
        t.start()
    time.sleep(0.05)  # both wait for the next turn, at 0.26 s
    ahead = threading.Thread(target=take, args=("first", True))
    ahead.start()
    for t in [*waiting, ahead]:
        t.join()
    assert taken[0][0] == "first", "the request asked for first went first although it asked last"
    stamps = sorted(stamp for _, stamp in taken)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 1.03 / 4 - 0.005, "turns stay evenly spaced"
    assert limiter._first == 0


def test_a_rate_429_widens_the_limiters_margin_until_a_hundred_requests_pass_without_one() -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock[0] += seconds

    limiter = RateLimiter(3, clock=lambda: clock[0], sleep=sleep)
    assert limiter.margin == RateLimiter.BASE_MARGIN == 0.03
    for _ in range(4):
        limiter.acquire()
    assert waits == [0.343] * 3, "evenly spread, no burst"
    assert clock[0] == pytest.approx(1.03), "the fourth request goes a second after the first, plus the margin"
    for _ in range(5):
        limiter.widen()
    assert limiter.margin == 0.5, "doubled on each 429, at most half a second"
    waits.clear()
    for _ in range(3):
        limiter.acquire()
    # The first waits until a second and the wider margin have passed since the oldest of the last three
    # (the second request, at 1.03 / 3 s).
    assert waits == [0.813, 0.5, 0.5], "then three requests take a second plus the wider margin"
    for _ in range(RateLimiter.NARROW_AFTER - 3):
        limiter.acquire()
    assert limiter.margin == 0.25, "halved after 100 requests without a 429"
    for _ in range(5 * RateLimiter.NARROW_AFTER):
        limiter.acquire()
    assert limiter.margin == 0.03, "never below the base margin"
    limiter.widen()
    for _ in range(RateLimiter.NARROW_AFTER - 1):
        limiter.acquire()
    assert limiter.margin == 0.06, "a 429 starts the count again"


def test_a_request_that_leaves_late_pushes_the_next_turns_back() -> None:
    """A request whose preparation waited for Python's lock leaves after its turn: the limiter counts the
    moment it left, so the fourth request still goes a second (plus the margin) after it, not after its turn."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    limiter = RateLimiter(3, clock=lambda: clock[0], sleep=sleep)
    first = limiter.acquire()
    clock[0] = 0.3  # the first request only left now (its turn was at 0)
    limiter.sent(first)
    limiter.acquire()
    limiter.acquire()
    assert clock[0] == pytest.approx(1.03 / 3 * 2 + 0.3)
    limiter.acquire()
    assert clock[0] == pytest.approx(0.3 + 1.03), "a second plus the margin after the first really left"
    limiter.sent(limiter.acquire())  # sent on time: no change
    assert clock[0] == pytest.approx(0.3 + 1.03 + 1.03 / 3)


def test_the_clients_session_tells_the_limiter_when_each_request_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    from sources.gong import limiter as limiter_module

    marks: list[list[float]] = []
    limiter = RateLimiter(3)
    original_sent = limiter.sent
    monkeypatch.setattr(limiter, "sent", lambda stamp: (marks.append(list(stamp)), original_sent(stamp)))

    def fake_send(self: Any, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"workspaces": []}'
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", fake_send)
    client = GongClient("https://example.gong.test/", ACCESS_KEY, ACCESS_KEY_SECRET, limiter=limiter)
    assert isinstance(client._session.get_adapter("https://example.gong.test/v2"), limiter_module._StampOnSend)
    client.request("GET", "/v2/workspaces")
    client.request("GET", "/v2/workspaces")
    assert len(marks) == 2 and marks[0][0] > 0, "each request re-stamped once, as it left"
    assert getattr(limiter_module.SENDING, "mark", None) is None, "no stamp left behind for another request"
