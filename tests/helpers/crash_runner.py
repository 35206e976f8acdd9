"""Runs one real sync in this process and, when asked, kills it with SIGKILL mid-step.

    python -m tests.helpers.crash_runner RESOURCES START END [--kill-at extract|normalize|load] [--after N]

Configuration comes from the environment like a user's run (SOURCES__GONG__*, the destination's
credentials, GONG_SYNC_PIPELINES_DIR). The kill comes from a dlt progress collector: the N-th
progress update of the chosen step sends SIGKILL to this very process, so nothing can clean up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any, Optional

from dlt.common.runtime.collector import NullCollector


class KillingCollector(NullCollector):
    """Kills the process on the `after`-th progress update of `step` (extract, normalize or load)."""

    def __init__(self, step: Optional[str], after: int) -> None:
        super().__init__()
        self.kill_step = step
        self.after = after
        self.seen = 0
        self.current = ""

    def _start(self, step: str) -> None:
        self.current = step.lower()

    def update(self, name: str, inc: int = 1, total: Any = None, inc_total: Any = None, message: Any = None,
               label: Any = None) -> None:
        if self.kill_step and self.current.startswith(self.kill_step):
            self.seen += 1
            if self.seen >= self.after:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    from pipelines.gong_pipeline import UserError, run_sync

    parser = argparse.ArgumentParser()
    parser.add_argument("resources")
    parser.add_argument("start")
    parser.add_argument("end")
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--after", type=int, default=1)
    parser.add_argument("--destination", default="duckdb")
    args = parser.parse_args()
    try:
        result = run_sync(args.resources.split(","), start=args.start, end=args.end, destination=args.destination,
                          dataset=os.environ["GONG_SYNC_DATASET"], pipeline_name="crash",
                          pipelines_dir=os.environ["GONG_SYNC_PIPELINES_DIR"], window_days=30,
                          progress=KillingCollector(args.kill_at, args.after),
                          source_options={"company_timezone": "America/New_York"})
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"loaded {sum(result.row_counts.values())} rows, {result.requests_used} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
