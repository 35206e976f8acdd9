"""Where a sync writes: the destination named on the command line, made ready before anything is read.

Chooses the default DuckDB file, accepts a Postgres URL without a password (trust or peer auth), refuses a
DuckDB file named like the dataset, names the setting to fill in when credentials are missing, and picks
the file format each table is loaded in. On dlt's filesystem destination (a lake: a local folder, S3, GCS,
Azure) every table is a Delta table merged on its key, and the rows a re-synced record no longer has are
deleted after each load (`as_lake_table`, `drop_replaced_rows`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError

logger = logging.getLogger("gong_sync.destinations")

# The default warehouse file. DuckDB names a database's catalog after its file, and a catalog named like the
# dataset (`gong.duckdb` holding the schema `gong`) makes DuckDB refuse dlt's queries as ambiguous.
DEFAULT_DUCKDB_FILE = "gong_warehouse.duckdb"
# What the default was before: dlt's own default, the pipeline's name.
FORMER_DUCKDB_FILE = "gong.duckdb"

# The destinations shown when a name is unknown (any destination dlt ships is accepted).
COMMON_DESTINATIONS = ("duckdb", "postgres", "motherduck", "snowflake", "bigquery", "databricks", "redshift",
                       "mssql", "clickhouse", "athena", "filesystem")


def destination_type(destination: Any) -> str:
    """The dlt destination type of a destination or a destination name, e.g. "duckdb" (a named DuckDB too)."""
    kind = getattr(destination, "destination_type", None) or str(destination)
    return str(kind).rsplit(".", 1)[-1]


def is_duckdb(destination: Any) -> bool:
    """Whether `destination` is dlt's DuckDB destination, whatever name it was given (MotherDuck is not)."""
    return destination_type(destination) == "duckdb"


def make_destination(destination: Any, dataset: str, pipeline_name: str) -> Any:
    """Returns what to give `dlt.pipeline(destination=...)` for a destination name (or a dlt destination, as
    it is), or raises UserError: an unknown name, a DuckDB file the former default would collide with."""
    import dlt
    from dlt.common.destination import Destination
    from dlt.common.destination.exceptions import UnknownDestinationModule

    if not isinstance(destination, str):
        return destination
    name = destination.strip()
    try:
        Destination.from_reference(name)
    except UnknownDestinationModule:
        raise UsageError(f"Unknown destination {name!r}: choose {', '.join(COMMON_DESTINATIONS)} (or another "
                         "destination dlt supports).") from None
    except Exception as exc:  # e.g. its package is not installed
        raise UserError(f"The destination {name!r} cannot be used ({type(exc).__name__}): install its extra, e.g. "
                        f".venv/bin/pip install \"dlt[{name}]\".") from None
    if name == "duckdb" and dlt.secrets.get("destination.duckdb.credentials") is None:
        return dlt.destinations.duckdb(credentials=default_duckdb_file(dataset, pipeline_name))
    if name == "postgres":
        url = dlt.secrets.get("destination.postgres.credentials")
        if isinstance(url, str) and url.strip():
            return dlt.destinations.postgres(credentials=with_empty_password(url.strip()))
    return name


def default_duckdb_file(dataset: str, pipeline_name: str) -> str:
    """dlt's default file, `<pipeline>.duckdb`, unless it is named like the dataset (then
    `<pipeline>_warehouse.duckdb`). Raises UserError when that collision is a file an earlier version wrote."""
    own = f"{pipeline_name}.duckdb"
    if Path(own).stem != dataset:
        return own
    chosen = f"{pipeline_name}_warehouse.duckdb"
    if Path(own).exists() and not Path(chosen).exists():
        raise UserError(f"{own} was written by an earlier gong-sync and is named like the dataset {dataset!r}, which "
                        f"DuckDB cannot tell apart: rename it (mv {own} {chosen}, and its .wal file if there is one) "
                        "and run again.")
    return chosen


