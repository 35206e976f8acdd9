"""`make schema`: regenerate the table contract (schemas/gong.schema.yaml), the table catalog (docs/tables.md),
the dbt project's sources (transform/models/sources.yml) and the page of modeled tables (docs/models.md).

Syncs every resource (opt-in ones too) from the local simulator into a scratch DuckDB through the
real pipeline, exports the resulting dlt schema, and writes the catalog of tables with a picture of
how they join. The dbt sources are written from the contract and the catalog, so their descriptions
cannot drift from what the sync loads; docs/models.md from the dbt project's manifest
(`pipelines.models_docs.models_markdown`). Run it after adding an endpoint; `tests/test_schema_contract.py`
then guards what was promised: an existing column may never disappear or change type (new columns are
fine). `--dbt-only` regenerates the last two from the contract as it is, without a sync.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "schemas" / "gong.schema.yaml"
CATALOG_DOC = ROOT / "docs" / "tables.md"
DBT_SOURCES = ROOT / "transform" / "models" / "sources.yml"
# dbt's freshness thresholds for the tables that grow with every sync (a schedule syncs at least daily).
FRESHNESS = {"warn_after": {"count": 2, "period": "day"}, "error_after": {"count": 7, "period": "day"}}
# When a load committed: dlt's load id is the Unix time its extract began (DuckDB and Postgres alike).
LOADED_AT = "to_timestamp(cast(_dlt_load_id as double precision))"

# Columns that point at another table's key, by name (a `*_user_id` column points at users, ...).
REFERENCES: dict[str, tuple[str, str]] = {
    "call_id": ("calls", "id"),
    "user_id": ("users", "id"),
    "primary_user_id": ("users", "id"),
    "reviewed_user_id": ("users", "id"),
    "reviewer_user_id": ("users", "id"),
    "creator_user_id": ("users", "id"),
    "updater_user_id": ("users", "id"),
    "created_by_user_id": ("users", "id"),
    "added_by_user_id": ("users", "id"),
    "commenter_user_id": ("users", "id"),
    "manager_id": ("users", "id"),
    "report_id": ("users", "id"),
    "workspace_id": ("workspaces", "id"),
    "scorecard_id": ("scorecards", "scorecard_id"),
    "answered_scorecard_id": ("answered_scorecards", "answered_scorecard_id"),
    "tracker_id": ("trackers", "tracker_id"),
    "folder_id": ("library_folders", "id"),
    "profile_id": ("permission_profiles", "id"),
    "integration_id": ("crm_integrations", "integration_id"),
}

# The business key each child table carries of its parent row: the columns it joins its parent on, named
# as in the parent (a root table's own `id` is `call_id`, `user_id`, `profile_id` in its children; see
# `parent_column`). Every child table the sync makes must be listed (tests/test_table_contract.py checks,
# on loaded rows, that each row's key is its parent row's, and names exactly one parent row).
JOIN_KEYS: dict[str, tuple[str, ...]] = {
    "users__email_aliases": ("user_id",),
    "users__personal_meeting_urls": ("user_id",),
    "users__spoken_languages": ("user_id",),
    "scorecards__questions": ("scorecard_id",),
    "scorecards__questions__answer_options": ("scorecard_id", "question_id", "question_revision_id"),
    "trackers__language_keywords": ("tracker_id",),
    "trackers__language_keywords__keywords": ("tracker_id", "language"),
    "trackers__said_in_topics": ("tracker_id",),
    "trackers__said_in_call_parts": ("tracker_id",),
    "calls__action_items": ("call_id",),
    "calls__context": ("call_id",),
    "calls__context__objects": ("call_id", "system"),
    "calls__context__objects__fields": ("call_id", "system", "object_type", "object_id"),
    "calls__highlights": ("call_id",),
    "calls__highlights__items": ("call_id", "title"),
    "calls__highlights__items__start_times": ("call_id", "title", "text"),
    "calls__interaction_stats": ("call_id",),
    "calls__key_points": ("call_id",),
    "calls__outline": ("call_id",),
    "calls__outline__items": ("call_id", "section"),
    "calls__parties": ("call_id",),
    "calls__parties__context": ("call_id", "party_id"),
    "calls__parties__context__objects": ("call_id", "party_id", "system"),
    "calls__parties__context__objects__fields": ("call_id", "party_id", "system", "object_type", "object_id"),
    "calls__parties__methods": ("call_id", "party_id"),
    "calls__public_comments": ("call_id",),
    "calls__speakers": ("call_id",),
    "calls__structure": ("call_id",),
    "calls__topics": ("call_id",),
    "calls__trackers": ("call_id",),
    "calls__trackers__occurrences": ("call_id", "tracker_id"),
    "calls__trackers__phrases": ("call_id", "tracker_id"),
    "calls__trackers__phrases__occurrences": ("call_id", "tracker_id", "phrase"),
    "calls__video": ("call_id",),
    "answered_scorecards__answers": ("answered_scorecard_id",),
    "answered_scorecards__answers__selected_options": ("answered_scorecard_id", "question_id",
                                                       "question_revision_id"),
    "interaction_stats__person_interaction_stats": ("user_id", "day"),
    "activity_day_by_day__calls": ("user_id", "day"),
    "manual_crm_associations__associated_crm_objects": ("call_id", "created"),
    "permission_profiles__team_leads": ("profile_id",),
    "permission_profiles__library_folder_ids": ("profile_id",),
}


def parent_column(parent: str, column: str) -> str:
    """The parent's column a child's key `column` holds: a root's own `id` for `call_id` in a child of
    `calls` (likewise `user_id`, `profile_id`...), else the same name."""
    target = REFERENCES.get(column)
    return target[1] if target and target[0] == parent else column


def seed_simulator_crm(client: Any) -> None:
    """Registers a generic CRM integration with a small schema in the simulator, through `client` (a
    GongClient, so its rate limiter spaces these requests too), so the CRM tables have rows."""
    resp = client.send("PUT", "/v2/crm/integrations", json_body={"name": "Demo CRM", "ownerEmail": "ops@example.com"})
    if resp.status_code not in (200, 201, 409):
        return
    listing = client.request("GET", "/v2/crm/integrations") or {}
    for integration in listing.get("integrations") or []:
        fields = [{"uniqueName": "Industry__c", "label": "Industry", "type": "PICKLIST",
                   "orderedValueList": ["Software", "Retail"], "isDeleted": False}]
        client.send("POST", "/v2/crm/entity-schema", params={"integrationId": integration["integrationId"],
                    "objectType": "ACCOUNT"}, json_body=fields)


def sync_everything(workdir: Path) -> Any:
    """Runs every resource against a fresh simulator into a scratch DuckDB; returns the dlt pipeline."""
    import dlt

    from pipelines.gong_pipeline import run_sync
    from simulator import GongSimulator, SimConfig
    from sources.gong import make_client
    from sources.gong.catalog import resource_names

    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    config = SimConfig(seed=11, users=8, calls_per_day=6, days=10, sentences_per_call=8, rate_limit=None,
                       daily_quota=None, now=now)
    with GongSimulator(config) as sim:
        client = make_client(sim.base_url, config.access_key, config.access_key_secret, rate_limit=None)
        seed_simulator_crm(client)
        destination = dlt.destinations.duckdb(credentials=str(workdir / "schema.duckdb"))
        run_sync(resource_names(), start=(now - timedelta(days=10)).isoformat(), end=now.isoformat(),
                 destination=destination, dataset="gong", pipeline_name="gong_schema_export",
                 pipelines_dir=str(workdir / "dlt"),
                 source_options={"client": client, "company_timezone": "America/New_York", "use_contract": False},
                 window_days=30)
    return dlt.attach("gong_schema_export", pipelines_dir=str(workdir / "dlt"))


def contract_yaml(schema: Any) -> str:
    """Returns the schema as the contract file's YAML (data tables only, no dlt bookkeeping)."""
    import yaml

    data = schema.to_dict(remove_defaults=True)
    data["tables"] = {name: {k: v for k, v in table.items() if k not in ("x-normalizer", "file_format")}
                      for name, table in data["tables"].items() if not name.startswith("_dlt")}
    for key in ("version", "version_hash", "previous_hashes"):
        data.pop(key, None)
    header = ("# The table contract of gong-sync: every table and column it promises, with its type.\n"
              "# Regenerate with `make schema`; tests/test_schema_contract.py fails when an existing column\n"
              "# disappears or changes type. New tables and columns may be added.\n")
    return header + yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=120)


