"""The lake: dlt's filesystem destination, writing Delta tables into a local folder (a stand-in for S3, GCS or
Azure), against the in-process simulator.

A lake must hold what a warehouse holds: the same rows as a DuckDB sync of the same Gong, no key twice after
a lookback re-read it (merged, not appended), and a re-synced call exactly its new child rows and sentences
(pipelines/destinations.py deletes what dlt's Delta upsert leaves behind). Read back with the `deltalake`
package (DuckDB's delta extension would have to be downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.cli import main
from pipelines.gong_pipeline import SyncResult, run_sync
from simulator import GongSimulator
from sources.gong.catalog import BY_NAME
from tests.conftest import GongFixture, Warehouse, sim_config
from tests.test_front_door import newcomer_env, run_gong_sync

START = "2026-10-26T00:00:00+00:00"
END = "2026-11-01T12:00:00+00:00"
EXTENSIVE = "/v2/calls/extensive"
DATASET = "gong_lake"


class Lake:
    """A filesystem destination in a folder of its own, and its Delta tables read back."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.folder = tmp_path / "lake"
        self.destination = dlt.destinations.filesystem(bucket_url=self.folder.as_uri())

    def path(self, table: str) -> Path:
        return self.folder / DATASET / table

    def table(self, name: str) -> pa.Table:
        return DeltaTable(str(self.path(name))).to_pyarrow_table()

    def tables(self) -> dict[str, pa.Table]:
        """Every data table of the dataset (dlt's own tables are plain files, not Delta tables)."""
        return {p.name: self.table(p.name) for p in sorted((self.folder / DATASET).iterdir())
                if (p / "_delta_log").is_dir() and not p.name.startswith("_dlt")}

    def rows_of_call(self, table: str, call_id: str) -> pa.Table:
        rows = self.table(table)
        return rows.filter(pc.equal(rows["call_id"], call_id))


def sync(gong: GongFixture, destination: Any, tmp_path: Path, resources: tuple[str, ...] = ("users", "calls",
         "transcripts"), start: str | None = START, dataset: str = DATASET, **options: Any) -> SyncResult:
    options.setdefault("lookback_days", 2)
    return run_sync(list(resources), start=start, end=END, destination=destination, dataset=dataset,
                    pipeline_name="test_lake", pipelines_dir=str(tmp_path / "dlt"),
                    source_options={"client": gong.client(), **options}, window_days=30)


def duplicates(name: str, rows: pa.Table) -> int:
    """Rows of `rows` beyond the first of each key: the catalog's primary key of a root table, a nested table's
    `_dlt_id`."""
    endpoint = BY_NAME.get(name)
    keys = list(endpoint.primary_key) if endpoint is not None else ["_dlt_id"]
    return rows.num_rows - rows.group_by(keys).aggregate([]).num_rows


