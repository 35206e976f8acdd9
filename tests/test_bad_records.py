"""Bad records Gong may send: each is loaded or set aside in `_gong_rejected`, and nothing good is dropped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.cli import print_summary
from pipelines.gong_pipeline import SyncResult
from tests.conftest import GongFixture, Warehouse
from tests.test_pipeline import sync

pytestmark = pytest.mark.sim(days=4, calls_per_day=6, private_ratio=0.0)


def call_ids(wh: Warehouse) -> set[str]:
    return {r[0] for r in wh.query("SELECT id FROM {ds}.calls")}


def rejected(wh: Warehouse) -> list[tuple[Any, ...]]:
    return sorted(wh.query("SELECT endpoint, record_id, reason, record FROM {ds}._gong_rejected"), key=str)


def all_call_ids(gong: GongFixture) -> list[str]:
    assert gong.sim is not None
    return [cid for cid in gong.sim.call_ids() if not gong.sim.data.by_id[cid].is_private]


def baseline(gong: GongFixture, tmp_path: Any) -> tuple[set[str], int]:
    """The calls and sentences of an undisturbed sync of the same Gong."""
    wh = Warehouse.duckdb_in(tmp_path, "undisturbed")
    sync(gong, wh)
    return call_ids(wh), wh.count("transcripts")


def test_a_call_without_its_id_is_set_aside_and_the_others_load(gong: GongFixture, duck: Warehouse,
                                                                  tmp_path: Any) -> None:
    ids, sentences = baseline(gong, tmp_path)
    bad = sorted(ids)[3]
    gong.edit_call(bad, meta_data={"id": None})
    result = sync(gong, duck)
    assert call_ids(duck) == ids - {bad}
    [(endpoint, record_id, reason, record)] = rejected(duck)
    assert endpoint == "calls" and record_id is None and reason.startswith("no id")
    assert json.loads(record)["title"], "the record is kept as it came, for a look"
    assert result.row_counts["_gong_rejected"] == 1
    # Its transcript is not asked for (no id to ask with): the other calls' sentences all load.
    assert duck.count("transcripts", f"WHERE call_id = '{bad}'") == 0
    assert duck.count("transcripts") == sentences - len(_sentences_of(gong, bad))


def _sentences_of(gong: GongFixture, call_id: str) -> list[Any]:
    assert gong.sim is not None
    meta = gong.sim.data.by_id[call_id]
    return [s for m in gong.sim.data.transcript(meta) for s in m["sentences"]]


def test_a_value_of_the_wrong_type_sets_its_record_aside_with_the_column_named(gong: GongFixture, duck: Warehouse,
                                                                                 tmp_path: Any) -> None:
    ids, _ = baseline(gong, tmp_path)
    long_call, bad_start = sorted(ids)[0], sorted(ids)[5]
    gong.edit_call(long_call, meta_data={"duration": "long"})
    gong.edit_call(bad_start, meta_data={"started": "yesterday"})
    sync(gong, duck)
    assert call_ids(duck) == ids - {long_call, bad_start}
    reasons = {r[1]: r[2] for r in rejected(duck)}
    assert reasons == {long_call: 'duration_s: bigint expected, got str "long"',
                       bad_start: 'started: timestamp expected, got str "yesterday"'}
    columns = {r[0] for r in duck.query("SELECT column_name FROM information_schema.columns WHERE "
                                        "table_schema = '{ds}' AND table_name = 'calls'")}
    assert not any("__v_" in c for c in columns), "no variant column for a bad value"
    # The next run reads the same bad records again: they are stored once.
    sync(gong, duck)
    assert len(rejected(duck)) == 2


def test_an_unknown_enum_value_loads_as_it_is_and_is_logged(gong: GongFixture, duck: Warehouse,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="gong_sync")
    call = all_call_ids(gong)[2]
    gong.edit_call(call, meta_data={"direction": "Sideways"})
    sync(gong, duck)
    assert duck.query(f"SELECT direction FROM {{ds}}.calls WHERE id = '{call}'") == [("Sideways",)]
    assert "calls: 1 row with direction 'Sideways', a value the contract does not know (loaded as it is)" \
        in caplog.text
    assert "_gong_rejected" not in duck.table_rows()


def test_a_null_list_loads_as_no_child_rows(gong: GongFixture, duck: Warehouse, tmp_path: Any) -> None:
    ids, _ = baseline(gong, tmp_path)
    call = sorted(ids)[1]
    gong.edit_call(call, null_lists=("parties", "topics"))
    sync(gong, duck)
    assert call_ids(duck) == ids
    assert duck.count("calls__parties", f"WHERE call_id = '{call}'") == 0
    assert duck.count("calls__topics", f"WHERE call_id = '{call}'") == 0
    assert duck.count("calls__parties", f"WHERE call_id <> '{call}'") > 0
    assert duck.count("calls__trackers", f"WHERE call_id = '{call}'") > 0, "its other lists load"


def test_a_transcript_of_a_call_not_asked_for_is_set_aside(gong: GongFixture, duck: Warehouse,
                                                           tmp_path: Any) -> None:
    ids, sentences = baseline(gong, tmp_path)
    assert gong.sim is not None
    gong.sim.add_stray_transcript("7777777777777777777")
    result = sync(gong, duck)
    assert call_ids(duck) == ids and duck.count("transcripts") == sentences
    assert duck.count("transcripts", "WHERE call_id = '7777777777777777777'") == 0
    [(endpoint, record_id, reason, _)] = rejected(duck)
    assert (endpoint, record_id) == ("transcripts", "7777777777777777777")
    assert reason == "transcript of a call that was not asked for (1 sentence)"
    assert result.row_counts["_gong_rejected"] == 1


def test_the_summary_says_how_many_records_were_set_aside(capsys: pytest.CaptureFixture[str]) -> None:
    result = SyncResult(destination="duckdb", dataset="gong", row_counts={"calls": 10, "_gong_rejected": 2})
    print_summary(result)
    out = capsys.readouterr().out
    assert "set aside: 2 records Gong sent that could not be loaded as the contract says" in out
    assert "SELECT endpoint, record_id, reason FROM gong._gong_rejected" in out
