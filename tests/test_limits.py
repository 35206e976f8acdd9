"""Gong's limits belong to the process (issue 19): a 429's Retry-After holds back every thread's requests, not
only the one that was answered, and the pace resumes after it. Proven on the arrival log of the simulator
running in this process (when each request arrived and was answered, and with what status)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import GongSimulator
from sources.gong.client import ClientSettings, GongClient
from sources.gong.limiter import RateLimiter
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, Warehouse, sim_config, synced

PATHS = ["/v2/users", "/v2/workspaces", "/v2/settings/trackers", "/v2/settings/scorecards"]


@pytest.fixture
def sim() -> Iterator[GongSimulator]:
    with GongSimulator(sim_config(days=2, calls_per_day=2, users=3)) as simulator:
        yield simulator


def tightest_span(arrivals: list[float], n: int = 4) -> float:
    """The shortest time in which `n` consecutive requests arrived."""
    times = sorted(arrivals)
    return min(b - a for a, b in zip(times, times[n - 1:], strict=False))


def test_a_retry_after_holds_back_every_thread_of_the_process_then_the_pace_resumes(sim: GongSimulator) -> None:
    client = GongClient(sim.base_url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=3.0))
    client.request("GET", "/v2/workspaces")  # the first answer lets the threads go at once
    done: list[str] = []
    lock = threading.Lock()

    def reader(k: int) -> None:
        for i in range(4):
            path = PATHS[(k + i) % len(PATHS)]
            client.request("GET", path)
            with lock:
                done.append(path)

    # Once one thread is under way, the next request to arrive (whichever thread sends it) is answered 429
    # with Retry-After: 1, while three more threads read.
    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    try:
        for t in threads[:1]:
            t.start()
        while len(sim.arrivals) < 3:
            threading.Event().wait(0.01)
        sim.inject(429, retry_after=1, message="Too many requests: rate limit exceeded")
        for t in threads[1:]:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        client.close()
    arrivals = list(sim.arrivals)
    refused = [a for a in arrivals if a[3] == 429]
    assert len(refused) == 1 and len(done) == 16, "every request was answered in the end, the refused one retried"
    assert sum(1 for a in arrivals if a[3] == 200) == 17
    answered_429 = refused[0][1]
    # Requests already on the wire when the 429 came back may arrive within milliseconds; none after that
    # until Retry-After has passed, whichever thread it is.
    during = [round(a[0] - answered_429, 3) for a in arrivals if answered_429 + 0.05 < a[0] < answered_429 + 1.0]
    assert during == [], f"requests arrived {during} s after the 429, inside its Retry-After"
    later = sorted(a[0] for a in arrivals if a[0] >= answered_429 + 1.0)
    assert len(later) >= 10
    # Then the limiter's pace, not a burst of the held requests: never 4 within a second.
    assert tightest_span([a[0] for a in arrivals]) >= 1.0
    assert min(b - a for a, b in zip(later, later[1:], strict=False)) >= 0.3


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


@pytest.mark.parametrize("rate", [None, 3.0])
def test_a_hold_delays_the_next_request_with_or_without_a_rate(rate: float | None) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.hold(2.5)
    clock.now += 0.5
    stamp = limiter.acquire()
    assert clock.now == pytest.approx(102.5) and sum(clock.slept) == pytest.approx(2.0)
    if rate:
        assert stamp[0] == pytest.approx(102.5)
    limiter.hold(0.0)  # a hold never shortens one in force, nor delays once it has passed
    clock.slept.clear()
    clock.now += 5
    limiter.acquire()
    assert clock.slept == []


def test_retries_and_reads_ahead_never_put_4_requests_in_one_second_at_the_server(tmp_path: Path) -> None:
    data = dict(days=3, calls_per_day=60, users=3, sentences_per_call=6, page_size=25)
    with GongSimulator(sim_config(**data)) as calm:
        expected = synced(calm, Warehouse.duckdb_in(tmp_path, "calm"), rate_limit=None)
    # Gong's own limit enforced, 0-150 ms of random latency per answer, a 5xx on ~15 % of requests, and two
    # 429s with Retry-After: 1 for the transcripts: the feed's threads, retries and holds interleave.
    faulty = sim_config(**data, rate_limit=3, error_rate=0.15, latency_jitter_ms=150)
    with GongSimulator(faulty) as sim:
        sim.inject(429, path="/v2/calls/transcript", retry_after=1, count=2)
        got = synced(sim, Warehouse.duckdb_in(tmp_path, "faulty"), rate_limit=3.0)
        arrivals = list(sim.arrivals)
        refused_for_rate = sim.stats()["rateLimited"]
    statuses = [a[3] for a in arrivals]
    assert statuses.count(429) == 2 and statuses.count(503) >= 2, "the faults happened"
    assert refused_for_rate == 0, "no request came too soon for Gong's limit"
    assert len(arrivals) >= 25 and tightest_span([a[0] for a in arrivals]) >= 1.0
    assert got == expected and len(got) > 100 and sum(got.values()) > 4 * len(got), "the rows of an undisturbed run"


READER = """
import sys
from sources.gong.budget import attach_company_limits
from sources.gong.client import ClientSettings, GongClient
base_url, key, secret, folder, n = sys.argv[1:6]
client = GongClient(base_url, key, secret, settings=ClientSettings(rate_limit=3.0))
attach_company_limits(client, folder)
for _ in range(int(n)):
    client.request("GET", "/v2/users")
client.close()
"""


def test_two_processes_of_one_company_share_its_rate_and_its_ledger(sim: GongSimulator, tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "pipelines"
    args = [sim.base_url, ACCESS_KEY, ACCESS_KEY_SECRET, str(folder), "9"]
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", READER, *args], cwd=root) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    arrivals = [a for a in sim.arrivals if a[2] == "/v2/users"]
    assert len(arrivals) == 18 and all(a[3] == 200 for a in arrivals)
    # Each at 3 requests/second alone would put 6 in a second at Gong; together they keep to 3.
    assert tightest_span([a[0] for a in arrivals]) >= 1.0
    assert max(a[0] for a in arrivals) - min(a[0] for a in arrivals) >= 17 / 3
    ledger = json.loads(next((folder / "gong_request_budget").glob("*[0-9].json")).read_text())
    assert ledger["used"] == 18, "the daily ledger counts both processes' requests"


FRESH_PROCESS = """
import json
from simulator import GongSimulator
from sources.gong.client import ClientSettings, GongClient
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, sim_config
with GongSimulator(sim_config(days=2, calls_per_day=2, users=3)) as sim:
    client = GongClient(sim.base_url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=3.0))
    for path in ("/v2/workspaces", "/v2/users", "/v2/workspaces", "/v2/users"):
        client.request("GET", path)
    client.close()
    print(json.dumps([a[0] for a in sim.arrivals]))
"""


def test_requests_on_new_connections_reach_the_server_spaced_as_the_limiter_spaced_them() -> None:
    # A process's first request sets up its connection (and what requests and urllib3 load on first use):
    # that time must not shorten the spacing at Gong (it did by 60-80 ms). A fresh process, as a user's run is.
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS], cwd=root, timeout=60, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    times = sorted(json.loads(proc.stdout.strip().splitlines()[-1]))
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 4 and min(gaps) >= 1 / 3, gaps