def catalog_markdown(schema: Any) -> str:
    """Returns docs/tables.md: every table, its key, what a row is, its resource and endpoint, and a join picture."""
    from sources.gong.catalog import CATALOG

    tables = {name: t for name, t in schema.tables.items() if not name.startswith("_dlt")}
    lines = ["# Tables", "",
             "Generated by `make schema` from the endpoint catalog (`sources/gong/catalog.py`) and the exported",
             "schema (`schemas/gong.schema.yaml`). All tables live in the dataset `gong`; ids are text; timestamps",
             "are UTC; days are dates; offsets and durations carry their unit in their name (`_s` seconds, `_ms`",
             "milliseconds); an empty string from Gong is NULL; JSON documents of Gong's are JSON columns. Child",
             "tables (`parent__child`) carry their parent row's business key (its key column below: `call_id`,",
             "then e.g. `tracker_id` or `party_id`), so every table joins its parent on those columns; a re-synced",
             "parent replaces all of its child rows.", "",
             "| table | key (child tables: the parent key they join on) | one row is | resource (default) | endpoint |",
             "| --- | --- | --- | --- | --- |"]
    for endpoint in CATALOG:
        root = endpoint.name
        key = ", ".join(endpoint.primary_key)
        default = "yes" if endpoint.default else "opt-in"
        lines.append(f"| `{root}` | {key} | {endpoint.description} | {root} ({default}) | `{endpoint.endpoint}` |")
        for child in sorted(n for n in tables if n.startswith(root + "__")):
            parent_key = _business_key(child, tables[child])
            what = child[len(root) + 2:].replace("__", " → ")
            lines.append(f"| `{child}` | {parent_key} | an item of {what} | {root} | same |")
    lines += ["", "## Records set aside", "",
              "`_gong_rejected` holds the records gong-sync could not load as this contract says",
              "(sources/gong/gate.py): one row per record and reason, with `endpoint`, `record_id` (where it has one),",
              "`reason` and `record` (the row as JSON, after the personal-data policy), merged on `record_key` so a",
              "record read again is stored once. A record without its key, with a value of the wrong type for its",
              "column, or a transcript of a call that was not asked for goes there; an enum value the contract does",
              "not know and a null list load as they are.",
              "", "## Personal data", "",
              "`[sources.gong.pii]` keeps, hashes (`sha256:` + salted SHA-256) or drops each group before it is",
              "loaded (sources/gong/pii.py). The columns each group covers:", ""]
    lines += _pii_lines()
    lines += ["", "## How the tables join", "", "```mermaid", "erDiagram"]
    for a, b, label in _relations(tables):
        lines.append(f'    {a} ||--o{{ {b} : "{label}"')
    lines += ["```", ""]
    return "\n".join(lines)


