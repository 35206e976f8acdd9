"""A load job the warehouse refuses: the run stops with one sentence that names the table and the reason,
what loaded before stays, the job is not run again in that run, and the next run completes the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

from pipelines.gong_pipeline import UserError
from tests.conftest import GongFixture, Warehouse
from tests.test_incremental import snapshot, sync


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_a_refused_load_job_stops_the_run_in_one_sentence_and_the_next_run_completes_it(
        gong: GongFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    once, failed = Warehouse.duckdb_in(tmp_path, "once"), Warehouse.duckdb_in(tmp_path, "failed")
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
    loads = failed.query("SELECT load_id, status FROM {ds}._dlt_loads")
    pipeline = dlt.attach("inc", pipelines_dir=str(failed.tmp_path / "dlt"))
    assert [status for _, status in loads] == [0], "the first chunk is loaded"
    assert len(pipeline.list_normalized_load_packages()) == 1, "the second waits in its package"
    # dlt merges a package table chain by table chain: the second chunk's transcripts are not in (its calls may
    # be, if their chain was merged before the failure stopped the package).
    first, pending = loads[0][0], pipeline.list_normalized_load_packages()[0]
    assert failed.query("SELECT DISTINCT _dlt_load_id FROM {ds}.transcripts") == [(first,)]
    assert set(failed.query("SELECT DISTINCT _dlt_load_id FROM {ds}.calls")) <= {(first,), (pending,)}
    monkeypatch.setattr(DuckDbCopyJob, "run", copy)
    result = sync(gong, failed, chunk_pages=2, window_days=30)
    assert result.pending_loaded == 1 and result.stop_reason is None
    assert snapshot(failed) == snapshot(once)
    assert failed.table_rows() == once.table_rows()
    assert not dlt.attach("inc", pipelines_dir=str(failed.tmp_path / "dlt")).has_pending_data
