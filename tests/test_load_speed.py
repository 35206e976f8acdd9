"""Less fixed work per load (pipelines/load_speed.py): one DuckDB checkpoint per load with the staging
tables emptied before it, and dlt's table chains walked once per chain with the same answer."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest
from dlt.common.schema import Schema
from dlt.common.schema import utils as schema_utils
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.load import load as load_module
from dlt.load import utils as load_utils

from pipelines.load_speed import TRUNCATE_STAGING_KEY, duckdb_credentials, duckdb_load_session, speed_up_table_chains
from tests.conftest import GongFixture, Warehouse
from tests.test_incremental import snapshot, sync


def _schema() -> Schema:
    """Two merged chains (one three levels deep), an appended chain, and a nested table that saw no data."""
    schema = Schema("chains")
    seen = {"x-normalizer": {"seen-data": True}}

    def table(name: str, parent: str | None = None, disposition: str | None = None, data: bool = True) -> None:
        new = schema_utils.new_table(name, parent_table_name=parent, write_disposition=disposition,
                                     columns=[{"name": "id", "data_type": "text"}])
        if data:
            new.update(seen)  # type: ignore[typeddict-item]
        schema.update_table(new)

    table("calls", disposition="merge")
    for name in ("calls__parties", "calls__topics", "calls__trackers"):
        table(name, "calls")
    table("calls__trackers__phrases", "calls__trackers")
    table("calls__video", "calls", data=False)
    table("transcripts", disposition="merge")
    table("events", disposition="append")
    table("events__items", "events")
    return schema


def test_table_chains_walked_once_give_dlt_s_own_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    original = getattr(load_utils._extend_tables_with_table_chain, "__wrapped__",
                       load_utils._extend_tables_with_table_chain)
    monkeypatch.setattr(load_utils, "_extend_tables_with_table_chain", original)
    monkeypatch.setattr(load_module, "_extend_tables_with_table_chain", original)
    assert speed_up_table_chains()
    faster = load_utils._extend_tables_with_table_chain
    assert faster is not original and load_module._extend_tables_with_table_chain is faster
    assert speed_up_table_chains(), "installing it twice keeps one wrapper"
    assert load_utils._extend_tables_with_table_chain is faster

    schema = _schema()
    names = list(schema.data_table_names())
    filters = [lambda t: True, lambda t: "topics" not in t, lambda t: not t.startswith("calls")]
    compared = 0
    for size in (1, 2, 3, len(names)):
        for tables in itertools.combinations(names, size):
            for with_jobs in (set(tables), set(names), {"calls"}):
                for keep in filters:
                    expected = set(original(schema, tables, with_jobs, keep))
                    assert set(faster(schema, tables, with_jobs, keep)) == expected
                    compared += 1
    assert compared > 100
    same = set(names)
    assert set(faster(schema, same, same)) == set(original(schema, set(names), set(names))), "one set for both"
    every = set(faster(schema, names, set(names)))
    assert "calls__trackers__phrases" in every and "calls__video" not in every, "the schema is not trivial"
    assert set(faster(schema, ["events__items"], {"events__items"})) == {"events__items"}, "append: jobs only"

    copies: list[str] = []
    clone = schema_utils.fill_hints_from_parent_and_clone_table

    def counted(tables: Any, table: Any) -> Any:
        copies.append(table["name"])
        return clone(tables, table)

    monkeypatch.setattr(load_utils, "fill_hints_from_parent_and_clone_table", counted)
    faster(schema, names, set(names))
    assert len(copies) == 6 + 1 + 2, "each chain's tables are copied once: calls (6), transcripts (1), events (2)"


def test_a_duckdb_load_checkpoints_once_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "one.duckdb"
    pipeline = dlt.pipeline("ckpt", destination=dlt.destinations.duckdb(credentials=str(path)),
                            dataset_name="d", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([{"id": 1}], table_name="t")
    credentials = duckdb_credentials(pipeline)
    assert credentials is not None and credentials.database == str(path)
    wal = Path(str(path) + ".wal")
    assert not wal.exists()
    with duckdb_load_session(credentials):
        assert os.environ[TRUNCATE_STAGING_KEY] == "true"
        # What dlt's loader threads do: open the file, write, close. The database stays open: no checkpoint.
        for value in (2, 3):
            with duckdb.connect(str(path)) as con:
                con.execute("INSERT INTO d.t (id, _dlt_load_id, _dlt_id) VALUES (?, 'l', ?)", [value, str(value)])
            assert wal.exists(), "written to the log only, the database still open"
    assert not wal.exists(), "checkpointed once the session closed"
    assert TRUNCATE_STAGING_KEY not in os.environ
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT id FROM d.t ORDER BY id").fetchall() == [(1,), (2,), (3,)]


def test_a_failed_load_lets_the_database_go_and_keeps_its_own_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "one.duckdb"
    pipeline = dlt.pipeline("fail", destination=dlt.destinations.duckdb(credentials=str(path)),
                            dataset_name="d", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([{"id": 1}], table_name="t")
    credentials = duckdb_credentials(pipeline)
    pool = credentials.conn_pool
    with pytest.raises(RuntimeError, match="the load failed"):
        with duckdb_load_session(credentials):
            assert pool._conn_borrows == 1
            raise RuntimeError("the load failed")
    assert pool._conn_borrows == 0 and TRUNCATE_STAGING_KEY not in os.environ
    with duckdb.connect(str(path)) as con:  # not held by anything
        assert con.execute("SELECT count(*) FROM d.t").fetchone() == (1,)

    # A database that cannot be held is left to dlt; the user's own setting stays as they set it.
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise duckdb.IOException("Could not set lock on file")

    monkeypatch.setattr(pool, "borrow_conn", refused)
    monkeypatch.setenv(TRUNCATE_STAGING_KEY, "false")
    with duckdb_load_session(credentials):
        assert pool._conn_borrows == 0 and os.environ[TRUNCATE_STAGING_KEY] == "false"
    assert os.environ[TRUNCATE_STAGING_KEY] == "false"


def test_no_session_for_other_destinations_or_a_connection_the_caller_keeps(tmp_path: Path) -> None:
    other = dlt.pipeline("pg", destination=dlt.destinations.postgres(credentials="postgresql://u@h:1/db"),
                         dataset_name="d", pipelines_dir=str(tmp_path / "dlt"))
    assert duckdb_credentials(other) is None
    with duckdb.connect(str(tmp_path / "own.duckdb")) as con:
        theirs = dlt.pipeline("own", destination=dlt.destinations.duckdb(credentials=con), dataset_name="d",
                              pipelines_dir=str(tmp_path / "dlt"))
        assert duckdb_credentials(theirs) is None
    with duckdb_load_session(None):
        assert TRUNCATE_STAGING_KEY not in os.environ
    # Statements run on each new database (an ATTACH would fail the second time on a database held open).
    attaching = DuckDbCredentials(str(tmp_path / "a.duckdb"), statements=[f"ATTACH '{tmp_path / 'b.duckdb'}' AS b"])
    with_statements = dlt.pipeline("att", destination=dlt.destinations.duckdb(credentials=attaching),
                                   dataset_name="d", pipelines_dir=str(tmp_path / "dlt"))
    assert duckdb_credentials(with_statements) is None
    renamed = dlt.pipeline("ren", destination=dlt.destinations.duckdb(credentials=str(tmp_path / "r.duckdb"),
                                                                       destination_name="warehouse"),
                           dataset_name="d", pipelines_dir=str(tmp_path / "dlt"))
    assert duckdb_credentials(renamed) is not None, "DuckDB under another name"


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_a_duckdb_sync_leaves_its_staging_tables_empty_and_loads_the_same_rows(
        gong: GongFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held, plain = Warehouse.duckdb_in(tmp_path, "held"), Warehouse.duckdb_in(tmp_path, "plain")
    held_open: list[bool] = []
    session = duckdb_load_session

    @contextlib.contextmanager
    def recorded(credentials: Any) -> Iterator[None]:
        with session(credentials):
            held_open.append(credentials is not None and credentials.conn_pool._conn_borrows == 1)
            yield

    monkeypatch.setattr("pipelines.load_speed.duckdb_load_session", recorded)
    result = sync(gong, held, chunk_pages=2, window_days=30)
    loads = held.query("SELECT load_id FROM {ds}._dlt_loads WHERE status = 0")
    assert len(loads) > 2 and result.row_counts["calls"] > 0
    assert len(held_open) == len(loads) and all(held_open), "every load of the sync held the file open"
    staging = held.table_rows("_staging")
    assert "transcripts" in staging and "calls__parties" in staging
    assert set(staging.values()) == {0}, staging

    # dlt as it is: the database opened and closed by dlt, its own table chains, staging kept.
    original = getattr(load_utils._extend_tables_with_table_chain, "__wrapped__",
                       load_utils._extend_tables_with_table_chain)
    monkeypatch.setattr(load_utils, "_extend_tables_with_table_chain", original)
    monkeypatch.setattr(load_module, "_extend_tables_with_table_chain", original)
    monkeypatch.setattr("pipelines.load_speed.speed_up_table_chains", lambda: False)
    monkeypatch.setattr("pipelines.load_speed.duckdb_credentials", lambda pipeline: None)
    sync(gong, plain, chunk_pages=2, window_days=30)
    assert load_utils._extend_tables_with_table_chain is original
    assert plain.table_rows("_staging")["transcripts"] > 0
    assert snapshot(held) == snapshot(plain)
    assert held.table_rows() == plain.table_rows()

