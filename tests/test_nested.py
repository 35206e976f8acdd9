"""The calls' nested tables built as Arrow tables (sources/gong/nested.py): the same rows, names and keys as
dlt's own normalizer makes of the same calls, the same warehouse after a sync, and every page dlt must
decide itself (a new field, a value of another type) left to dlt."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.data_types.type_helpers import coerce_value
from dlt.normalize.items_normalizers.jsonl import JsonLItemsNormalizer

from simulator import GongSimulator
from sources.gong import apply_contract, first_calls_request
from sources.gong.client import ClientSettings, GongClient
from sources.gong.nested import NestedTables, root_row_id, schema_agrees, split_nested
from sources.gong.rows import call_row
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, GongFixture, RecordingSession, Warehouse, sim_config
from tests.test_incremental import snapshot, sync

EXTENSIVE = "/v2/calls/extensive"


@pytest.fixture(scope="module")
def raw_calls() -> Iterator[list[dict[str, Any]]]:
    """The simulator's full extensive answers' calls, as Gong sends them."""
    sim = GongSimulator(sim_config(days=4, calls_per_day=15, page_size=100, sentences_per_call=2))
    url = sim.start()
    client = GongClient(url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=None),
                        session=RecordingSession())
    try:
        body = first_calls_request(start_date="2026-10-01", end_date="2026-12-01")
        yield [c for page in client.paginate("POST", EXTENSIVE, "calls", body=body) for c in page]
    finally:
        client.close()
        sim.stop()


@pytest.fixture(scope="module")
def calls(raw_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call rows as the calls resource makes them."""
    return [call_row(c) for c in raw_calls]


def contract_schema() -> dlt.Schema:
    """The contract as the pipeline's schema holds it (with its normalizer's settings, e.g. the root key)."""
    schema = dlt.Schema("gong")
    apply_contract(schema)
    return dlt.Schema.from_stored_schema(schema.to_dict())


class _DltCoercion:
    """What dlt's normalize step needs to run its own `_coerce_row` on one row (dlt 1.31, pinned): the
    schema's types, dlt's coercions, and a failure for anything that would add a column."""

    _type_map = {str: "text", int: "bigint", float: "double", bool: "bool"}
    _timezone_override = None

    def __init__(self, schema: dlt.Schema) -> None:
        self.schema = schema

    def _can_coerce_type(self, to_type: str, from_type: str) -> bool:
        return True

    def _coerce_type(self, to_type: Any, from_type: Any, value: Any) -> Any:
        return coerce_value(to_type, from_type, value)

    def _coerce_null_value(self, columns: Any, table: str, column: str) -> None:
        return None

    def _coerce_non_null_value(self, columns: Any, table: str, column: str, value: Any) -> Any:
        raise AssertionError(f"{table}.{column} = {value!r} is not a known column of its type")