def _pii_lines() -> list[str]:
    from sources.gong.pii import CRM_FIELD_TABLES, policy_columns

    crm = ", ".join(f"`{t}.value`" for t, _ in CRM_FIELD_TABLES)
    notes = {"emails": f"; in {crm}: a value that is an e-mail address",
             "phones": f"; in {crm}: the value of a field named like phone, mobile or fax",
             "names": f"; in {crm}: the value of a name field of a User, Contact or Lead object",
             "transcript_text": ""}
    lines = ["| group | columns |", "| --- | --- |"]
    for group, columns in policy_columns().items():
        lines.append(f"| `{group}` | " + ", ".join(f"`{c}`" if " " not in c else f"`{c.split(' ', 1)[0]}` "
                                                   f"{c.split(' ', 1)[1]}" for c in columns) + notes[group] + " |")
    lines += ["", "Free text is not scanned: a call's title, its brief, key points, highlights and comments, and",
              "library folder names can hold a name or an address as the people who wrote them put it there."]
    return lines


def join_key(name: str, table: dict[str, Any]) -> tuple[str, ...]:
    """The columns a child table joins its parent on (`JOIN_KEYS`); for a child table Gong adds later and
    not listed yet, the key of its root it carries (`call_id`, ...)."""
    if name in JOIN_KEYS:
        return JOIN_KEYS[name]
    root = name.split("__")[0]
    return tuple(c for c in table["columns"] if REFERENCES.get(c, ("",))[0] == root)[:1] or ("_dlt_parent_id",)


def _business_key(name: str, table: dict[str, Any]) -> str:
    return ", ".join(join_key(name, table))


def _relations(tables: dict[str, Any]) -> list[tuple[str, str, str]]:
    rels: list[tuple[str, str, str]] = []
    for name, table in sorted(tables.items()):
        own = set()
        if "__" in name:
            parent = name.rsplit("__", 1)[0]
            key = join_key(name, table)
            rels.append((parent, name, ", ".join(key)))
            own = set(key) | {c for c in table["columns"] if REFERENCES.get(c, ("",))[0] == name.split("__")[0]}
        # Columns that point at another root table (a child's own ones too: calls__trackers.tracker_id).
        for column in table["columns"]:
            target = REFERENCES.get(column)
            if target and column not in own and target[0] != name and target[0] in tables:
                rels.append((target[0], name, column))
    return rels


