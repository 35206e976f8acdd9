"""Microseconds the row gate (sources/gong/gate.py) adds per call: the checks alone, and with a privacy policy.

Figures, not a test: nothing is asserted.

    .venv/bin/python -m bench.gate_bench
"""

from __future__ import annotations

import json
import time

from simulator import GongSimulator, SimConfig
from sources.gong import CONTRACT_PATH, _read_contract
from sources.gong.catalog import BY_NAME
from sources.gong.gate import RowGate
from sources.gong.pii import PiiPolicy
from sources.gong.rows import records_to_rows
from sources.gong.settings import CALLS_CONTENT_SELECTOR


def main() -> int:
    sim = GongSimulator(SimConfig(seed=7, users=12, workspaces=2, calls_per_day=1000, days=1, sentences_per_call=10,
                                  page_size=100, rate_limit=None, daily_quota=None))
    auth = {"authorization": f"Bearer {sim.config.bearer_token}"}
    body: dict = {"filter": {}, "contentSelector": CALLS_CONTENT_SELECTOR}
    records: list = []
    while True:
        page = json.loads(sim.handle("POST", "/v2/calls/extensive", auth, json.dumps(body).encode()).body)
        records += page["calls"]
        cursor = page["records"].get("cursor")
        if not cursor:
            break
        body = {**body, "cursor": cursor}
    contract = _read_contract(str(CONTRACT_PATH), CONTRACT_PATH.stat().st_mtime_ns)["tables"]
    for policy in (PiiPolicy(), PiiPolicy(emails="hash", phones="drop", names="hash", salt="bench-salt")):
        rows = records_to_rows(BY_NAME["calls"].row, records, {})
        gate = RowGate(BY_NAME["calls"], policy, contract["calls"], [])
        t0 = time.perf_counter()
        good = gate.rows(rows)
        elapsed = time.perf_counter() - t0
        print(f"{policy!r}: {len(good):,} of {len(rows):,} calls kept, {elapsed * 1000:.0f} ms, "
              f"{elapsed / len(rows) * 1e6:.0f} us per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
