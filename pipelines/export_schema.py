"""`make schema`: regenerate the table contract (schemas/gong.schema.yaml) and the table catalog (docs/tables.md).

Syncs every resource (opt-in ones too) from the local simulator into a scratch DuckDB through the
real pipeline, exports the resulting dlt schema, and writes the catalog of tables with a picture of
how they join. Run it after adding an endpoint; `tests/test_schema_contract.py` then guards what was
promised: an existing column may never disappear or change type (new columns are fine).
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

# Columns that point at another table's key, by name (a `*_user_id` column points at users, ...).
REFERENCES: dict[str, tuple[str, str]] = {
    "call_id": ("calls", "id"),
    "user_id": ("users", "id"),
    "primary_user_id": ("users", "id"),
    "reviewed_user_id": ("users", "id"),
    "reviewer_user_id": ("users", "id"),
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


def seed_simulator_crm(base_url: str, access_key: str, secret: str) -> None:
    """Registers a generic CRM integration with a small schema in the simulator, so its tables have rows."""
    import requests

    auth = (access_key, secret)
    resp = requests.put(f"{base_url}/v2/crm/integrations", json={"name": "Demo CRM", "ownerEmail": "ops@example.com"},
                        auth=auth, timeout=10)
    if resp.status_code not in (200, 201, 409):
        return
    listing = requests.get(f"{base_url}/v2/crm/integrations", auth=auth, timeout=10).json()
    for integration in listing.get("integrations") or []:
        fields = [{"uniqueName": "Industry__c", "label": "Industry", "type": "PICKLIST",
                   "orderedValueList": ["Software", "Retail"], "isDeleted": False}]
        requests.post(f"{base_url}/v2/crm/entity-schema", params={"integrationId": integration["integrationId"],
                      "objectType": "ACCOUNT"}, json=fields, auth=auth, timeout=10)


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
        seed_simulator_crm(sim.base_url, config.access_key, config.access_key_secret)
        client = make_client(sim.base_url, config.access_key, config.access_key_secret, rate_limit=None)
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
    data["tables"] = {name: {k: v for k, v in table.items() if k != "x-normalizer"}
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
             "are UTC. Child tables (`parent__child`) carry their parent's business key (`call_id`, `user_id`, ...);",
             "a re-synced parent replaces all of its child rows.", "",
             "| table | key | one row is | resource (default) | endpoint |", "| --- | --- | --- | --- | --- |"]
    for endpoint in CATALOG:
        root = endpoint.name
        key = ", ".join(endpoint.primary_key)
        default = "yes" if endpoint.default else "opt-in"
        lines.append(f"| `{root}` | {key} | {endpoint.description} | {root} ({default}) | `{endpoint.endpoint}` |")
        for child in sorted(n for n in tables if n.startswith(root + "__")):
            parent_key = _business_key(tables[child])
            what = child[len(root) + 2:].replace("__", " → ")
            lines.append(f"| `{child}` | {parent_key} | an item of {what} | {root} | same |")
    lines += ["", "## How the tables join", "", "```mermaid", "erDiagram"]
    for a, b, label in _relations(tables):
        lines.append(f'    {a} ||--o{{ {b} : "{label}"')
    lines += ["```", ""]
    return "\n".join(lines)


def _business_key(table: dict[str, Any]) -> str:
    keys = [c for c in table["columns"] if c in REFERENCES or c.endswith("_id") and not c.startswith("_dlt")]
    return ", ".join(keys[:3]) or "_dlt_parent_id"


def _relations(tables: dict[str, Any]) -> list[tuple[str, str, str]]:
    rels: list[tuple[str, str, str]] = []
    for name, table in sorted(tables.items()):
        if "__" in name:
            parent = name.rsplit("__", 1)[0]
            key = next((c for c in table["columns"] if c in REFERENCES and REFERENCES[c][0] == name.split("__")[0]),
                       "_dlt_parent_id")
            rels.append((parent, name, key))
            continue
        for column in table["columns"]:
            target = REFERENCES.get(column)
            if target and target[0] != name and target[0] in tables:
                rels.append((target[0], name, column))
    return rels


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Regenerates the contract and the catalog; returns the exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = sync_everything(Path(tmp))
        schema = pipeline.default_schema
        CONTRACT.parent.mkdir(exist_ok=True)
        CONTRACT.write_text(contract_yaml(schema))
        CATALOG_DOC.parent.mkdir(exist_ok=True)
        CATALOG_DOC.write_text(catalog_markdown(schema))
    print(f"wrote {CONTRACT.relative_to(ROOT)} and {CATALOG_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
