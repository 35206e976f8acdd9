"""The nested tables of a page of rows, built as Arrow tables instead of by dlt's normalizer.

dlt's relational normalizer turns every list in a row into a nested table, one Python dict at a time,
and then checks and writes each of those rows on its own: for a call (~120 nested rows: parties,
trackers and their occurrences, outline items, CRM context fields...) that is most of a sync's CPU.
`split_nested` does the same split in one pass and hands back the nested rows as typed Arrow tables,
with the very rows, names and keys dlt would make (`_dlt_id` from the parent's id, the table and the
position, `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_root_id`), while the root rows, without their lists,
still go through dlt. `NestedTables` collects them during an extract, and `write_into_current_package`
adds them to the load package being extracted as Parquet files, which dlt's normalizer passes on and its
loader merges like any nested table: the tables, columns and keys do not change. (Parquet only: for a
destination that loads CSV, dlt would read an empty string back as NULL, so the runner keeps dlt's
normalizer there.) The rows it splits are the ones `rows.call_row` makes for dlt, which carry no empty
string (Gong's "" is NULL in every table, on either path) and already hold every business key, unit-named
offset and renamed id of the table contract: the split adds nothing of its own, so that it stays exactly
what dlt's normalizer makes of the same rows (tests/test_nested.py compares them, empty strings included).

Anything dlt would decide differently (a column the schema does not know yet, a value of another type
than its column, a list of lists, a column kept as JSON) makes `split_nested` decline the whole page,
which then goes through dlt's normalizer as before. It follows the normalizer settings this project's
schema uses (snake_case names, dlt's default nesting depth, the root key propagated to nested tables);
a schema configured otherwise should sync with `--dlt-normalizer`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import ContextDefaultCannotBeCreated
from dlt.common.data_types.type_helpers import coerce_value, py_type_to_sc_type
from dlt.common.normalizers.json import helpers
from dlt.common.schema import Schema
from dlt.common.storages.load_package import LoadPackageStateInjectableContext, ParsedLoadJobFileName
from dlt.common.utils import digest128

__all__ = ["NestedTables", "root_row_id", "schema_agrees", "split_nested", "write_into_current_package"]

ROW_ID, PARENT_ID, LIST_IDX, ROOT_ID, VALUE = "_dlt_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_root_id", "value"
EMPTY_KEY = "_empty"  # dlt's name for an empty key
DEPTH = 1000  # dlt's default max_nesting: no column is kept as JSON for being nested too deep

_ARROW_TYPES = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
# Python types whose values a column of the given type takes as they are (bool is not an int here).
_EXACT = {"text": (str,), "bigint": (int,), "double": (float,), "bool": (bool,)}


class Declined(Exception):
    """A page holds something dlt's normalizer must decide (see the module docstring)."""


def root_row_id(table: str, key: str) -> str:
    """The `_dlt_id` of a root row whose nested rows are built here: derived from its key, so that the
    nested rows can name it before dlt sees the row (dlt keeps a `_dlt_id` a row already has)."""
    return digest128(f"{table}:{key}")


class _Names:
    """dlt's identifiers for one schema, cached (the same few keys come back on every row)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.naming = schema.naming
        self._ids: dict[str, str] = {}
        self._tables: dict[str, str] = {}
        self._paths: dict[tuple[str, ...], str] = {}
        self._nested: dict[tuple[str, str], bool] = {}

    def ident(self, key: str) -> str:
        name = self._ids.get(key)
        if name is None:
            name = helpers.normalize_identifier(self.schema, self.naming, key) if key and not key.isspace() \
                else EMPTY_KEY
            self._ids[key] = name
        return name

    def table_ident(self, key: str) -> str:
        name = self._tables.get(key)
        if name is None:
            name = self._tables[key] = helpers.normalize_table_identifier(self.schema, self.naming, key)
        return name

    def path(self, parts: tuple[str, ...]) -> str:
        name = self._paths.get(parts)
        if name is None:
            name = self._paths[parts] = helpers.shorten_fragments(self.naming, *parts)
        return name

    def kept_whole(self, table: str, column: str) -> bool:
        """Whether dlt keeps this dict or list as one JSON value instead of flattening it."""
        found = self._nested.get((table, column))
        if found is None:
            found = self._nested[(table, column)] = helpers.is_nested_type(self.schema, table, column, DEPTH)
        return found


def _flatten(names: _Names, table: str, row: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, ...], list]]:
    """One row's own columns (nested dicts joined with `__`) and its lists by path, as dlt flattens them."""
    flat: dict[str, Any] = {}
    lists: dict[tuple[str, ...], list] = {}
    known = names._ids
    stack: list[tuple[dict[str, Any], tuple[str, ...]]] = [(row, ())]
    while stack:
        current, path = stack.pop()
        for key, value in current.items():
            ident = known.get(key) or names.ident(key)
            column = names.path((*path, ident)) if path else ident
            kind = type(value)
            if kind is dict or kind is list:
                if names.kept_whole(table, column):
                    raise Declined(f"{table}.{column} is kept as JSON")
                if kind is dict:
                    stack.append((value, (*path, ident)))
                else:
                    lists[(*path, names.table_ident(key))] = value
                continue
            flat[column] = value
    return flat, lists


