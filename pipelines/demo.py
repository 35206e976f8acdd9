"""`make demo`: a look at gong-sync without credentials.

Starts the local Gong simulator on a free port, syncs three weeks of simulated history into
demo/gong_demo.duckdb through the real pipeline (at Gong's own 3 requests/second), prints the
summary, builds the dbt models (transform/) on it, answers a few example questions from the marts, and stops
the simulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Optional

DEMO_DIR = Path("demo")
DEMO_DB = DEMO_DIR / "gong_demo.duckdb"

def whole_weeks(start: datetime, now: datetime) -> tuple[date, date]:
    """The Mondays (UTC) that begin the first whole week on or after `start` and the week `now` is in: the
    weeks in between are whole within the synced range."""
    first = start.date() + timedelta(days=(7 - start.weekday()) % 7)
    if start.weekday() == 0 and start.time() != time(0):
        first += timedelta(days=7)  # started on a Monday, but after midnight
    return first, now.date() - timedelta(days=now.weekday())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21, help="days of simulated history (default 21)")
    parser.add_argument("--calls-per-day", type=int, default=20, help="simulated calls per day (default 20)")
    parser.add_argument("--rate-limit", type=float, default=3.0, help="requests/second, as Gong (default 3)")
    args = parser.parse_args(argv)

    import dlt
    import duckdb

    from pipelines.cli import configure_logging, limit_malloc_arenas, print_summary
    from pipelines.export_schema import seed_simulator_crm
    from pipelines.gong_pipeline import UserError, run_sync
    from pipelines.models import build_models, mart_questions, models_summary
    from simulator import GongSimulator, SimConfig
    from sources.gong import make_client
    from sources.gong.catalog import resource_names

    limit_malloc_arenas()

    config = SimConfig(days=args.days, calls_per_day=args.calls_per_day, rate_limit=args.rate_limit)
    DEMO_DIR.mkdir(exist_ok=True)
    configure_logging(verbose=False, quiet=False)
    with GongSimulator(config) as sim:
        print(f"Gong simulator running at {sim.base_url} ({args.days} days, {args.calls_per_day} calls/day)")
        # One client for the demo's own requests and the syncs: one rate limiter, so that none of them is
        # refused with a 429 for coming too soon after another.
        client = make_client(sim.base_url, config.access_key, config.access_key_secret, rate_limit=args.rate_limit)
        # The simulated company also pushes CRM data through a generic integration.
        seed_simulator_crm(client)
        now = sim.clock.now()
        start = now - timedelta(days=args.days)
        demo_db = dlt.destinations.duckdb(credentials=str(DEMO_DB))
        sync: dict[str, Any] = dict(destination=demo_db, dataset="gong",
                                    pipeline_name="gong_demo", pipelines_dir=str(DEMO_DIR / ".dlt"),
                                    source_options={"client": client, "company_timezone": config.company_timezone})
        try:
            result = run_sync(resource_names(default_only=True), start=start.isoformat(), full_refresh=True, **sync)
            print_summary(result)
            print("\nA second run, as a schedule would start it (nothing new in Gong: it re-reads the lookback):")
            calls_before = _stored_calls()
            again = run_sync(resource_names(default_only=True), **sync)
        except UserError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        finally:
            client.close()
    per_endpoint = ", ".join(f"{path} {n}" for path, n in sorted(again.request_counts.items()))
    print(f"  {again.requests_used} requests ({per_endpoint})")
    print(f"  calls in the warehouse: {calls_before} before, {_stored_calls()} after (merged by key, never doubled)")
    print("\nBuilding the models (transform/: staging views and marts)...", flush=True)
    try:
        # The first sync was a full refresh: so is the build.
        built = build_models(destination=demo_db, dataset="gong", pipeline_name="gong_demo", full_refresh=True)
    except UserError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(models_summary(built))
    with duckdb.connect(str(DEMO_DB), read_only=True) as con:
        for title, sql in mart_questions("gong", weeks=whole_weeks(start, now)):
            print(f"\n{title}:")
            _print_table(con.execute(sql))
    print(f"\nThe warehouse is {DEMO_DB}; explore it with: .venv/bin/python -c \"import duckdb; "
          f"print(duckdb.connect('{DEMO_DB}').sql('SHOW ALL TABLES'))\"\nThe marts are described in docs/models.md "
          "(query them as gong_marts.<mart>); the raw tables in docs/tables.md.")
    return 0


def _stored_calls() -> int:
    import duckdb

    with duckdb.connect(str(DEMO_DB), read_only=True) as con:
        return con.execute("SELECT count(*) FROM gong.calls").fetchone()[0]


def _print_table(cursor: duckdb.DuckDBPyConnection) -> None:  # noqa: F821
    names = [d[0] for d in cursor.description]
    rows = [[("" if v is None else str(v)) for v in row] for row in cursor.fetchall()]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    print("  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
