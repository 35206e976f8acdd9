"""Faults a real network and a real Gong produce (issue 19), each injected once by the simulator in the middle of
a sync: the sync retries it, or ends in one sentence and the next run completes. Either way the warehouse ends
with exactly the rows of an undisturbed run (and a stopped run's state never passed what it loaded: the next
run would miss rows otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import UserError
from simulator import GongSimulator
from tests.conftest import Warehouse, sim_config, synced

DATA = dict(days=3, calls_per_day=60, users=3, sentences_per_call=6, page_size=25)
CALLS, TRANSCRIPTS = "/v2/calls/extensive", "/v2/calls/transcript"

FAULTS: list[tuple[str, dict[str, Any], str | None]] = [
    # name, what the simulator does once, and the sentence the run ends in (None: retried, the run completes)
    ("503 with Retry-After", dict(status=503, retry_after=1, path=CALLS, paged=True), None),
    ("503 without Retry-After", dict(status=503, path=CALLS, paged=True), None),
    ("a proxy's HTML 502 page", dict(status=502, fault="html", path=CALLS, paged=True), None),
    ("connection reset mid-body", dict(fault="reset", path=CALLS, paged=True), None),
    ("a transcript answer reset mid-body", dict(fault="reset", path=TRANSCRIPTS), None),
    ("no answer (read timeout)", dict(fault="hang", delay_s=3, path=CALLS, paged=True), None),
    ("truncated JSON", dict(fault="truncate", path=CALLS, paged=True), "is not valid JSON"),
    ("a cursor Gong no longer accepts", dict(status=400, message="cursor is invalid or expired", path=CALLS,
                                             paged=True), "cursor is invalid or expired"),
]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, int], int]:
    """The rows of an undisturbed sync, and how many requests it sent."""
    with GongSimulator(sim_config(**DATA)) as sim:
        rows = synced(sim, Warehouse.duckdb_in(tmp_path_factory.mktemp("calm"), "wh"), rate_limit=None)
        return rows, len(sim.arrivals)


@pytest.mark.parametrize("name, fault, sentence", FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_is_retried_or_ends_in_one_sentence_and_the_next_run_completes(
        name: str, fault: dict[str, Any], sentence: str | None, undisturbed: tuple[dict[str, int], int],
        tmp_path: Path) -> None:
    rows, requests = undisturbed
    wh = Warehouse.duckdb_in(tmp_path, "wh")
    with GongSimulator(sim_config(**DATA)) as sim:
        sim.inject(**fault)
        if sentence is None:
            got = synced(sim, wh, rate_limit=None, timeout_s=1.0)
        else:
            with pytest.raises(UserError) as stopped:
                synced(sim, wh, rate_limit=None, timeout_s=1.0)
            message = str(stopped.value)
            assert sentence in message and "\n" not in message and "Traceback" not in message, message
            got = synced(sim, wh, rate_limit=None, timeout_s=1.0)
        served, sent = list(sim.injected_served), len(sim.arrivals)
    label = fault.get("fault") or f"{fault['status']}" + (" Retry-After" if "retry_after" in fault else "")
    assert served == [label], "the fault happened, once"
    if sentence is None:
        assert sent == requests + 1, "one request more than an undisturbed run: the retry"
    assert got == rows, f"after {name}: the rows of an undisturbed run"


def test_a_soak_with_a_fault_on_5_percent_of_requests_ends_with_the_rows_of_an_undisturbed_run(
        tmp_path: Path) -> None:
    from bench.soak import soak

    got = soak(tmp_path, days=6, calls_per_day=60, page_size=10, fault_rate=0.08)
    assert sum(got.faults.values()) >= 4 and len(got.faults) >= 3, got.faults
    assert got.requests > 60 and got.calls > 300
    assert got.equal, f"faults met: {dict(got.faults)}; runs ended: {got.stops}"
    assert all("\n" not in stop for stop in got.stops)
