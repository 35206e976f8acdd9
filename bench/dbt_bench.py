"""`dbt build` seconds on the 10x dataset: the models (transform/) on DuckDB and on Postgres, beside the sync's own.

For each warehouse: a full sync of every default resource from the simulator (in another process, frozen clock,
rate limit off, the 10x dataset of bench/run_bench.py: ~10,240 calls of ~200 sentences), then `build_models`
(a first build: every model from scratch), then an incremental sync (nothing new in Gong: the default 3-day
lookback is re-read) and `build_models` again (the incremental marts rebuild the calls it loaded), then a
`--full-refresh` build of the same data. Figures, not a test: nothing is asserted.

    .venv/bin/python -m bench.dbt_bench                      # both warehouses (about 8 minutes on 2 cores)
    .venv/bin/python -m bench.dbt_bench --only duckdb --calls 1080
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional

from bench.run_bench import DAYS, PG_URL_DEFAULT, SIM_NOW, Simulator

ACCESS_KEY, ACCESS_SECRET = "sim-access-key", "sim-access-key-secret"
DATASET = "gong_dbt_bench"


@dataclass
class Step:
    """One measured step: a sync or a build."""

    name: str
    seconds: float
    detail: str = ""


@dataclass
class Figures:
    """What one warehouse measured."""

    destination: str
    calls: int = 0
    sentences: int = 0
    steps: list[Step] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def sync(sim: Simulator, destination: Any, dataset: str, pipelines_dir: Path, full: bool) -> tuple[float, Any]:
    """One sync of every default resource; returns (seconds, SyncResult)."""
    from pipelines.gong_pipeline import run_sync
    from sources.gong import make_client
    from sources.gong.catalog import resource_names

    client = make_client(sim.url, ACCESS_KEY, ACCESS_SECRET, rate_limit=0, daily_budget=0)
    start = (SIM_NOW - timedelta(days=DAYS)).isoformat() if full else None
    began = time.perf_counter()
    try:
        # Up to the simulator's frozen now, also incrementally: the stats endpoints refuse a day not yet begun
        # in the company's time zone, and the pipeline's own clock is hours ahead.
        result = run_sync(resource_names(default_only=True), start=start, end=SIM_NOW.isoformat(),
                          full_refresh=full, destination=destination, dataset=dataset,
                          pipeline_name=f"dbt_bench_{getattr(destination, 'destination_name', 'x')}",
                          pipelines_dir=str(pipelines_dir),
                          source_options={"client": client, "company_timezone": "America/New_York"})
    finally:
        client.close()
    return time.perf_counter() - began, result


def build(destination: Any, dataset: str, workdir: Path, full_refresh: bool = False) -> tuple[float, Any]:
    from pipelines.models import build_models

    began = time.perf_counter()
    result = build_models(destination=destination, dataset=dataset, full_refresh=full_refresh,
                          target_path=str(workdir / "target"), log_path=str(workdir / "logs"))
    return time.perf_counter() - began, result


def drop_postgres(url: str, dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        for suffix in ("", "_staging", "_stg", "_marts"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{dataset}{suffix}" CASCADE')


def measure(kind: str, sim: Simulator, workdir: Path, postgres_url: str) -> Figures:
    import dlt

    figures = Figures(kind)
    if kind == "postgres":
        drop_postgres(postgres_url, DATASET)
        destination: Any = dlt.destinations.postgres(credentials=postgres_url)
    else:
        destination = dlt.destinations.duckdb(credentials=str(workdir / "bench.duckdb"))
    try:
        print(f"  {kind}: full sync...", flush=True)
        seconds, result = sync(sim, destination, DATASET, workdir / "pipelines", full=True)
        figures.calls, figures.sentences = result.row_counts.get("calls", 0), result.row_counts.get("transcripts", 0)
        figures.steps.append(Step("sync, full", seconds, f"{figures.calls:,} calls, {figures.sentences:,} sentences, "
                                                         f"{result.requests_used} requests"))
        for name, full_sync, refresh in (("dbt build, first", None, False),
                                         ("sync, incremental (nothing new, 3-day lookback)", False, False),
                                         ("dbt build, after the incremental sync", None, False),
                                         ("dbt build --full-refresh", None, True)):
            print(f"  {kind}: {name}...", flush=True)
            if full_sync is not None:
                seconds, result = sync(sim, destination, DATASET, workdir / "pipelines", full=full_sync)
                detail = (f"{result.row_counts.get('calls', 0):,} calls, "
                          f"{result.row_counts.get('transcripts', 0):,} sentences re-read")
            else:
                seconds, built = build(destination, DATASET, workdir, full_refresh=refresh)
                figures.rows = built.row_counts
                detail = f"{len(built.models)} models, {built.tests_passed} tests"
            figures.steps.append(Step(name, seconds, detail))
            print(f"    {seconds:.1f} s ({detail})", flush=True)
    finally:
        if kind == "postgres":
            drop_postgres(postgres_url, DATASET)
    return figures


def report(results: list[Figures], calls_generated: int, sentences: int) -> str:
    from bench.run_bench import machine

    mach = machine()
    lines = [f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB; Postgres {mach['postgres']}",
             f"Dataset: {calls_generated:,} calls generated over {DAYS} days, ~{sentences} sentences per call, every "
             "default resource, rate limit off",
             "", "| warehouse | step | seconds | what |", "|---|---|---:|---|"]
    for figures in results:
        for step in figures.steps:
            lines.append(f"| {figures.destination} | {step.name} | {step.seconds:.1f} | {step.detail} |")
    for figures in results:
        lines += ["", f"Rows of the marts ({figures.destination}): "
                  + ", ".join(f"{name} {rows:,}" for name, rows in figures.rows.items())]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dbt_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="duckdb,postgres", help="comma-separated warehouses (default: both)")
    parser.add_argument("--calls", type=int, default=10_800, help="calls generated (default 10,800: the 10x set)")
    parser.add_argument("--sentences", type=int, default=200, help="transcript sentences per call (default 200)")
    parser.add_argument("--postgres", default=os.environ.get("GONG_SYNC_BENCH_POSTGRES", PG_URL_DEFAULT),
                        help="Postgres URL (default: the test database on 127.0.0.1)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new one under /tmp)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    from pipelines.cli import configure_logging, limit_malloc_arenas

    configure_logging(verbose=False, quiet=True)
    limit_malloc_arenas()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gong-dbt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"dbt benchmark: scratch folder {workdir}", flush=True)
    per_day = max(1, math.ceil(args.calls / DAYS))
    results = []
    with Simulator(workdir, "dbt", per_day, DAYS, args.sentences, None) as sim:
        for kind in (k.strip() for k in args.only.split(",") if k.strip()):
            results.append(measure(kind, sim, workdir / kind, args.postgres))
    print("\n" + report(results, per_day * DAYS, args.sentences))
    return 0


if __name__ == "__main__":
    sys.exit(main())
