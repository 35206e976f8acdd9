"""The table contract: schemas/gong.schema.yaml lists every table and column gong-sync promises.

A sync of every resource (replayed from a cassette) must keep every promised column with its
promised type; new tables and columns are allowed. The source itself starts from the contract.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import pytest
import yaml

from pipelines.export_schema import CONTRACT, catalog_markdown
from pipelines.gong_pipeline import run_sync
from sources.gong import gong_source
from sources.gong.catalog import CATALOG, resource_names
from tests.conftest import GongFixture

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def contract_tables() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT.read_text())["tables"]


def broken_promises(contract: dict[str, Any], schema_tables: dict[str, Any]) -> list[str]:
    """Returns every promised column that is missing or whose type changed."""
    problems = []
    for table, spec in contract.items():
        actual = schema_tables.get(table)
        if actual is None:
            problems.append(f"table {table} disappeared")
            continue
        for column, col in spec.get("columns", {}).items():
            have = actual["columns"].get(column)
            if have is None:
                problems.append(f"{table}.{column} disappeared")
            elif col.get("data_type") and have.get("data_type") != col.get("data_type"):
                problems.append(f"{table}.{column} changed type {col.get('data_type')} -> {have.get('data_type')}")
    return problems


def test_contract_covers_every_resource() -> None:
    tables = contract_tables()
    for endpoint in CATALOG:
        assert endpoint.name in tables, f"{endpoint.name} is not in the contract: run make schema"
        for key in endpoint.primary_key:
            assert key in tables[endpoint.name]["columns"], f"{endpoint.name}.{key}"


def test_source_starts_from_the_contract() -> None:
    source = gong_source(client=object(), start_date="2026-10-01")
    assert set(contract_tables()) <= set(source.schema.tables)
    assert source.schema.tables["calls"]["columns"]["id"]["data_type"] == "text"


@pytest.mark.sim(seed=11, users=8, calls_per_day=6, days=10, sentences_per_call=8)
def test_a_full_sync_keeps_every_promise(gong: GongFixture, tmp_path: Path) -> None:
    if gong.sim is not None:
        from pipelines.export_schema import seed_simulator_crm

        seed_simulator_crm(gong.client())
    run_sync(resource_names(), start=(NOW - timedelta(days=10)).isoformat(), end=NOW.isoformat(),
             destination=dlt.destinations.duckdb(credentials=str(tmp_path / "w.duckdb")), dataset="gong",
             pipeline_name="contract", pipelines_dir=str(tmp_path / "dlt"),
             source_options={"client": gong.client(), "company_timezone": "America/New_York"}, window_days=30)
    schema = dlt.attach("contract", pipelines_dir=str(tmp_path / "dlt")).default_schema
    assert broken_promises(contract_tables(), schema.tables) == []
    loaded = {name for name, t in schema.tables.items() if not name.startswith("_dlt")}
    assert {e.name for e in CATALOG} <= loaded
    doc = catalog_markdown(schema)
    assert "erDiagram" in doc and "calls ||--o{ calls__parties" in doc


def changelog_changes() -> list[tuple[str, str, str, str, str]]:
    """The rows of CHANGELOG.md's table of contract changes (issue 21): table, old column and type, new ones."""
    text = (CONTRACT.parents[1] / "CHANGELOG.md").read_text()
    section = text.split("### Renamed, retyped and added columns", 1)[1].split("\n### ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("table", "---"):
            rows.append((cells[0], cells[1], cells[2], cells[3], cells[4]))
    return rows


def test_the_changelog_lists_contract_changes_that_hold() -> None:
    """Issue 21 renamed and retyped columns on purpose (the contract was regenerated): CHANGELOG.md tells
    existing users each change, and each one is what the contract now says."""
    contract = contract_tables()
    changes = changelog_changes()
    assert len(changes) > 50
    for table, old, old_type, new, new_type in changes:
        columns = contract[table]["columns"]
        assert columns.get(new, {}).get("data_type") == new_type, f"{table}.{new} is promised as {new_type}"
        if old == new:
            assert old_type != new_type, f"{table}.{old}: a retype names two types"
        elif old != "-":
            assert old not in columns, f"{table}.{old} was renamed to {new}"
    renamed = {(t, o) for t, o, _, n, _ in changes if o not in ("-", n)}
    assert ("calls__speakers", "talk_time") in renamed and ("calls__trackers", "id") in renamed


def test_a_changed_or_missing_column_breaks_the_contract() -> None:
    contract = contract_tables()
    changed = yaml.safe_load(yaml.safe_dump(contract))
    changed["calls"]["columns"]["duration_s"]["data_type"] = "text"
    del changed["users"]["columns"]["email_address"]
    changed["users"]["columns"]["brand_new_column"] = {"data_type": "text"}
    problems = broken_promises(contract, changed)
    assert problems == ["calls.duration_s changed type bigint -> text", "users.email_address disappeared"]


def test_the_contract_is_applied_again_only_where_the_schema_lost_some_of_it() -> None:
    from sources.gong import apply_contract

    fresh = dlt.Schema("gong")
    apply_contract(fresh)
    schema = dlt.Schema.from_stored_schema(fresh.to_dict())
    before = schema.to_dict()["tables"]
    apply_contract(schema)
    assert schema.to_dict()["tables"] == before, "a schema that holds the contract is left as it is"

    del schema.tables["calls__parties"]["columns"]["title"]
    schema.tables["calls"]["columns"]["started"]["data_type"] = "text"
    schema.tables["transcripts"]["write_disposition"] = "append"
    apply_contract(schema)
    assert schema.tables["calls__parties"]["columns"]["title"]["data_type"] == "text"
    assert schema.tables["calls"]["columns"]["started"]["data_type"] == "timestamp"
    assert schema.tables["transcripts"]["write_disposition"] == "merge"
    assert not broken_promises(contract_tables(), schema.tables)