def with_empty_password(url: str) -> str:
    """A connection URL with a user and no password gets an empty one (dlt requires the field; a server with
    trust or peer authentication needs none): postgresql://user@host/db -> postgresql://user:@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, at, location = rest.rpartition("@")
    if ":" in userinfo or not userinfo:
        return url
    return f"{scheme}://{userinfo}:{at}{location}"


def check_destination(pipeline: Any) -> None:
    """Resolves the pipeline's destination configuration before anything is read from Gong, and raises
    UserError (UsageError for a wrong setting) naming what to set or fix. Opens no connection."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException, InvalidNativeValue

    from pipelines.errors import missing_settings

    kind = destination_type(pipeline.destination)
    try:
        pipeline.destination_client()
    except ConfigFieldMissingException as exc:
        if is_lake(pipeline.destination) and "BUCKET_URL" in missing_settings(exc):
            raise UserError("The filesystem destination has no folder or bucket to write to: set "
                            "DESTINATION__FILESYSTEM__BUCKET_URL, e.g. file:///srv/gong_lake or s3://bucket/gong "
                            "(see README).") from None
        raise UserError(f"The {kind} destination has no credentials: set "
                        f"{missing_settings(exc)} (in the environment or .dlt/secrets.toml, see README).") from None
    except InvalidNativeValue:
        # An empty or malformed connection string (dlt's message would list every way to write one).
        raise UsageError(f"The {kind} destination's credentials cannot be read: set DESTINATION__{kind.upper()}"
                         "__CREDENTIALS to a connection URL, e.g. postgresql://user:password@host:5432/database "
                         "(see README).") from None
    if is_lake(pipeline.destination):
        try:
            import deltalake  # noqa: F401
        except ImportError:
            raise UserError("The filesystem destination writes Delta tables, which needs the deltalake package: "
                            ".venv/bin/pip install -r requirements.lock.") from None
    if is_duckdb(pipeline.destination):
        database = duckdb_file(pipeline)
        if database is not None and Path(database).stem == pipeline.dataset_name:
            raise UsageError(f"The DuckDB file {database} is named like the dataset {pipeline.dataset_name!r}, which "
                             "DuckDB cannot tell apart: choose another file (DESTINATION__DUCKDB__CREDENTIALS) or "
                             "another --dataset.")


def duckdb_file(pipeline: Any) -> Optional[str]:
    """The path of the pipeline's DuckDB database file; None for another destination or an open connection."""
    if not is_duckdb(pipeline.destination):
        return None
    database = getattr(getattr(pipeline.destination_client().config, "credentials", None), "database", None)
    return database if isinstance(database, str) and database != ":memory:" else None


def file_format(destination: Any, arrow: bool) -> Optional[str]:
    """The file format a table is loaded in: Parquet into DuckDB (~6x faster to load than INSERT files and far
    less memory, bench/RESULTS.md) and into a lake (its Delta tables are Parquet files); elsewhere the
    destination's own choice, but tables yielded as Arrow go as Parquet where the destination takes it
    natively, else as CSV (Postgres takes Parquet only through ADBC, not installed: dlt would warn for every
    table and convert). None: the destination's preferred format."""
    if is_duckdb(destination) or is_lake(destination):
        return "parquet"
    if not arrow:
        return "preferred"
    caps = destination.capabilities()
    supported = caps.supported_loader_file_formats or []
    if "parquet" in supported and caps.loader_file_format_selector is None:
        return "parquet"
    return "csv" if "csv" in supported else "preferred"


# ------------------------------------------------------------------------------------------------ the lake
#
# dlt's filesystem destination writes plain Parquet (or JSONL) files by default, and cannot merge them: it
# falls back to append, so every lookback would add the calls it re-reads once more. Its Delta tables merge
# (dlt 1.31: strategies upsert, insert-only and cdc; not delete-insert, which every other destination uses
# here), so a lake always gets Delta tables, merged by `upsert` on each table's primary key. Upsert updates
# and inserts rows but never deletes one, and dlt merges each Delta table alone (a nested table on its own
# row id), so the two ways a re-synced record replaces its rows elsewhere are done after each load here:
# the nested rows (a call's parties, trackers...) its root no longer has, and the rows of a table merged on
# a merge key (a call's sentences, its access list) that the new load did not bring. dlt stamps only root
# rows with their load id: a lake's nested rows also carry their root's, in ROOT_LOAD_ID (dlt's normalizer
# propagates it, as it propagates the root's `_dlt_id` into `_dlt_root_id`).
LAKE_TABLE_FORMAT = "delta"
ROOT_LOAD_ID = "_dlt_root_load_id"


