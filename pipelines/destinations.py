"""Where a sync writes: the destination named on the command line, made ready before anything is read.

Chooses the default DuckDB file, accepts a Postgres URL without a password (trust or peer auth), refuses a
DuckDB file named like the dataset, names the setting to fill in when credentials are missing, and picks
the file format each table is loaded in.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError

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
        raise UserError(f"The {kind} destination has no credentials: set "
                        f"{missing_settings(exc)} (in the environment or .dlt/secrets.toml, see README).") from None
    except InvalidNativeValue:
        # An empty or malformed connection string (dlt's message would list every way to write one).
        raise UsageError(f"The {kind} destination's credentials cannot be read: set DESTINATION__{kind.upper()}"
                         "__CREDENTIALS to a connection URL, e.g. postgresql://user:password@host:5432/database "
                         "(see README).") from None
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
    less memory, bench/RESULTS.md); elsewhere the destination's own choice, but tables yielded as Arrow go as
    Parquet where the destination takes it natively, else as CSV (Postgres takes Parquet only through ADBC,
    not installed: dlt would warn for every table and convert). None: the destination's preferred format."""
    if is_duckdb(destination):
        return "parquet"
    if not arrow:
        return "preferred"
    caps = destination.capabilities()
    supported = caps.supported_loader_file_formats or []
    if "parquet" in supported and caps.loader_file_format_selector is None:
        return "parquet"
    return "csv" if "csv" in supported else "preferred"


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