def _nested_rows(names: _Names, lists: dict[tuple[str, ...], list], parent_path: tuple[str, ...], parent_id: str,
                 root_id: str, out: dict[str, list[dict[str, Any]]]) -> None:
    row_hash = helpers.get_nested_row_hash
    for list_path, items in lists.items():
        path = (*parent_path, *list_path)
        table = names.path(path)
        rows = out[table]
        for idx, item in enumerate(items):
            kind = type(item)
            if kind is dict:
                flat, sub = _flatten(names, table, item)
                flat[ROOT_ID] = root_id
                row_id = flat.get(ROW_ID)
                if not row_id:
                    row_id = flat[ROW_ID] = row_hash(parent_id, table, idx)
                    flat[PARENT_ID] = parent_id
                    flat[LIST_IDX] = idx
                rows.append(flat)
                if sub:
                    _nested_rows(names, sub, path, row_id, root_id, out)
            elif kind is list:
                raise Declined(f"{table} holds a list of lists")
            else:
                rows.append({VALUE: item, ROOT_ID: root_id, PARENT_ID: parent_id, LIST_IDX: idx,
                             ROW_ID: row_hash(parent_id, table, idx)})


def _column(table: str, column: str, values: list[Any], spec: Optional[dict[str, Any]]) -> Optional[pa.Array]:
    """The values as an Arrow array of the column's type, coerced as dlt would; None for a column that
    holds only nulls and that the schema does not know (dlt would not create it)."""
    if spec is None or not spec.get("data_type"):
        if all(v is None for v in values):
            return None
        raise Declined(f"{table}.{column} is a new column")
    data_type = spec["data_type"]
    arrow_type = _ARROW_TYPES.get(data_type)
    if arrow_type is None:
        raise Declined(f"{table}.{column} is of type {data_type}")
    exact = _EXACT.get(data_type, ())
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds.issubset(exact):
        coerced = []
        for v in values:
            if v is None or type(v) in exact:
                coerced.append(v)
                continue
            try:
                coerced.append(coerce_value(data_type, py_type_to_sc_type(type(v)), v))
            except Exception:  # dlt would make a variant column: leave the page to dlt
                raise Declined(f"{table}.{column} holds a {type(v).__name__}") from None
        values = coerced
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise Declined(f"{table}.{column} does not fit {data_type}") from None


def _columns_signature(schema: Schema, table: str, present: Iterable[str]) -> tuple[Any, ...]:
    """What `_to_arrow` reads of the schema for a table with the `present` columns: the known ones in the
    schema's order with their type and nullability, and the ones the schema does not know."""
    known = schema.get_table_columns(table) if table in schema.tables else {}
    present = set(present)
    return (tuple((c, spec.get("data_type"), bool(spec.get("nullable", True))) for c, spec in known.items()
                  if c in present), tuple(sorted(present.difference(known))))


