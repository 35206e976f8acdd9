"""Milliseconds the simulator takes to build one page of 100 full calls (the benchmark's own floor).

The simulator answers in process for the tests and in a thread for the benchmark; a slow page generator
would inflate every extract figure of `make bench`. Figures, not a test: nothing is asserted.

    .venv/bin/python -m bench.sim_bench
    .venv/bin/python -m bench.sim_bench --pages 20 --sentences 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from simulator import GongSimulator, SimConfig
from sources.gong.settings import CALLS_CONTENT_SELECTOR

SELECTOR = CALLS_CONTENT_SELECTOR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10, help="pages to time (default 10)")
    parser.add_argument("--sentences", type=int, default=60, help="sentences per call (default 60)")
    args = parser.parse_args(argv)
    cfg = SimConfig(seed=7, users=12, workspaces=2, calls_per_day=100 * args.pages, days=1,
                    sentences_per_call=args.sentences, page_size=100, rate_limit=None, daily_quota=None)
    sim = GongSimulator(cfg)
    auth = {"authorization": f"Bearer {cfg.bearer_token}"}
    body: dict = {"filter": {}, "contentSelector": SELECTOR}
    timings = []
    for _ in range(args.pages):
        t0 = time.perf_counter()
        resp = sim.handle("POST", "/v2/calls/extensive", auth, json.dumps(body).encode())
        timings.append((time.perf_counter() - t0) * 1000)
        page = json.loads(resp.body)
        cursor = page.get("records", {}).get("cursor")
        if not cursor:
            break
        body = {**body, "cursor": cursor}
    print(f"pages: {len(timings)}  calls per page: 100  sentences per call: {args.sentences}")
    print(f"ms per page: median {statistics.median(timings):.0f}, min {min(timings):.0f}, "
          f"max {max(timings):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
