"""A destination that goes away in the middle of a load (issue 19): the Postgres connections of a `gong-sync`
run are killed (`pg_terminate_backend`) while it loads a window. The run retries, or ends in one sentence
(exit 1, no traceback); the state stored in the warehouse never passes what the warehouse committed, and
the next run, resuming from the state with no lookback, ends with exactly the rows of an undisturbed run.

The kill lands in the same place every time: once the first window is committed, a connection of the
test's own locks one table, so that the next load's statement on it waits on that lock, in the middle of
the load; the test kills that backend (only a backend waiting on this lock, with this run's
application_name, never another test's), once or at every retry. `gong-sync` runs in a subprocess as a
user runs it, against the simulator served by this process, into a fresh Postgres schema of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import dlt
import psycopg2
import pytest
from dlt.common.versioned_state import decompress_state

from simulator import GongSimulator
from tests.conftest import SIM_NOW, Warehouse, sim_config

DAYS = 3
DATA = dict(days=DAYS, calls_per_day=30, users=3, sentences_per_call=6, page_size=15)
START, END = (SIM_NOW - timedelta(days=DAYS)).isoformat(), SIM_NOW.isoformat()
PIPELINE = "loss"
REPO = Path(__file__).resolve().parents[1]
KEYS = {"calls": "id", "transcripts": "call_id, sentence_index", "users": "id"}
LOST = "lost the connection in the middle of the load"

CASES: list[tuple[str, str, int, Optional[str]]] = [
    # name, the table locked ({ds}: the dataset), the statement killed, kills (0: every attempt until the run
    # ends), and the sentence the run ends in (None: dlt retried, the run completes). A load job (the merge) is
    # retried by dlt, up to 5 times; the loader's own connection (recording the load) is not.
    ("a merge into a final table, once", '"{ds}"."transcripts"', 'DELETE FROM "{ds}"."transcripts"', 1, None),
    ("the insert that records the load, once", '"{ds}"."_dlt_loads"', 'INSERT INTO "{ds}"."_dlt_loads"', 1, LOST),
    ("every retry of a merge into a final table", '"{ds}"."transcripts"', 'DELETE FROM "{ds}"."transcripts"', 0,
     LOST),
]


class Killer(threading.Thread):
    """Kills this run's connection in the middle of a load, from two connections of its own.

    Once a first load is committed, `hold` locks `table`; the next load's statement on it waits on the lock,
    and `watch` terminates the backend that waits: only one that this lock blocks and that carries the run's
    application_name. `times` kills (0: every one until `stop`), then the lock is released.
    """

    def __init__(self, url: str, dataset: str, application: str, table: str, times: int) -> None:
        super().__init__(daemon=True)
        self.url, self.dataset, self.application, self.times = url, dataset, application, times
        self.table = table.replace("{ds}", dataset)
        self.killed: list[str] = []
        self.error: Optional[BaseException] = None
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the killer did not stop"
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            self._kill()
        except BaseException as exc:  # raised by stop(), in the test
            self.error = exc

    def _kill(self) -> None:
        watch, hold = psycopg2.connect(self.url), psycopg2.connect(self.url)
        watch.autocommit = True  # each poll sees pg_stat_activity as it is now
        try:
            with watch.cursor() as cur, hold.cursor() as held:
                while not self._loaded(cur):
                    if self.stopped.wait(0.01):
                        return
                held.execute("SELECT pg_backend_pid()")
                holder = held.fetchone()[0]
                held.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
                while not self.stopped.wait(0.01) and (self.times == 0 or len(self.killed) < self.times):
                    cur.execute("SELECT pid, query FROM pg_stat_activity WHERE application_name = %s "
                                "AND %s = ANY(pg_blocking_pids(pid))", (self.application, holder))
                    for pid, query in cur.fetchall():
                        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        if cur.fetchone()[0]:
                            self.killed.append(query)
        finally:
            hold.rollback()  # releases the lock
            hold.close()
            watch.close()

    def _loaded(self, cur: Any) -> bool:
        """Whether the warehouse committed a first load."""
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{self.dataset}"."_dlt_loads"',))
        if not cur.fetchone()[0]:
            return False
        cur.execute(f'SELECT count(*) FROM "{self.dataset}"."_dlt_loads" WHERE status = 0')
        return cur.fetchone()[0] > 0


class Run:
    """`gong-sync` of users, calls and transcripts into one fresh Postgres schema, in a subprocess, with a
    pipelines dir of its own; its connections carry an application_name of their own."""

    def __init__(self, sim: GongSimulator, root: Path) -> None:
        self.wh = Warehouse("postgres", root)
        self.application = f"gong_sync_test_{uuid.uuid4().hex[:12]}"
        self.pipelines_dir = root / "dlt"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SOURCES__", "DESTINATION__", "GONG_SYNC_"))}
        self.env.update(
            SOURCES__GONG__BASE_URL=sim.base_url, SOURCES__GONG__ACCESS_KEY=sim.config.access_key,
            SOURCES__GONG__ACCESS_KEY_SECRET=sim.config.access_key_secret, SOURCES__GONG__RATE_LIMIT="0",
            # A resumed run re-reads nothing before the state: a state past the loaded rows would lose them.
            SOURCES__GONG__LOOKBACK_DAYS="0", SOURCES__GONG__START_DATE=START,
            DESTINATION__POSTGRES__CREDENTIALS=f"{self.wh.url}?application_name={self.application}")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        # One window a day, each window one chunk: three loads, each committing a window with its state.
        return subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "--resources", "users,calls,transcripts", "--destination",
             "postgres", "--dataset", self.wh.dataset, "--pipeline-name", PIPELINE, "--pipelines-dir",
             str(self.pipelines_dir), "--end", END, "--window-days", "1", "--window-requests", "0",
             "--chunk-pages", "2", *args],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120)

    def killer(self, table: str, times: int) -> Killer:
        return Killer(self.wh.url, self.wh.dataset, self.application, table, times)

    def calls(self, committed: bool = False) -> dict[str, tuple[datetime, int]]:
        """Each call in the warehouse: when it started and its sentences (`committed`: only the rows of
        completed loads)."""
        loads = "IN (SELECT load_id FROM {ds}._dlt_loads WHERE status = 0)"
        rows = self.wh.query(
            "SELECT c.id, c.started, count(t.sentence_index) FROM {ds}.calls c LEFT JOIN {ds}.transcripts t "
            f"ON t.call_id = c.id {f'AND t._dlt_load_id {loads}' if committed else ''} "
            f"{f'WHERE c._dlt_load_id {loads}' if committed else ''} GROUP BY c.id, c.started")
        return {call_id: (started, sentences) for call_id, started, sentences in rows}

    def committed_synced_until(self) -> Optional[datetime]:
        """The calls state stored with the warehouse's last completed load."""
        rows = self.wh.query("SELECT s.state FROM {ds}._dlt_pipeline_state s JOIN {ds}._dlt_loads l "
                             f"ON l.load_id = s._dlt_load_id WHERE l.status = 0 AND s.pipeline_name = '{PIPELINE}' "
                             "ORDER BY s.version DESC LIMIT 1")
        return synced_until(decompress_state(rows[0][0])) if rows else None

    def pipeline(self) -> Any:
        return dlt.attach(PIPELINE, pipelines_dir=str(self.pipelines_dir))

    def duplicates(self) -> dict[str, int]:
        return {table: self.wh.query(f"SELECT count(*) FROM (SELECT {key} FROM {{ds}}.{table} GROUP BY {key} "
                                     "HAVING count(*) > 1) d")[0][0] for table, key in KEYS.items()}


