"""Crash safety: the real pipeline, in a subprocess, killed with SIGKILL during extract, normalize and load.

After a kill and a rerun, every table equals an uninterrupted baseline, no key appears twice, nothing
is left pending, and the killed run did not advance the state stored in the warehouse. The simulator
runs in this process (no network). GONG_SYNC_CRASH_TRIALS sets the trials per crash point (default 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import dlt
import pytest

from simulator import GongSimulator
from tests.conftest import require_postgres, sim_config

RESOURCES = "users,calls,transcripts,answered_scorecards"
WINDOW_A = ("2026-10-26T00:00:00+00:00", "2026-10-29T00:00:00+00:00")
WINDOW_B = ("2026-10-29T00:00:00+00:00", "2026-11-01T12:00:00+00:00")
TRIALS = int(os.environ.get("GONG_SYNC_CRASH_TRIALS", "1"))
KEYS = {"calls": ["id"], "transcripts": ["call_id", "sentence_index"], "users": ["id"],
        "answered_scorecards": ["answered_scorecard_id"]}


class Target:
    """One warehouse (DuckDB file or Postgres schema) and one pipelines dir for a series of runs."""

    def __init__(self, kind: str, root: Path, sim: GongSimulator) -> None:
        self.kind = kind
        self.dataset = "crash_" + uuid.uuid4().hex[:8]
        self.env = {
            **os.environ,
            "SOURCES__GONG__BASE_URL": sim.base_url,
            "SOURCES__GONG__ACCESS_KEY": sim.config.access_key,
            "SOURCES__GONG__ACCESS_KEY_SECRET": sim.config.access_key_secret,
            "SOURCES__GONG__RATE_LIMIT": "0",
            "SOURCES__GONG__LOOKBACK_DAYS": "1",
            "GONG_SYNC_PIPELINES_DIR": str(root / "dlt"),
            "GONG_SYNC_DATASET": self.dataset,
        }
        if kind == "duckdb":
            self.env["DESTINATION__DUCKDB__CREDENTIALS"] = str(root / "w.duckdb")
            self.path = root / "w.duckdb"
        else:
            self.url = require_postgres()
            self.env["DESTINATION__POSTGRES__CREDENTIALS"] = self.url
        self.root = root

    def run(self, window: tuple[str, str], kill_at: str | None = None, after: int = 1) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "tests.helpers.crash_runner", RESOURCES, *window, "--destination", self.kind]
        if kill_at:
            cmd += ["--kill-at", kill_at, "--after", str(after)]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180,
                              cwd=Path(__file__).resolve().parents[1])

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        sql = sql.replace("{ds}", self.dataset)
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(str(self.path), read_only=True) as con:
                return con.execute(sql).fetchall()
        import psycopg2

        with psycopg2.connect(self.url) as con, con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    def tables(self) -> list[str]:
        return sorted(r[0] for r in self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{ds}' "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"))

    def content(self, table: str) -> Counter:
        """The table's rows without dlt's bookkeeping columns, as a multiset."""
        columns = [r[0] for r in self.query(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{{ds}}' "
            f"AND table_name = '{table}' ORDER BY column_name") if not r[0].startswith("_dlt")]
        rows = self.query(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} FROM {{ds}}.{table}")
        return Counter(tuple(str(v) for v in row) for row in rows)

    def committed_state_version(self) -> Any:
        return self.query("SELECT max(s.version) FROM {ds}._dlt_pipeline_state s "
                          "JOIN {ds}._dlt_loads l ON l.load_id = s._dlt_load_id WHERE l.status = 0")[0][0]

    def loads(self) -> list[tuple[Any, ...]]:
        return self.query("SELECT load_id, status FROM {ds}._dlt_loads ORDER BY load_id")

    def pending(self) -> int:
        pipeline = dlt.attach("crash", pipelines_dir=str(self.root / "dlt"))
        return len(pipeline.list_extracted_load_packages()) + len(pipeline.list_normalized_load_packages())

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg2

            with psycopg2.connect(self.url) as con, con.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {self.dataset} CASCADE; "
                            f"DROP SCHEMA IF EXISTS {self.dataset}_staging CASCADE")


@pytest.fixture(scope="module")
def sim() -> Any:
    with GongSimulator(sim_config(days=8, calls_per_day=12, page_size=20, sentences_per_call=15)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def baseline(sim: GongSimulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter]:
    target = Target("duckdb", tmp_path_factory.mktemp("baseline"), sim)
    for window in (WINDOW_A, WINDOW_B):
        proc = target.run(window)
        assert proc.returncode == 0, proc.stderr
    return {t: target.content(t) for t in target.tables()}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
@pytest.mark.parametrize("kill_at", ["extract", "normalize", "load"])
def test_kill_9_then_rerun_equals_an_uninterrupted_run(kind: str, kill_at: str, sim: GongSimulator,
                                                       baseline: dict[str, Counter], tmp_path: Path) -> None:
    compared = 0
    for trial in range(TRIALS):
        target = Target(kind, tmp_path / f"trial{trial}", sim)
        try:
            assert target.run(WINDOW_A).returncode == 0
            state_before, loads_before = target.committed_state_version(), target.loads()

            killed = target.run(WINDOW_B, kill_at=kill_at, after=1 + trial * 2)
            assert killed.returncode == -9, f"the run was not killed during {kill_at}: {killed.stdout}{killed.stderr}"
            assert target.committed_state_version() == state_before, "the killed run advanced the stored state"
            assert [load for load in target.loads() if load[1] == 0] == [b for b in loads_before if b[1] == 0]

            for _ in range(2):  # the rerun, then a run that must find nothing pending
                proc = target.run(WINDOW_B)
                assert proc.returncode == 0, proc.stderr
            assert target.pending() == 0
            assert target.committed_state_version() > state_before

            tables = target.tables()
            assert set(tables) == set(baseline)
            for table in tables:
                content = target.content(table)
                assert content == baseline[table], f"{table} differs from the uninterrupted run"
                compared += sum(content.values())
            for table, key in KEYS.items():
                dupes = target.query(f"SELECT count(*) FROM (SELECT {', '.join(key)} FROM {{ds}}.{table} "
                                     f"GROUP BY {', '.join(key)} HAVING count(*) > 1) d")[0][0]
                assert dupes == 0, f"duplicate keys in {table}"
            completed = {r[0] for r in target.loads() if r[1] == 0}
            for table in KEYS:
                ids = {r[0] for r in target.query(f"SELECT DISTINCT _dlt_load_id FROM {{ds}}.{table}")}
                assert ids <= completed, f"{table} holds rows of a load that never completed"
        finally:
            target.drop()
    print(f"\n{kind}/{kill_at}: {TRIALS} trials, {compared} rows compared")