def is_lake(destination: Any) -> bool:
    """Whether `destination` is dlt's filesystem destination (a folder, or a bucket of S3, GCS or Azure)."""
    return destination_type(destination) == "filesystem"


def check_lake(destination: Any, reconcile: bool) -> None:
    """Raises UsageError for what a lake cannot do: reconcile deletes with SQL in the warehouse."""
    if reconcile and is_lake(destination):
        raise UsageError("--reconcile deletes vanished calls with SQL, which the filesystem destination does not "
                         "run: reconcile in a SQL warehouse (e.g. --destination duckdb), or drop --reconcile.")


def as_lake_table(resource: Any, schema: Any, destination: Any, primary_key: Optional[Sequence[str]] = None,
                  merge_key: Sequence[str] = ()) -> Any:
    """On a lake, makes `resource`'s table (and `schema`'s, which an earlier run may have stored merged by
    delete-insert) a Delta table merged by upsert on `primary_key` (default: the resource's), its merge key
    dropped (upsert ignores one, with a warning), its nested rows stamped with its load id (ROOT_LOAD_ID);
    elsewhere leaves both as they are. Returns the resource."""
    if not is_lake(destination):
        return resource
    keys = list(primary_key or _names(resource.compute_table_schema().get("columns"), "primary_key"))
    resource.apply_hints(table_format=LAKE_TABLE_FORMAT, write_disposition={"disposition": "merge",
                                                                            "strategy": "upsert"},
                         primary_key=keys, merge_key="")
    columns: dict[str, Any] = {key: {"name": key, "merge_key": False} for key in merge_key}
    for key in keys:
        columns[key] = {"name": key, "primary_key": True, "merge_key": False, "nullable": False}
    name = resource.table_name if isinstance(resource.table_name, str) else resource.name
    schema.data_item_normalizer.update_normalizer_config(
        schema, {"propagation": {"tables": {name: {"_dlt_load_id": ROOT_LOAD_ID}}}})
    table = schema.tables.get(name)
    if table is not None:
        stored = table.get("columns") or {}
        schema.update_table({"name": name, "table_format": LAKE_TABLE_FORMAT, "write_disposition": "merge",
                             "x-merge-strategy": "upsert",
                             "columns": {k: {**stored.get(k, {}), **v} for k, v in columns.items()}})
    return resource


def _names(columns: Any, hint: str) -> list[str]:
    return [name for name, column in (columns or {}).items() if column.get(hint)]