def test_the_lake_holds_what_duckdb_holds_and_a_lookback_duplicates_nothing(gong: GongFixture, tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    sync(gong, lake.destination, tmp_path)
    duck = Warehouse.duckdb_in(tmp_path, "duck")
    sync(gong, duck.destination, duck.tmp_path, dataset=duck.dataset)
    in_lake = {name: rows.num_rows for name, rows in lake.tables().items() if rows.num_rows}
    in_duckdb = {name: count for name, count in duck.table_rows().items() if count}
    assert in_lake == in_duckdb
    assert in_lake["calls"] > 10 and in_lake["transcripts"] > 100 and in_lake["calls__parties"] > in_lake["calls"]

    pages = gong.session.count(EXTENSIVE)
    again = sync(gong, lake.destination, tmp_path, start=None)  # resumes: re-reads the 2-day lookback
    assert gong.session.count(EXTENSIVE) > pages and again.row_counts["calls"] > 0, "the lookback was re-read"
    assert again.row_counts["calls"] < in_lake["calls"], "only the lookback"
    tables = lake.tables()
    assert {name: rows.num_rows for name, rows in tables.items() if rows.num_rows} == in_duckdb, \
        "merged, not appended"
    assert {name: duplicates(name, rows) for name, rows in tables.items() if duplicates(name, rows)} == {}


def test_a_resynced_call_has_exactly_its_new_child_rows_in_the_lake(gong: GongFixture, tmp_path: Path) -> None:
    # As tests/test_pipeline.py::test_resynced_call_has_exactly_its_new_child_rows on DuckDB. dlt's Delta
    # upsert keeps the nested rows a call no longer has (it merges each nested table alone, on its row id):
    # pipelines/destinations.py deletes them after the load.
    lake = Lake(tmp_path)
    sync(gong, lake.destination, tmp_path, resources=("calls",))
    parties = lake.table("calls__parties").group_by("call_id").aggregate([("_dlt_id", "count")])
    trackers = set(lake.table("calls__trackers")["call_id"].to_pylist())
    counts = zip(parties["call_id"].to_pylist(), parties["_dlt_id_count"].to_pylist(), strict=True)
    call_id = next(c for c, n in sorted(counts) if n > 1 and c in trackers)
    new_party = {"id": "90000000000000000001", "name": "New Person", "emailAddress": "new@example.com",
                 "affiliation": "External", "speakerId": "90000000000000000002", "methods": ["Attendee"]}
    gong.edit_call(call_id, parties=[new_party], trackers=[])
    sync(gong, lake.destination, tmp_path, resources=("calls",))
    assert lake.rows_of_call("calls__parties", call_id).select(["party_id", "name"]).to_pylist() == [
        {"party_id": "90000000000000000001", "name": "New Person"}]
    assert lake.rows_of_call("calls__parties__methods", call_id).num_rows == 1
    assert lake.rows_of_call("calls__trackers", call_id).num_rows == 0
    assert lake.rows_of_call("calls__trackers__occurrences", call_id).num_rows == 0
    other = lake.table("calls__trackers")
    assert pc.sum(pc.not_equal(other["call_id"], call_id)).as_py() > 0, "other calls keep their trackers"
    assert duplicates("calls", lake.table("calls")) == 0


def test_a_sentence_the_reread_transcript_no_longer_has_leaves_the_lake(gong: GongFixture, tmp_path: Path) -> None:
    # Transcripts merge on the call (delete-insert on call_id elsewhere); on Delta they are upserted on
    # (call_id, sentence_index), and the sentences of an earlier load of the call are deleted after the load.
    lake = Lake(tmp_path)
    sync(gong, lake.destination, tmp_path, resources=("calls", "transcripts"))
    sentences = lake.table("transcripts")
    call_id = sentences["call_id"][0].as_py()
    before = lake.rows_of_call("transcripts", call_id).num_rows
    stale = lake.rows_of_call("transcripts", call_id).slice(0, 1)
    stale = stale.set_column(stale.schema.get_field_index("sentence_index"), stale.schema.field("sentence_index"),
                             pa.array([9999], stale.schema.field("sentence_index").type))
    stale = stale.set_column(stale.schema.get_field_index("_dlt_load_id"), stale.schema.field("_dlt_load_id"),
                             pa.array(["1000000000.000001"], stale.schema.field("_dlt_load_id").type))
    write_deltalake(str(lake.path("transcripts")), stale, mode="append")  # a sentence Gong since dropped
    assert lake.rows_of_call("transcripts", call_id).num_rows == before + 1

    sync(gong, lake.destination, tmp_path, resources=("calls", "transcripts"))
    kept = lake.rows_of_call("transcripts", call_id)
    assert kept.num_rows == before and 9999 not in kept["sentence_index"].to_pylist()
    assert lake.table("transcripts").num_rows == sentences.num_rows
    assert duplicates("transcripts", lake.table("transcripts")) == 0


@pytest.fixture
def no_gong(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A run whose Gong cannot be reached (a refusal must come before any request), in a folder of its own."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "GONG_SYNC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", "k")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "s")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_reconcile_into_a_lake_is_refused_in_one_sentence(no_gong: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", (tmp_path / "lake").as_uri())
    code = main(["-q", "--destination", "filesystem", "--reconcile", "--pipelines-dir", str(tmp_path / "dlt")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.strip() == ("gong-sync: --reconcile deletes vanished calls with SQL, which the filesystem destination "
                           "does not run: reconcile in a SQL warehouse (e.g. --destination duckdb), or drop "
                           "--reconcile.")
    assert not (tmp_path / "lake").exists() and list(no_gong.iterdir()) == []


def test_a_lake_without_a_bucket_url_names_the_setting(no_gong: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "--destination", "filesystem", "--pipelines-dir", str(tmp_path / "dlt")])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "gong-sync: The filesystem destination has no folder or bucket to write to: set "
        "DESTINATION__FILESYSTEM__BUCKET_URL, e.g. file:///srv/gong_lake or s3://bucket/gong (see README).")


def test_gong_sync_destination_filesystem_writes_delta_tables_with_nothing_on_stderr(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    config = sim_config(days=4, calls_per_day=3, users=4, sentences_per_call=5, now=None)
    with GongSimulator(config) as sim:
        env = newcomer_env(tmp_path / "home", sim.base_url, DESTINATION__FILESYSTEM__BUCKET_URL=lake.as_uri())
        for _ in range(2):  # the second run re-reads its lookback, and merges it
            proc = run_gong_sync(tmp_path / "work", env, "--destination", "filesystem")
            assert (proc.returncode, proc.stderr) == (0, "")
            assert "rows loaded per table" in proc.stdout
        visible = len(sim.call_ids(include_private=False))
    calls = DeltaTable(str(lake / "gong" / "calls")).to_pyarrow_table()
    assert calls.num_rows == len(set(calls["id"].to_pylist())) == visible > 0
    assert DeltaTable(str(lake / "gong" / "transcripts")).to_pyarrow_table().num_rows > 0
    assert DeltaTable(str(lake / "gong" / "users")).to_pyarrow_table().num_rows == 4
    assert list((tmp_path / "work").iterdir()) == [], "the lake is where the bucket URL says"
