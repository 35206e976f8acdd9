"""Loads that run behind the extraction (pipelines.gong_pipeline._BackgroundLoad): a chunk is loaded in a
thread while the next one is extracted, the loads stay in order, the warehouse is the one a step-by-step
sync makes, and a load that fails there stops the run as dlt's own load would, losing nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob
from dlt.pipeline.pipeline import Pipeline

from pipelines import gong_pipeline
from pipelines.gong_pipeline import UserError
from tests.conftest import GongFixture, Warehouse
from tests.test_incremental import snapshot, sync

SIM = dict(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)


def tables(wh: Warehouse) -> dict[str, int]:
    names = [t for (t,) in wh.query("SELECT table_name FROM information_schema.tables WHERE table_schema = '{ds}' "
                                    "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'")]
    return {name: wh.count(name) for name in names}


def loads(wh: Warehouse) -> list[tuple[str, int]]:
    """(load id, status) of every load, in the order the warehouse recorded them."""
    return wh.query("SELECT load_id, status FROM {ds}._dlt_loads ORDER BY inserted_at")


@pytest.mark.sim(**SIM)
def test_loads_run_behind_the_extraction_and_make_the_same_warehouse(gong: GongFixture, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    began: list[str] = []  # what the main thread did first while a load waited: "extract" or "wait"
    moved_on = threading.Event()
    extract, load = Pipeline.extract, gong_pipeline._BackgroundLoad._load
    wait = gong_pipeline._SyncRunner._wait_for_load

    def extract_and_signal(self: Any, *args: Any, **kwargs: Any) -> Any:
        began.append("extract")
        moved_on.set()
        return extract(self, *args, **kwargs)

    def wait_and_signal(self: Any) -> None:
        if self.loading is not None:
            began.append("wait")
            moved_on.set()
        wait(self)

    def run_once_the_main_thread_moved_on(self: Any) -> None:
        workers.append(self.step.config.workers)
        # A load in the main thread would wait here for a step that cannot begin before it ends.
        del began[:]
        moved_on.clear()
        overlapped.append(began[0] if moved_on.wait(timeout=30) else "nothing")
        load(self)

    overlapped: list[str] = []
    workers: list[int] = []
    monkeypatch.setenv("INC__LOAD__WORKERS", "3")  # a key of this pipeline ("inc"), as dlt's own load reads it
    whs = {}
    for name, behind in (("step_by_step", False), ("behind", True)):
        (tmp_path / name).mkdir()
        whs[name] = Warehouse("duckdb", tmp_path / name)
        if behind:
            monkeypatch.setattr(Pipeline, "extract", extract_and_signal)
            monkeypatch.setattr(gong_pipeline._SyncRunner, "_wait_for_load", wait_and_signal)
            monkeypatch.setattr(gong_pipeline._BackgroundLoad, "_load", run_once_the_main_thread_moved_on)
        result = sync(gong, whs[name], chunk_pages=2, window_days=30, load_behind=behind)
        assert result.stop_reason is None
    step, behind = whs["step_by_step"], whs["behind"]
    # 89 calls in pages of 20, two pages a chunk: three loads, the first two under way during an extract.
    assert step.count("calls") == behind.count("calls") == 89
    assert overlapped == ["extract", "extract", "wait"], "each load but the last ran while the next chunk was extracted"
    assert workers == [3, 3, 3]
    assert snapshot(behind) == snapshot(step)
    assert tables(behind) == tables(step) and len(tables(step)) >= 25
    recorded = loads(behind)
    assert len(recorded) == len(loads(step)) == 3
    assert [status for _, status in recorded] == [0, 0, 0]
    assert [load_id for load_id, _ in recorded] == sorted(load_id for load_id, _ in recorded), "in order"


@pytest.mark.sim(**SIM)
def test_a_load_failing_behind_the_extraction_stops_the_run_and_the_next_run_completes_it(
        gong: GongFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "once").mkdir()
    (tmp_path / "failed").mkdir()
    once, failed = Warehouse("duckdb", tmp_path / "once"), Warehouse("duckdb", tmp_path / "failed")
    sync(gong, once, chunk_pages=2, window_days=30)

    copy = DuckDbCopyJob.run
    transcript_jobs: list[str] = []
    attempts: list[str] = []

    def fail_the_second_chunks_transcripts(self: Any) -> None:
        if self.load_table_name == "transcripts":
            if self.job_id() not in transcript_jobs:
                transcript_jobs.append(self.job_id())
            if transcript_jobs.index(self.job_id()) == 1:
                attempts.append(self.job_id())
                raise DestinationTerminalException("the disk is full")
        copy(self)

    monkeypatch.setattr(DuckDbCopyJob, "run", fail_the_second_chunks_transcripts)
    with pytest.raises(UserError) as error:
        sync(gong, failed, chunk_pages=2, window_days=30)
    assert str(error.value) == (
        "The duckdb destination refused the load of transcripts (dlt.common.destination.exceptions."
        "DestinationTerminalException: the disk is full): what was loaded before is kept, the package is kept and "
        "the next run loads it again; fix the cause and run again.")
    assert len(attempts) == 1, "a job dlt found failed for good is not run again in the same run"
    # The first chunk is loaded; the second waits in its package, the third (extracted meanwhile) in its own.
    assert [status for _, status in loads(failed)] == [0]
    pipeline = dlt.attach("inc", pipelines_dir=str(failed.tmp_path / "dlt"))
    assert len(pipeline.list_normalized_load_packages()) == 1
    assert len(pipeline.list_extracted_load_packages()) == 1
    # dlt merges a package table chain by table chain: the second chunk's transcripts are not in (its calls may
    # be, if their chain was merged before the failure stopped the package).
    first, pending = loads(failed)[0][0], pipeline.list_normalized_load_packages()[0]
    assert failed.query("SELECT DISTINCT _dlt_load_id FROM {ds}.transcripts") == [(first,)]
    assert set(failed.query("SELECT DISTINCT _dlt_load_id FROM {ds}.calls")) <= {(first,), (pending,)}
    monkeypatch.setattr(DuckDbCopyJob, "run", copy)
    sync(gong, failed, chunk_pages=2, window_days=30)
    assert snapshot(failed) == snapshot(once)
    assert tables(failed) == tables(once)
    assert not dlt.attach("inc", pipelines_dir=str(failed.tmp_path / "dlt")).has_pending_data


@pytest.mark.sim(**SIM)
def test_a_load_that_fails_behind_the_extraction_for_another_reason_is_left_for_the_next_run(
        gong: GongFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "once").mkdir()
    (tmp_path / "retried").mkdir()
    once, retried = Warehouse("duckdb", tmp_path / "once"), Warehouse("duckdb", tmp_path / "retried")
    sync(gong, once, chunk_pages=2, window_days=30)
    load = gong_pipeline._BackgroundLoad._load
    failures: list[int] = []

    def lose_the_connection_once(self: Any) -> None:
        if not failures:
            failures.append(1)
            raise ConnectionError("the warehouse went away")
        load(self)

    monkeypatch.setattr(gong_pipeline._BackgroundLoad, "_load", lose_the_connection_once)
    with pytest.raises(UserError) as error:
        sync(gong, retried, chunk_pages=2, window_days=30)
    assert str(error.value) == "The load step failed: ConnectionError: the warehouse went away"
    pipeline = dlt.attach("inc", pipelines_dir=str(retried.tmp_path / "dlt"))
    # The first chunk waits in its package, the second (extracted meanwhile) in its own; nothing was loaded.
    assert len(pipeline.list_normalized_load_packages()) == len(pipeline.list_extracted_load_packages()) == 1
    assert retried.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{ds}'") == [(0,)]
    result = sync(gong, retried, chunk_pages=2, window_days=30)
    assert failures == [1] and result.stop_reason is None and result.pending_loaded == 2
    assert snapshot(retried) == snapshot(once)
    assert tables(retried) == tables(once)
    assert not dlt.attach("inc", pipelines_dir=str(retried.tmp_path / "dlt")).has_pending_data
