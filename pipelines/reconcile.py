"""Reconcile: the calls Gong no longer returns (deleted, or made private) leave the warehouse, or are marked.

Gong has no "deleted since" list. A reconcile run reads a range again; every call stored for that range
that Gong did not return is deleted, with every row that describes it: the calls' nested tables (by
their root key) and the tables that follow the calls (transcripts, call access, by `call_id`). The
deletes run in one transaction, after the range's data was loaded.

With `soft` (`--reconcile --soft-delete`), the same rows stay and are marked instead: `is_deleted` true and
`deleted_at` the time of the reconcile that first missed the call (a later reconcile keeps that time). The
two columns are added to those tables by the first soft reconcile (they are not dlt's: the rows a sync
loads leave them NULL), so a call that comes back (made public again) is loaded over its marked rows and
is no longer marked. Analysts filter `WHERE is_deleted IS NOT TRUE`.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("gong_sync.pipeline")

# Ids per DELETE statement (a statement's parameters are limited, e.g. 32,767 in Postgres' driver).
BATCH = 500


def delete_vanished_calls(pipeline: Any, seen: set[str], start: Any, end: Any, soft: bool = False,
                          now: Any = None) -> int:
    """Deletes (or with `soft`, marks deleted at `now`) the calls stored with a start in [start, end) whose id
    is not in `seen`, with all their rows; returns how many calls were deleted or newly marked."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    from sources.gong.catalog import BY_NAME

    schema = pipeline.default_schema
    if "calls" not in schema.tables:
        return 0
    try:
        with pipeline.sql_client() as sql:
            calls = sql.make_qualified_table_name("calls")
            marked = soft and _has_column(sql, "calls", "is_deleted")
            rows = sql.execute_sql(f"SELECT id FROM {calls} WHERE started >= %s AND started < %s"
                                   + (" AND is_deleted IS NOT TRUE" if marked else ""), start, end)
            gone = sorted({str(r[0]) for r in rows or []} - seen)
            logger.info("reconcile: %d calls stored in the range, %d of them no longer in Gong", len(rows or []),
                        len(gone))
            if not gone:
                return 0
            stored = set(sql.execute_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", sql.dataset_name) or [])
            stored_names = {str(r[0]) for r in stored}
            nested = [name for name in schema.tables if name in stored_names and _root(schema.tables, name) == "calls"
                      and name != "calls"]
            following = [e.name for e in BY_NAME.values() if e.follows_calls and e.name in stored_names]
            if soft:
                _mark(sql, calls, gone, nested, following, now)
                return len(gone)
            with sql.begin_transaction():
                for i in range(0, len(gone), BATCH):
                    ids = gone[i:i + BATCH]
                    marks = ", ".join(["%s"] * len(ids))
                    roots = f"SELECT _dlt_id FROM {calls} WHERE id IN ({marks})"
                    for name in nested:
                        sql.execute_sql(f"DELETE FROM {sql.make_qualified_table_name(name)} WHERE _dlt_root_id IN "
                                        f"({roots})", *ids)
                    for name in following:
                        sql.execute_sql(f"DELETE FROM {sql.make_qualified_table_name(name)} WHERE call_id IN "
                                        f"({marks})", *ids)
                    sql.execute_sql(f"DELETE FROM {calls} WHERE id IN ({marks})", *ids)
    except DatabaseUndefinedRelation:
        return 0
    return len(gone)


def _mark(sql: Any, calls: str, gone: list[str], nested: list[str], following: list[str], now: Any) -> None:
    """Marks the rows of the calls `gone` deleted at `now` (the columns added first), in one transaction."""
    import pendulum

    when = now or pendulum.now("UTC")
    tables = ["calls", *nested, *following]
    with sql.begin_transaction():
        for name in tables:
            table = sql.make_qualified_table_name(name)
            for column, kind in (("is_deleted", "BOOLEAN"), ("deleted_at", "TIMESTAMP WITH TIME ZONE")):
                if not _has_column(sql, name, column):
                    sql.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for i in range(0, len(gone), BATCH):
            ids = gone[i:i + BATCH]
            marks = ", ".join(["%s"] * len(ids))
            mark = "SET is_deleted = TRUE, deleted_at = %s"
            roots = f"SELECT _dlt_id FROM {calls} WHERE id IN ({marks})"
            for name in nested:  # before the calls' own rows: their root key is looked up there
                sql.execute_sql(f"UPDATE {sql.make_qualified_table_name(name)} {mark} WHERE _dlt_root_id IN ({roots}) "
                                "AND is_deleted IS NOT TRUE", when, *ids)
            for name in following:
                sql.execute_sql(f"UPDATE {sql.make_qualified_table_name(name)} {mark} WHERE call_id IN ({marks}) "
                                "AND is_deleted IS NOT TRUE", when, *ids)
            sql.execute_sql(f"UPDATE {calls} {mark} WHERE id IN ({marks}) AND is_deleted IS NOT TRUE", when, *ids)


def _has_column(sql: Any, table: str, column: str) -> bool:
    rows = sql.execute_sql("SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                           "AND column_name = %s", sql.dataset_name, table, column)
    return bool(rows)


def _root(tables: dict[str, Any], name: str) -> str:
    """The root table of a nested table, by its `parent` hints."""
    while tables.get(name, {}).get("parent"):
        name = tables[name]["parent"]
    return name