def dlt_rows(schema: dlt.Schema, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What dlt's normalizer makes of `rows` (root rows already carrying their `_dlt_id`), coerced to the
    schema's types as its normalize step does, nulls left out."""
    coercion = _DltCoercion(schema)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for (table, *_), flat in schema.normalize_data_item(copy.deepcopy(row), "load", "calls"):
            coerced, _ = JsonLItemsNormalizer._coerce_row(coercion, table, None, flat)  # type: ignore[arg-type]
            out[table].append({k: v for k, v in coerced.items() if v is not None})
    return out


def as_rows(table: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]


def keyed(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["_dlt_id"]: row for row in rows}


def test_nested_tables_are_the_rows_dlt_makes(calls: list[dict[str, Any]]) -> None:
    schema = contract_schema()
    split = split_nested(calls, "calls", "id", schema)
    assert split is not None, "a page of ordinary calls is built here, not left to dlt"
    roots, tables = split
    assert len(roots) == len(calls) > 50
    assert all(not any(isinstance(v, list) for v in r.values()) for r in roots), "the root rows lose their lists"
    assert [r["_dlt_id"] for r in roots] == [root_row_id("calls", str(c["id"])) for c in calls]

    expected = dlt_rows(schema, [{**c, "_dlt_id": root_row_id("calls", str(c["id"]))} for c in calls])
    assert set(tables) == set(expected) - {"calls"}
    assert len(tables) >= 20, "parties, their CRM context, trackers and their occurrences, outline items..."
    for name, table in tables.items():
        ours, theirs = keyed(as_rows(table)), keyed(expected[name])
        assert len(ours) == table.num_rows == len(expected[name]), name
        assert ours == theirs, f"{name} differs from dlt's rows"
    # Every nested row names its parent and its call (the business key analysts join on).
    parties = as_rows(tables["calls__parties"])
    fields = as_rows(tables["calls__parties__context__objects__fields"])
    objects = {r["_dlt_id"]: r for r in as_rows(tables["calls__parties__context__objects"])}
    assert all(f["_dlt_parent_id"] in objects for f in fields)
    assert all(f["call_id"] == objects[f["_dlt_parent_id"]]["call_id"] for f in fields)
    assert {p["_dlt_root_id"] for p in parties} <= {r["_dlt_id"] for r in roots}
    comments = [r for r in as_rows(tables.get("calls__public_comments")) if "posted" in r]
    assert comments and all(r["posted"].tzinfo is not None for r in comments), "timestamps stay UTC-aware"
    # ... and the business key of its parent row, named as there (tests/test_table_contract.py: loaded rows).
    contexts = {r["_dlt_id"]: r for r in as_rows(tables["calls__parties__context"])}
    party_rows = {p["_dlt_id"]: p for p in parties}
    for f in fields:
        ctx = contexts[objects[f["_dlt_parent_id"]]["_dlt_parent_id"]]
        assert (f["party_id"], f["system"]) == (party_rows[ctx["_dlt_parent_id"]]["party_id"], ctx["system"])
    assert all((f["object_type"], f["object_id"]) == (objects[f["_dlt_parent_id"]]["object_type"],
                                                      objects[f["_dlt_parent_id"]]["object_id"]) for f in fields)
    trackers = {r["_dlt_id"]: r for r in as_rows(tables["calls__trackers"])}
    occurrences = as_rows(tables["calls__trackers__occurrences"])
    assert occurrences and all(o["tracker_id"] == trackers[o["_dlt_parent_id"]]["tracker_id"] for o in occurrences)
    phrases = {r["_dlt_id"]: r for r in as_rows(tables["calls__trackers__phrases"])}
    said = as_rows(tables["calls__trackers__phrases__occurrences"])
    assert said and all((o["tracker_id"], o["phrase"]) == (phrases[o["_dlt_parent_id"]]["tracker_id"],
                                                           phrases[o["_dlt_parent_id"]]["phrase"]) for o in said)
    assert all("start_time_s" in o and "start_time" not in o for o in occurrences), "offsets carry their unit"
    speakers = as_rows(tables["calls__speakers"])
    assert speakers and all("speaker_id" in s and "talk_time_s" in s and "id" not in s for s in speakers)


def _empty_strings(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _empty_strings(v)]
    if isinstance(value, list):
        return [x for v in value for x in _empty_strings(v)]
    return [value] if value == "" else []


def test_empty_strings_from_gong_are_null_on_both_paths(raw_calls: list[dict[str, Any]]) -> None:
    page = copy.deepcopy(raw_calls[:8])
    call = next(c for c in page if c["content"]["trackers"] and c["collaboration"]["publicComments"])
    party = call["parties"][0]
    party["title"] = ""
    party["methods"] = ["Invitee", ""]
    party["context"][0]["objects"][0]["fields"][0]["value"] = ""
    call["context"][0]["objects"][0]["fields"][0]["value"] = ""
    call["metaData"]["sdrDisposition"] = ""
    call["content"]["trackers"][0]["type"] = ""
    call["content"]["outline"][0]["items"][0]["text"] = ""
    call["content"]["keyPoints"][0]["text"] = ""
    call["collaboration"]["publicComments"][0]["comment"] = ""
    call["interaction"]["speakers"][0]["userId"] = ""
    rows = [call_row(c) for c in page]
    assert _empty_strings(rows) == [], "no empty string reaches either path"

    schema = contract_schema()
    split = split_nested(rows, "calls", "id", schema)
    assert split is not None, "a page with empty strings is built here too"
    roots, tables = split
    expected = dlt_rows(schema, [{**r, "_dlt_id": root_row_id("calls", str(r["id"]))} for r in rows])
    for name, table in tables.items():
        assert keyed(as_rows(table)) == keyed(expected[name]), name
        assert not [v for v in table.to_pylist() for x in v.values() if x == ""], name
    call_id = call["metaData"]["id"]
    assert "sdr_disposition" not in next(r for r in expected["calls"] if r["id"] == call_id)

    def of_call(name: str) -> list[dict[str, Any]]:
        return [r for r in tables[name].to_pylist() if r["call_id"] == call_id]

    assert of_call("calls__parties")[0]["title"] is None and of_call("calls__parties")[0]["name"]
    assert [m["value"] for m in of_call("calls__parties__methods")[:2]] == ["Invitee", None], "the item stays, NULL"
    assert of_call("calls__parties__context__objects__fields")[0]["value"] is None
    assert of_call("calls__context__objects__fields")[0]["value"] is None
    assert of_call("calls__trackers")[0]["type"] is None
    assert of_call("calls__outline__items")[0]["text"] is None
    assert of_call("calls__key_points")[0]["text"] is None
    assert of_call("calls__public_comments")[0]["comment"] is None
    assert of_call("calls__speakers")[0]["user_id"] is None


def test_a_call_taken_once_per_load(calls: list[dict[str, Any]]) -> None:
    schema = contract_schema()
    sink = NestedTables()
    first = split_nested(calls[:10], "calls", "id", schema, sink.seen)
    again = split_nested(calls[5:12], "calls", "id", schema, sink.seen)
    assert first is not None and again is not None
    assert [r["id"] for r in again[0]] == [c["id"] for c in calls[10:12]], "a call listed twice is taken once"
    sink.add(first[1])
    sink.add(again[1])
    merged = sink.take()
    parties = merged["calls__parties"].to_pylist()
    assert len({p["_dlt_id"] for p in parties}) == len(parties), "no nested row twice"
    assert {p["call_id"] for p in parties} <= {str(c["id"]) for c in calls[:12]}
    assert not sink.seen and not sink, "a take starts the next load afresh"


@pytest.mark.parametrize("change", ["new field", "variant", "list of lists", "int for text", "int for double"])
def test_what_dlt_must_decide_is_left_to_dlt(calls: list[dict[str, Any]], change: str) -> None:
    schema = contract_schema()
    page = copy.deepcopy(calls[:5])
    party = next(c for c in page if c["parties"])["parties"][0]
    if change == "new field":
        party["seatingPosition"] = "left"  # a field Gong adds: dlt creates the column
    elif change == "variant":
        # text where a number was: dlt keeps it in a variant column
        next(c for c in page if c["interactionStats"])["interactionStats"][0]["value"] = "lots"
    elif change == "list of lists":
        party["methods"] = [["a", "b"]]
    elif change == "int for text":
        party["title"] = 7  # dlt coerces it to "7"
    else:
        next(c for c in page if c["interactionStats"])["interactionStats"][0]["value"] = 3
    split = split_nested(page, "calls", "id", schema)
    if change in ("int for text", "int for double"):
        assert split is not None, "a value dlt coerces is coerced the same way here"
        expected = dlt_rows(schema, [{**c, "_dlt_id": root_row_id("calls", str(c["id"]))} for c in page])
        for name, table in split[1].items():
            assert keyed(as_rows(table)) == keyed(expected[name]), name
    else:
        assert split is None, "the page goes to dlt's normalizer"


@pytest.mark.sim(days=10, calls_per_day=12, page_size=20, sentences_per_call=6)
def test_a_sync_loads_the_same_warehouse_either_way(gong: GongFixture, tmp_path: Path) -> None:
    whs = {}
    for name, arrow in (("dlt", False), ("arrow", True)):
        (tmp_path / name).mkdir()
        whs[name] = Warehouse("duckdb", tmp_path / name)
        sync(gong, whs[name], options={"nested_arrow": arrow}, chunk_pages=3, window_days=30)
    dlt_wh, arrow_wh = whs["dlt"], whs["arrow"]
    assert snapshot(arrow_wh) == snapshot(dlt_wh)
    nested = [t for (t,) in dlt_wh.query("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                         "'{ds}' AND table_name LIKE 'calls\\_\\_%' ESCAPE '\\' ORDER BY 1")]
    assert len(nested) >= 20
    for table in nested:
        columns = [c for (c,) in dlt_wh.query(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{{ds}}' AND table_name = "
            f"'{table}' AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY 1")]
        # dlt's root ids are random: compare each row with its call's id and its position instead.
        query = (f"SELECT c.id, t._dlt_list_idx, {', '.join('t.' + c for c in columns)} FROM {{ds}}.{table} t "
                 f"JOIN {{ds}}.calls c ON c._dlt_id = t._dlt_root_id")
        assert Counter(arrow_wh.query(query)) == Counter(dlt_wh.query(query)), table
        assert arrow_wh.count(table) == dlt_wh.count(table) > 0, table
    orphans = arrow_wh.query("SELECT count(*) FROM {ds}.calls__parties__context p LEFT JOIN "
                             "{ds}.calls__parties q ON q._dlt_id = p._dlt_parent_id WHERE q._dlt_id IS NULL")
    assert orphans == [(0,)]
    # The nested tables of the second sync were built here: their calls carry the ids derived from their key.
    ids = arrow_wh.query("SELECT id, _dlt_id FROM {ds}.calls")
    assert len(ids) > 80 and all(row_id == root_row_id("calls", call_id) for call_id, row_id in ids)
    assert not any(row_id == root_row_id("calls", call_id) for call_id, row_id in dlt_wh.query(
        "SELECT id, _dlt_id FROM {ds}.calls"))


def live_client(days: int = 3) -> tuple[GongSimulator, GongClient]:
    sim = GongSimulator(sim_config(days=days, calls_per_day=12, page_size=10, sentences_per_call=2))
    url = sim.start()
    return sim, GongClient(url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=None),
                           session=RecordingSession())


def test_nested_files_are_part_of_the_package_dlt_commits(tmp_path: Path) -> None:
    from sources.gong import gong_source

    sim, client = live_client()
    try:
        pipeline = dlt.pipeline("nested", destination="duckdb", pipelines_dir=str(tmp_path))
        sink = NestedTables()
        source = gong_source(client=client, start_date="2026-10-01", end_date="2026-12-01", nested_tables=sink)
        info = pipeline.extract(source.with_resources("calls"), loader_file_format="parquet")
    finally:
        client.close()
        sim.stop()
    (load_id,) = info.loads_ids
    jobs = pipeline._get_normalize_storage().extracted_packages.list_new_jobs(load_id)
    tables = Counter(Path(job).name.split(".")[0] for job in jobs)
    assert tables["calls"] >= 1 and tables["calls__parties"] == 1 and tables["calls__trackers__occurrences"] == 1
    assert not sink and not sink.seen, "what was built went into the package"


def test_a_failed_extract_leaves_no_package(tmp_path: Path) -> None:
    from sources.gong import gong_source

    sim, client = live_client()
    pages = client.paginate

    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for number, page in enumerate(pages(*args, **kwargs)):
            if number == 2:
                raise RuntimeError("the network went away")
            yield page

    client.paginate = failing  # type: ignore[method-assign]
    sink = NestedTables()
    pipeline = dlt.pipeline("nested_fail", destination="duckdb", pipelines_dir=str(tmp_path))
    try:
        with pytest.raises(Exception, match="network went away"):
            pipeline.extract(gong_source(client=client, start_date="2026-10-01", end_date="2026-12-01",
                                         nested_tables=sink).with_resources("calls"), loader_file_format="parquet")
    finally:
        client.close()
        sim.stop()
    assert pipeline._get_normalize_storage().extracted_packages.list_packages() == []
    assert sink, "nothing was written; what the failed extract built is cleared by the runner (`_extract`)"


@pytest.mark.sim(days=4, calls_per_day=12, page_size=20, sentences_per_call=4)
def test_postgres_keeps_dlts_normalizer(gong: GongFixture, tmp_path: Path) -> None:
    """dlt loads Arrow data into Postgres from CSV, which reads an empty string back as NULL: the runner
    builds the nested tables only for destinations that load Parquet files."""
    pg = Warehouse("postgres", tmp_path)
    try:
        sync(gong, pg, resources=("calls",), start="2026-10-28T00:00:00+00:00")
        ids = pg.query("SELECT id, _dlt_id FROM {ds}.calls")
        assert len(ids) > 20
        assert not any(row_id == root_row_id("calls", call_id) for call_id, row_id in ids)
        assert pg.count("calls__parties") > len(ids)
    finally:
        pg.drop()


def test_a_split_made_with_a_copy_of_the_schema_holds_only_while_the_schema_agrees(
        calls: list[dict[str, Any]]) -> None:
    schema = contract_schema()
    facts: dict[str, Any] = {}
    split = split_nested(calls[:20], "calls", "id", schema.clone(), None, facts)
    assert split is not None and facts["tables"] and facts["whole"]
    assert schema_agrees(schema, facts), "the schema the copy was made of splits the same way"
    again = split_nested(calls[:20], "calls", "id", schema)
    assert again is not None and again[0] == split[0]
    assert {n: t.to_pylist() for n, t in again[1].items()} == {n: t.to_pylist() for n, t in split[1].items()}

    retyped = schema.clone()
    retyped.tables["calls__parties"]["columns"]["title"]["data_type"] = "bigint"
    assert not schema_agrees(retyped, facts), "a column of another type"
    learned = schema.clone()  # a column the copy did not know (only nulls of it on the page)
    learned.tables["calls__parties"]["columns"]["seating_position"] = {"name": "seating_position",
                                                                       "data_type": "text", "nullable": True}
    page = copy.deepcopy(calls[:20])
    next(c for c in page if c["parties"])["parties"][0]["seatingPosition"] = None
    facts = {}
    assert split_nested(page, "calls", "id", schema.clone(), None, facts) is not None
    assert schema_agrees(schema, facts) and not schema_agrees(learned, facts), "the column would be written here"
    kept_whole = schema.clone()
    kept_whole.tables["calls__parties"]["columns"]["context"] = {"name": "context", "data_type": "json",
                                                                  "nullable": True}
    assert not schema_agrees(kept_whole, facts), "a list now kept as JSON"
    other = dlt.Schema("gong", normalizers={"names": "sql_cs_v1"})
    apply_contract(other)
    assert not schema_agrees(other, facts), "another naming convention"
