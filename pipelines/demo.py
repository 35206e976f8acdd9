"""`make demo`: a look at gong-sync without credentials.

Starts the local Gong simulator on a free port, syncs three weeks of simulated history into
demo/gong_demo.duckdb through the real pipeline (at Gong's own 3 requests/second), prints the
summary and a few example queries, and stops the simulator.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Optional

DEMO_DIR = Path("demo")
DEMO_DB = DEMO_DIR / "gong_demo.duckdb"

EXAMPLE_QUERIES: list[tuple[str, str]] = [
    (
        "Calls per rep per week (latest 3 weeks)",
        """
        SELECT u.first_name || ' ' || u.last_name AS rep,
               strftime(date_trunc('week', c.started), '%Y-%m-%d') AS week,
               count(*) AS calls,
               round(sum(c.duration_s) / 60.0) AS minutes
        FROM gong.calls c JOIN gong.users u ON u.id = c.primary_user_id
        GROUP BY ALL ORDER BY week DESC, calls DESC, rep LIMIT 12
        """,
    ),
    (
        "Talk ratio per rep (share of call time the rep spoke)",
        """
        SELECT u.first_name || ' ' || u.last_name AS rep,
               count(DISTINCT s.call_id) AS calls,
               round(100 * sum(s.talk_time_s) / sum(c.duration_s), 1) AS talk_ratio_pct
        FROM gong.calls__speakers s
        JOIN gong.calls c ON c.id = s.call_id
        JOIN gong.users u ON u.id = s.user_id
        WHERE s.user_id = c.primary_user_id
        GROUP BY ALL ORDER BY talk_ratio_pct DESC LIMIT 10
        """,
    ),
    (
        "Most mentioned trackers",
        """
        SELECT t.tracker_name AS tracker, sum(t.count) AS mentions, count(DISTINCT t.call_id) AS calls
        FROM gong.calls__trackers t GROUP BY ALL ORDER BY mentions DESC LIMIT 8
        """,
    ),
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21, help="days of simulated history (default 21)")
    parser.add_argument("--calls-per-day", type=int, default=20, help="simulated calls per day (default 20)")
    parser.add_argument("--rate-limit", type=float, default=3.0, help="requests/second, as Gong (default 3)")
    args = parser.parse_args(argv)

    import duckdb

    from pipelines.cli import configure_logging, limit_malloc_arenas, print_summary
    from pipelines.export_schema import seed_simulator_crm
    from pipelines.gong_pipeline import UserError, run_sync
    from simulator import GongSimulator, SimConfig
    from sources.gong.catalog import resource_names

    limit_malloc_arenas()

    config = SimConfig(days=args.days, calls_per_day=args.calls_per_day, rate_limit=args.rate_limit)
    DEMO_DIR.mkdir(exist_ok=True)
    configure_logging(verbose=False, quiet=False)
    with GongSimulator(config) as sim:
        print(f"Gong simulator running at {sim.base_url} ({args.days} days, {args.calls_per_day} calls/day)")
        # The demo configures the pipeline exactly as a user would: through dlt's environment keys.
        os.environ.update({
            "DESTINATION__DUCKDB__CREDENTIALS": str(DEMO_DB),
            "SOURCES__GONG__BASE_URL": sim.base_url,
            "SOURCES__GONG__ACCESS_KEY": config.access_key,
            "SOURCES__GONG__ACCESS_KEY_SECRET": config.access_key_secret,
            "SOURCES__GONG__RATE_LIMIT": str(args.rate_limit),
            "SOURCES__GONG__COMPANY_TIMEZONE": config.company_timezone,
        })
        # The simulated company also pushes CRM data through a generic integration.
        seed_simulator_crm(sim.base_url, config.access_key, config.access_key_secret)
        start = sim.clock.now() - timedelta(days=args.days)
        sync = dict(destination="duckdb", dataset="gong", pipeline_name="gong_demo",
                    pipelines_dir=str(DEMO_DIR / ".dlt"))
        try:
            result = run_sync(resource_names(default_only=True), start=start.isoformat(), full_refresh=True, **sync)
            print_summary(result)
            print("\nA second run, as a schedule would start it (nothing new in Gong: it re-reads the lookback):")
            calls_before = _stored_calls()
            again = run_sync(resource_names(default_only=True), **sync)
        except UserError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
    per_endpoint = ", ".join(f"{path} {n}" for path, n in sorted(again.request_counts.items()))
    print(f"  {again.requests_used} requests ({per_endpoint})")
    print(f"  calls in the warehouse: {calls_before} before, {_stored_calls()} after (merged by key, never doubled)")
    with duckdb.connect(str(DEMO_DB), read_only=True) as con:
        for title, sql in EXAMPLE_QUERIES:
            print(f"\n{title}:")
            _print_table(con.execute(sql))
    print(f"\nThe warehouse is {DEMO_DB}; explore it with: .venv/bin/python -c \"import duckdb; "
          f"print(duckdb.connect('{DEMO_DB}').sql('SHOW ALL TABLES'))\"")
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