def _to_arrow(schema: Schema, table: str, rows: list[dict[str, Any]],
              facts: Optional[dict[str, Any]] = None) -> pa.Table:
    known = schema.get_table_columns(table) if table in schema.tables else {}
    present = set().union(*rows)
    if facts is not None:
        facts["tables"][table] = (frozenset(present), _columns_signature(schema, table, present))
    arrays, fields = [], []
    # In the schema's order, so that dlt can take the file as it is.
    for column in [*(c for c in known if c in present), *sorted(present.difference(known))]:
        array = _column(table, column, [row.get(column) for row in rows], known.get(column))
        if array is not None:
            arrays.append(array)
            fields.append(pa.field(column, array.type, nullable=bool((known.get(column) or {}).get("nullable", True))))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def split_nested(rows: Sequence[dict[str, Any]], table: str, key: str, schema: Schema,
                 seen: Optional[set[str]] = None, facts: Optional[dict[str, Any]] = None,
                 ) -> Optional[tuple[list[dict[str, Any]], dict[str, pa.Table]]]:
    """Splits root rows of `table` (keyed by their field `key`) into the rows without their lists and
    the nested tables dlt would make of those lists, as Arrow tables by name.

    Each root row gets a `_dlt_id` derived from its key (`root_row_id`). A row whose key is in `seen`
    (already taken in this load) is left out, since two copies of it would share their nested rows'
    ids; the keys taken are added to `seen`. Returns None when dlt must normalize the page itself.
    A `facts` dict is filled with everything of `schema` the split read (`schema_agrees` tells whether
    another schema would have given the very same split).
    """
    names = _Names(schema)
    if facts is not None:
        facts.update(naming=_naming_facts(schema), tables={}, whole=names._nested)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots: list[dict[str, Any]] = []
    batch_keys: set[str] = set()
    root_path = (table,)
    try:
        for row in rows:
            row_key = str(row.get(key))
            if row_key in batch_keys or (seen is not None and row_key in seen):
                continue
            batch_keys.add(row_key)
            root_id = root_row_id(table, row_key)
            root = _without_lists(row)
            root[ROW_ID] = root_id
            _, lists = _flatten(names, table, row)
            _nested_rows(names, lists, root_path, root_id, root_id, out)
            roots.append(root)
        tables = {name: _to_arrow(schema, name, nested, facts) for name, nested in out.items() if nested}
    except Declined:
        return None
    if seen is not None:
        seen.update(batch_keys)
    return roots, tables


def _naming_facts(schema: Schema) -> tuple[Any, ...]:
    naming = schema.naming
    return (type(naming).__module__, type(naming).__qualname__, getattr(naming, "max_length", None),
            schema._normalizers_config.get("use_break_path_on_normalize", True))


def schema_agrees(schema: Schema, facts: dict[str, Any]) -> bool:
    """Whether `split_nested` would split the same rows the same way with `schema` as with the schema it
    recorded `facts` of (e.g. a copy taken earlier, used off the resource's thread): the same naming,
    the same answer for every dict or list it met, the same columns, types and order for every table."""
    try:
        if facts.get("naming") != _naming_facts(schema):
            return False
        for (table, column), whole in facts["whole"].items():
            if helpers.is_nested_type(schema, table, column, DEPTH) != whole:
                return False
        return all(_columns_signature(schema, table, present) == signature
                   for table, (present, signature) in facts["tables"].items())
    except (KeyError, TypeError, AttributeError):
        return False


def _without_lists(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every list left out, also inside nested dicts (they become nested tables)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        kind = type(value)
        if kind is list:
            continue
        out[key] = _without_lists(value) if kind is dict else value
    return out


class NestedTables:
    """The nested tables a resource built during one extract, waiting to be added to its package."""

    def __init__(self) -> None:
        self._tables: dict[str, list[pa.Table]] = defaultdict(list)
        self.seen: set[str] = set()  # root keys taken in this extract

    def add(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            self._tables[name].append(table)

    def take(self) -> dict[str, pa.Table]:
        """Every table collected since the last take, one per name; the collector starts over."""
        tables = {name: pa.concat_tables(parts, promote_options="permissive") for name, parts in self._tables.items()}
        self._tables.clear()
        self.seen.clear()
        return tables

    def __bool__(self) -> bool:
        return bool(self._tables)


def write_into_current_package(tables: dict[str, pa.Table]) -> int:
    """Writes `tables` as Parquet job files into the load package being extracted; returns the rows.

    Called by a resource while dlt extracts: the files join the package's own files before dlt commits
    it, so a package never holds calls without their nested tables (a run killed before the commit leaves
    no package at all). dlt's normalize step takes them like the Parquet files of an Arrow resource.
    """
    if not tables:
        return 0
    try:
        package = Container()[LoadPackageStateInjectableContext]
    except ContextDefaultCannotBeCreated:
        raise RuntimeError("nested tables can only be written while dlt extracts a load package") from None
    folder = package.storage.storage.make_full_path(package.storage.get_job_state_folder_path(package.load_id,
                                                                                              "new_jobs"))
    rows = 0
    for name, table in tables.items():
        file_name = ParsedLoadJobFileName(name, ParsedLoadJobFileName.new_file_id(), 0, "parquet").file_name()
        pq.write_table(table, os.path.join(folder, file_name))
        rows += table.num_rows
    return rows