def dbt_sources_yaml(contract: dict[str, Any]) -> str:
    """Returns transform/models/sources.yml: every table of the contract (`contract` as the YAML file holds it)
    as a dbt source of the dataset, described from the catalog (what a row is, its resource and endpoint, the
    key it joins its parent on, what each id column points at), with each column's contract type, and
    `freshness` on the default tables that grow with every sync (read by `dbt source freshness`)."""
    import yaml

    from sources.gong.catalog import CATALOG

    tables = {name: t for name, t in contract["tables"].items() if not name.startswith("_dlt")}
    entries: list[dict[str, Any]] = []
    for endpoint in CATALOG:
        root = endpoint.name
        if root not in tables:
            continue
        grows = endpoint.default and (endpoint.window is not None or endpoint.follows_calls)
        entries.append(_source_table(root, tables[root], f"One row is {endpoint.description}. Resource {root} "
                                     f"({'default' if endpoint.default else 'opt-in'}), `{endpoint.endpoint}`; key: "
                                     f"{', '.join(endpoint.primary_key)}.", grows))
        for child in sorted(n for n in tables if n.startswith(root + "__")):
            what = child[len(root) + 2:].replace("__", " → ")
            key = ", ".join(join_key(child, tables[child]))
            entries.append(_source_table(child, tables[child], f"One row is an item of {what} of a row of {root} "
                                         f"(resource {root}); joins its parent {child.rsplit('__', 1)[0]} on {key}.",
                                         False))
    entries.append({"name": "_dlt_loads", "description": "dlt's record of every load: a load whose status is 0 "
                    "committed all its tables. The incremental models read only rows of such loads.",
                    "columns": [{"name": "load_id", "data_type": "text"}, {"name": "status", "data_type": "bigint"},
                                {"name": "inserted_at", "data_type": "timestamp"}]})
    document = {"version": 2, "sources": [{
        "name": "gong",
        "description": "The tables gong-sync loads (the table contract, schemas/gong.schema.yaml; docs/tables.md). "
                       "Generated by `make schema`: do not edit.",
        "schema": "{{ var('gong_dataset', target.schema) }}",
        "tables": entries,
    }]}
    header = ("# Generated by `make schema` (pipelines/export_schema.py) from the table contract and the endpoint\n"
              "# catalog: do not edit. Every table of the contract, as a dbt source of the synced dataset.\n")

    class NoAliases(yaml.SafeDumper):
        """Writes the freshness mapping out in full at every table (no YAML anchors for a reader to follow)."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    return header + yaml.dump(document, Dumper=NoAliases, sort_keys=False, allow_unicode=True, width=120)


def _source_table(name: str, table: dict[str, Any], description: str, grows: bool) -> dict[str, Any]:
    columns = []
    parent_key = join_key(name, table) if "__" in name else ()
    for column, spec in sorted(table.get("columns", {}).items()):
        if column.startswith("_dlt") and column != "_dlt_load_id":
            continue
        columns.append({"name": column, "data_type": spec.get("data_type", "text"),
                        "description": _column_description(name, column, spec, column in parent_key)})
    entry: dict[str, Any] = {"name": name, "description": description, "columns": columns}
    if grows:
        entry["config"] = {"loaded_at_field": LOADED_AT, "freshness": FRESHNESS}
    return entry


def _column_description(table: str, column: str, spec: dict[str, Any], parent_key: bool) -> str:
    if column == "_dlt_load_id":
        return "dlt's load that last wrote the row (its Unix time, as text)."
    parts = []
    if spec.get("primary_key"):
        parts.append("key")
    if parent_key:
        parts.append(f"the parent row's {column} (joins {table.rsplit('__', 1)[0]})")
    target = REFERENCES.get(column)
    if target and target[0] != table:
        parts.append(f"references {target[0]}.{target[1]}")
    kind = spec.get("data_type", "text")
    if kind == "text" and (column == "id" or column.endswith("_id")):
        parts.append("a Gong id, text")
    else:
        parts.append({"timestamp": "UTC timestamp", "date": "a day (date)", "json": "a JSON document of Gong's",
                      "bool": "true or false", "bigint": "integer", "double": "number"}.get(kind, kind))
    if column.endswith("_s"):
        parts.append("seconds")
    elif column.endswith("_ms"):
        parts.append("milliseconds")
    return "; ".join(parts) + "."


def write_dbt_files() -> list[Path]:
    """Writes transform/models/sources.yml from the contract, then docs/models.md from the dbt manifest;
    returns the files written."""
    import yaml

    from pipelines.models_docs import write_models_doc

    DBT_SOURCES.write_text(dbt_sources_yaml(yaml.safe_load(CONTRACT.read_text())))
    return [DBT_SOURCES, write_models_doc()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Regenerates the contract and the catalog (`--dbt-only`: only the dbt sources and docs/models.md, from
    the contract as it is); returns the exit code."""
    written: list[Path] = []
    if "--dbt-only" not in (sys.argv[1:] if argv is None else argv):
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = sync_everything(Path(tmp))
            schema = pipeline.default_schema
            CONTRACT.parent.mkdir(exist_ok=True)
            CONTRACT.write_text(contract_yaml(schema))
            CATALOG_DOC.parent.mkdir(exist_ok=True)
            CATALOG_DOC.write_text(catalog_markdown(schema))
        written += [CONTRACT, CATALOG_DOC]
    written += write_dbt_files()
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
