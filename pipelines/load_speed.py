"""Less fixed work per load: what a sync's last load costs is what the run waits for after Gong's last answer.

Two measures (bench/RESULTS.md has the figures):

- `duckdb_load_session`: dlt opens and closes the DuckDB database several times per load (once for the
  schema, again whenever its loader threads have no job running, again to complete the package), and
  DuckDB checkpoints each time the last connection closes: ~13 ms for every table written since the
  last checkpoint, whatever the rows (~0.4 s for the 27 tables of calls and transcripts), staging tables
  and their rows included. Holding one connection of our own while dlt loads keeps the same database
  open (DuckDB shares one database per file within a process), so it checkpoints once per load, after
  dlt has emptied the staging tables it merged from (`load.truncate_staging_dataset`). Each load still
  ends checkpointed and closed.
- `speed_up_table_chains`: dlt walks the whole chain of a merged table once per table of that chain, and
  deep-copies every table schema of the chain at each step (the 26 tables of calls: thousands of copies
  per load, ~0.25 s). The same answer comes from one table per chain.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

logger = logging.getLogger("gong_sync.pipeline")

TRUNCATE_STAGING_KEY = "LOAD__TRUNCATE_STAGING_DATASET"


def is_duckdb(destination: Any) -> bool:
    """Whether `destination` is dlt's DuckDB destination, whatever name it was given (MotherDuck is not)."""
    return str(getattr(destination, "destination_type", "")).rsplit(".", 1)[-1] == "duckdb"


def duckdb_credentials(pipeline: Any) -> Optional[Any]:
    """The resolved credentials of the pipeline's DuckDB database file; None for any other destination,
    for a connection the caller opened (dlt leaves that open anyway), and for credentials that run their
    own statements on each new database (an `ATTACH` would then run twice on the database held open)."""
    if not is_duckdb(pipeline.destination):
        return None
    credentials = getattr(pipeline.destination_client().config, "credentials", None)
    if credentials is None or getattr(credentials, "conn_pool", None) is None or getattr(credentials, "statements",
                                                                                          None):
        return None
    external = getattr(credentials, "external_conn", None)
    if callable(external) and external() is not None:
        return None
    return credentials


@contextlib.contextmanager
def duckdb_load_session(credentials: Optional[Any]) -> Iterator[None]:
    """Keeps the DuckDB database of `credentials` open while dlt loads (see the module's docstring), and
    has dlt empty the staging tables at the end of the load unless the user configured that themselves
    (through the process's environment, which every pipeline of the process reads meanwhile: a sync holds
    its run lock, and the setting only saves work). Does nothing without credentials; a database that
    cannot be held is left to dlt, which reports what is wrong with it."""
    if credentials is None:
        yield
        return
    import dlt

    pool, conn, set_truncate, failed = credentials.conn_pool, None, False, False
    try:
        try:
            # dlt's own pool opens it as dlt's loader will (same configuration, else DuckDB refuses the
            # second connection to the file), and closes it when this borrow ends: the one checkpoint.
            conn = pool.borrow_conn()
        except Exception as exc:
            logger.debug("not holding the DuckDB database open during the load: %s", type(exc).__name__)
        set_truncate = TRUNCATE_STAGING_KEY not in os.environ and dlt.config.get(
            "load.truncate_staging_dataset") is None
        if set_truncate:
            os.environ[TRUNCATE_STAGING_KEY] = "true"
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if set_truncate:
            os.environ.pop(TRUNCATE_STAGING_KEY, None)
        if conn is not None:
            try:
                pool.return_conn(conn)  # the checkpoint
            except Exception as exc:
                if not failed:
                    raise
                # the load's own error says more
                logger.debug("closing the DuckDB database after a failed load: %s", type(exc).__name__)


def _one_table_per_root(schema_tables: dict[str, Any], tables: Iterable[str]) -> list[str]:
    from dlt.common.schema.utils import get_root_table

    by_root: dict[str, str] = {}
    for name in tables:
        by_root.setdefault(get_root_table(schema_tables, name)["name"], name)
    return list(by_root.values())


def speed_up_table_chains() -> bool:
    """Makes dlt's `_extend_tables_with_table_chain` walk each chain of tables once. Its answer is the union,
    over the tables given, of what it finds in each one's root chain, so one table per root gives the
    same answer (tests/test_load_speed.py compares both). Returns whether it is in place; leaves dlt as
    it is when the function is not the one this was written for."""
    import inspect

    from dlt.load import load as load_module
    from dlt.load import utils as load_utils

    original = load_utils._extend_tables_with_table_chain
    if getattr(original, "_gong_sync_one_per_root", False):
        return True
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return False
    if params != ["schema", "tables", "tables_with_jobs", "include_table_filter"] or getattr(
            load_module, "_extend_tables_with_table_chain", None) is not original:
        logger.debug("dlt's table chain function changed: not replaced")
        return False

    def extend_tables_with_table_chain(schema: Any, tables: Iterable[str], tables_with_jobs: Iterable[str],
                                       include_table_filter: Callable[[str], bool] = lambda t: True) -> Iterable[str]:
        return original(schema, _one_table_per_root(schema.tables, tables), tables_with_jobs, include_table_filter)

    extend_tables_with_table_chain._gong_sync_one_per_root = True  # type: ignore[attr-defined]
    extend_tables_with_table_chain.__wrapped__ = original  # type: ignore[attr-defined]
    load_utils._extend_tables_with_table_chain = extend_tables_with_table_chain
    load_module._extend_tables_with_table_chain = extend_tables_with_table_chain
    return True
