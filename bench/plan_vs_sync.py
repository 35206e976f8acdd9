"""`gong-sync plan` next to what the sync then really spends, on the benchmark's 10x dataset.

Starts the simulator with the data of bench/run_bench.py's rate3_10x scenario (20 days, ~10,800 calls of
~200 sentences; rate limit off, so it takes about a minute), runs `gong-sync plan` over the range, then the
sync of the same range into a DuckDB file of a temporary folder, and prints both. Figures, not a test.

    .venv/bin/python -m bench.plan_vs_sync
    .venv/bin/python -m bench.plan_vs_sync --calls 2000 --resources users,calls,transcripts,interaction_stats
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run_bench import ACCESS_KEY, ACCESS_SECRET, DAYS, RESOURCES, ROOT, Simulator, window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plan_vs_sync", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_800, help="calls generated (default 10,800)")
    parser.add_argument("--sentences", type=int, default=200, help="sentences per call (default 200)")
    parser.add_argument("--resources", default=RESOURCES, help=f"resources (default {RESOURCES})")
    args = parser.parse_args(argv)
    start, end = window(DAYS)
    with tempfile.TemporaryDirectory(prefix="gong_plan_") as tmp:
        work = Path(tmp)
        with Simulator(work, "plan", math.ceil(args.calls / DAYS), DAYS, args.sentences, None) as sim:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "DLT_"))}
            env.update(SOURCES__GONG__BASE_URL=sim.url, SOURCES__GONG__ACCESS_KEY=ACCESS_KEY,
                       SOURCES__GONG__ACCESS_KEY_SECRET=ACCESS_SECRET, SOURCES__GONG__RATE_LIMIT="0",
                       DLT_DATA_DIR=str(work / "dlt"), PYTHONPATH=str(ROOT))
            command = [sys.executable, "-m", "pipelines.cli"]
            common = ["--start", start, "--end", end, "--resources", args.resources]
            plan = subprocess.run([*command, "plan", *common], cwd=work, env=env, capture_output=True, text=True)
            print(plan.stdout + plan.stderr)
            before = sim.api_requests()
            sync = subprocess.run([*command, "-q", *common], cwd=work, env=env, capture_output=True, text=True)
            served = sim.api_requests() - before
        print(sync.stdout[sync.stdout.find("  Gong requests"):] + sync.stderr)
        planned = re.search(r"    total\s+([\d,]+)", plan.stdout)
        spent = re.search(r"Gong requests: ([\d,]+)", sync.stdout)
        if planned and spent:
            p, s = (int(m.group(1).replace(",", "")) for m in (planned, spent))
            print(f"planned {p:,} requests; the sync sent {s:,} (the simulator answered {served:,}): "
                  f"{(p - s) / s * 100:+.1f} %")
    return 0 if plan.returncode == 0 and sync.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
