"""A soak: one long sync against a simulator that answers ~5 % of requests with a random fault (503 with and
without Retry-After, 429, a proxy's HTML 502, a connection reset mid-body, no answer, truncated JSON), run again
after a run that ends in a sentence, until it completes; then its rows against an undisturbed sync's. Prints how
many faults of each kind it met. Figures, not a test (tests/test_faults.py runs a small one and asserts).

    .venv/bin/python -m bench.soak                     # 30 days x 80 calls, pages of 25 (~200 requests)
    .venv/bin/python -m bench.soak --days 5 --fault-rate 0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipelines.errors import UserError
from simulator import GongSimulator
from tests.conftest import Warehouse, sim_config, synced


@dataclass
class Soak:
    """What a soak met and ended with."""

    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    runs: int = 0
    stops: list[str] = field(default_factory=list)
    calls: int = 0
    sentences: int = 0
    equal: bool = False
    seconds: float = 0.0


def soak(folder: Path, days: int = 30, calls_per_day: int = 80, page_size: int = 25, fault_rate: float = 0.05,
         max_runs: int = 10) -> Soak:
    """Runs the soak in `folder` (two DuckDB warehouses: undisturbed and faulty)."""
    data = dict(days=days, calls_per_day=calls_per_day, users=4, sentences_per_call=6, page_size=page_size)
    with GongSimulator(sim_config(**data)) as calm:
        expected = synced(calm, Warehouse.duckdb_in(folder, "calm"), rate_limit=None, days=days)
    result = Soak()
    began = time.monotonic()
    wh = Warehouse.duckdb_in(folder, "faulty")
    with GongSimulator(sim_config(**data, fault_rate=fault_rate)) as sim:
        got: dict[str, int] = {}
        while result.runs < max_runs:
            result.runs += 1
            try:
                got = synced(sim, wh, rate_limit=None, days=days, timeout_s=1.0)
                break
            except UserError as exc:
                result.stops.append(str(exc))
        result.faults = Counter(sim.injected_served)
        result.requests = len(sim.arrivals)
    result.seconds = time.monotonic() - began
    result.calls, result.sentences = len(got), sum(got.values())
    result.equal = got == expected
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls-per-day", type=int, default=80)
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gong-soak-") as tmp:
        got = soak(Path(tmp), args.days, args.calls_per_day, args.page_size, args.fault_rate)
    print(f"soak: {got.requests} requests in {got.runs} run(s), {got.seconds:.1f} s; faults met: "
          + ", ".join(f"{kind} {n}" for kind, n in sorted(got.faults.items())))
    for stop in got.stops:
        print(f"  a run ended: {stop}")
    print(f"  {got.calls:,} calls and {got.sentences:,} sentences; the same rows as the undisturbed sync: "
          f"{'yes' if got.equal else 'NO'}")
    return 0 if got.equal else 1


if __name__ == "__main__":
    sys.exit(main())