def synced_until(state: dict[str, Any]) -> Optional[datetime]:
    calls = state.get("sources", {}).get("gong", {}).get("resources", {}).get("calls", {})
    return datetime.fromisoformat(calls["synced_until"]) if calls.get("synced_until") else None


def silent(proc: subprocess.CompletedProcess[str]) -> None:
    """A run that succeeded and said nothing on stderr, nor any traceback."""
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout


@pytest.fixture(scope="module")
def sim() -> Iterator[GongSimulator]:
    with GongSimulator(sim_config(**DATA)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def undisturbed(sim: GongSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, dict]]:
    """The rows per table and the calls of an undisturbed run, into a Postgres schema of its own."""
    run = Run(sim, tmp_path_factory.mktemp("undisturbed"))
    try:
        silent(run("--start", START))
        yield run.wh.table_rows(), run.calls()
    finally:
        run.wh.drop()


@pytest.mark.postgres
@pytest.mark.parametrize("name, table, statement, times, sentence", CASES, ids=[c[0] for c in CASES])
def test_a_connection_killed_mid_load_is_retried_or_ends_in_one_sentence_and_the_next_run_completes(
        name: str, table: str, statement: str, times: int, sentence: Optional[str], sim: GongSimulator,
        undisturbed: tuple[dict[str, int], dict[str, tuple[datetime, int]]], tmp_path: Path) -> None:
    rows, calls = undisturbed
    run = Run(sim, tmp_path)
    try:
        killer = run.killer(table, times)
        killer.start()
        try:
            killed = run("--start", START)
        finally:
            killer.stop()
        assert killer.killed, f"no load statement was killed ({name}): {killed.stdout}{killed.stderr}"
        assert all(q.startswith(statement.replace("{ds}", run.wh.dataset)) for q in killer.killed), killer.killed
        assert len(killer.killed) == times or (times == 0 and len(killer.killed) > 1), killer.killed
        assert "Traceback" not in killed.stdout + killed.stderr, killed.stdout + killed.stderr
        if sentence is None:
            silent(killed)
            assert "failed to load" in killed.stdout and "retrying" in killed.stdout, killed.stdout
        else:
            lines = killed.stderr.splitlines()
            assert killed.returncode == 1 and len(lines) == 1 and lines[0].startswith("gong-sync: "), killed.stderr
            assert sentence in lines[0] and "run again" in lines[0], lines[0]

        # The state stored in the warehouse claims only calls whose rows it committed, and the local state
        # passes it only by what waits in a package for the next run.
        stored = run.committed_synced_until()
        assert stored is not None, "the first window was committed before the kill"
        committed = {c: (started, n) for c, (started, n) in run.calls(committed=True).items() if started < stored}
        assert committed == {c: (started, n) for c, (started, n) in calls.items() if started < stored}, \
            f"the stored state ({stored}) passed what the warehouse committed"
        pipeline = run.pipeline()
        local = synced_until(pipeline.state)
        assert local == stored or (local is not None and local > stored and pipeline.has_pending_data)

        resumed = run()  # from the state: no --start, no lookback
        silent(resumed)
        if sentence is not None:
            assert "load package(s) left by an interrupted run" in resumed.stdout, resumed.stdout
        assert run.wh.table_rows() == rows, f"after {name}: the rows of an undisturbed run"
        assert run.calls() == calls, f"after {name}: the calls and sentences of an undisturbed run"
        assert run.duplicates() == {table: 0 for table in KEYS}
        assert run.committed_synced_until() == SIM_NOW
        assert not run.pipeline().has_pending_data
    finally:
        run.wh.drop()