def drop_replaced_rows(pipeline: Any, info: Any, merge_keys: Optional[dict[str, Sequence[str]]] = None) -> int:
    """On a lake, after a load (`info`, dlt's LoadInfo): deletes the rows a record re-synced by that load no
    longer has, as delete-insert does in a SQL warehouse. Returns how many rows were deleted (0 elsewhere).

    - nested rows (`_dlt_root_id`) of a root row of the load, loaded with an earlier root (ROOT_LOAD_ID): upsert
      rewrites every nested row a root still has, so the older ones are gone from the record;
    - rows of a table merged on a merge key (`merge_keys`, default the catalog's: a call's sentences and access
      list) whose key the load brought, loaded earlier than the load's rows of that key.

    A load killed before this ran leaves such rows until the record is re-synced again."""
    if info is None or not is_lake(pipeline.destination):
        return 0
    load_ids = [str(i) for i in getattr(info, "loads_ids", None) or []]
    if not load_ids:
        return 0
    from dlt.common.destination.exceptions import DestinationUndefinedEntity
    from dlt.common.schema.utils import get_nested_tables, is_nested_table

    if merge_keys is None:
        from sources.gong.catalog import CATALOG

        merge_keys = {e.name: e.merge_key for e in CATALOG if e.merge_key}
    tables = pipeline.default_schema.tables
    loaded = {job.job_file_info.table_name for package in info.load_packages
              for job in package.jobs.get("completed_jobs", [])}
    deleted = 0
    with pipeline.destination_client() as client:
        def open_table(name: str) -> Any:
            try:
                return client.load_open_table(LAKE_TABLE_FORMAT, name)
            except DestinationUndefinedEntity:
                return None

        for name in sorted(loaded):
            table = tables.get(name)
            if table is None or is_nested_table(table) or table.get("table_format") != LAKE_TABLE_FORMAT:
                continue
            nested = [t["name"] for t in get_nested_tables(tables, name)[1:]]
            keys = list(merge_keys.get(name) or ())
            if not nested and not keys:
                continue
            stored = open_table(name)
            if stored is None:
                continue
            if nested:
                roots = _latest(stored, ["_dlt_id"], load_ids)
                for child in nested:
                    target = open_table(child) if roots.num_rows else None
                    # (a table written before its rows carried their root's load id is left as it is)
                    if target is not None and ROOT_LOAD_ID in {f.name for f in target.schema().fields}:
                        deleted += _delete_older(target, roots, {"_dlt_root_id": "_dlt_id"}, ROOT_LOAD_ID)
            if keys:
                latest = _latest(stored, keys, load_ids)
                if latest.num_rows:
                    deleted += _delete_older(stored, latest, {k: k for k in keys})
    if deleted:
        logger.info("the lake: %d rows that re-synced records no longer have were deleted", deleted)
    return deleted


def _latest(table: Any, keys: list[str], load_ids: list[str]) -> Any:
    """The distinct `keys` of `table`'s rows loaded by `load_ids`, each with the latest of those load ids (an
    Arrow table; queried with deltalake's own engine, which skips the files of other loads)."""
    import pyarrow as pa
    from deltalake import QueryBuilder

    loads = ", ".join(f"'{load_id}'" for load_id in load_ids if re.fullmatch(r"[0-9.]+", load_id)) or "''"
    columns = ", ".join(f'"{key}"' for key in keys)
    reader = QueryBuilder().register("loaded", table).execute(
        f'SELECT {columns}, max("_dlt_load_id") AS "_dlt_load_id" FROM loaded WHERE "_dlt_load_id" IN ({loads}) '
        f"GROUP BY {columns}")
    return pa.table(reader.read_all())


def _delete_older(target: Any, source: Any, on: dict[str, str], load_id: str = "_dlt_load_id") -> int:
    """Deletes the rows of Delta table `target` that match a row of `source` on `on` (target column: source
    column) and whose `load_id` column is not the source row's load id. Returns how many."""
    predicate = " AND ".join([*(f"target.{t} = source.{s}" for t, s in on.items()),
                              f"target.{load_id} <> source._dlt_load_id"])
    metrics = target.merge(source=source, predicate=predicate, source_alias="source",
                           target_alias="target").when_matched_delete().execute()
    return int(metrics.get("num_target_rows_deleted", 0) or 0)


class DestinationSwitchNote(logging.Filter):
    """Turns dlt's warning that a pipeline's state names another destination (dlt then loads into the one
    given, which is what the user asked for) into one line of the project's progress output.

    The one place that reads a dlt message: it matches dlt 1.x's wording ("The destination <type>:<name> in
    state differs from destination <type>:<name> in pipeline"); if dlt words it otherwise, its own warning
    shows again, nothing else changes.
    """

    _SAID = re.compile(r"The destination (\S+?):\S* in state differs from destination (\S+?):\S* in pipeline")

    def filter(self, record: logging.LogRecord) -> bool:
        said = self._SAID.search(record.getMessage())
        if said is None:
            return True
        before, now = (name.rsplit(".", 1)[-1] for name in said.groups())
        logging.getLogger("gong_sync.destinations").info(
            "this pipeline loaded into %s before and loads into %s now; give each warehouse its own "
            "--pipeline-name to keep their states apart", before, now)
        return False


def note_destination_switches() -> None:
    """Installs `DestinationSwitchNote` on dlt's logger (once)."""
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(f, DestinationSwitchNote) for f in dlt_logger.filters):
        dlt_logger.addFilter(DestinationSwitchNote())
