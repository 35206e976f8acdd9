"""Reads CRM rows from any SQL database through SQLAlchemy, per object type, since a watermark."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .mapping import MappingError, ObjectMapping

logger = logging.getLogger("gong_sync.crm.reader")

# The SQL filter is widened by a day so that time zones and text-typed date columns never hide a row;
# the exact "modified after the watermark" test is then made in Python on UTC datetimes.
SQL_FILTER_SLACK = timedelta(days=1)
_SECRET_URL = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


class SourceError(Exception):
    """The SQL source cannot be reached or read; the message is meant for the user (no password)."""


def scrub(text: str) -> str:
    """Removes passwords from connection strings inside `text`."""
    return _SECRET_URL.sub(r"\1***@", text)


# Backends that keep a database in one local file and create that file, empty, on first connect.
_FILE_BACKENDS = ("duckdb", "sqlite")


def database_file(url: str | sa.URL) -> Optional[Path]:
    """Returns the local file a DuckDB or SQLite URL names, or None (a server, in-memory, MotherDuck)."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return None
    name = parsed.database
    if parsed.get_backend_name() not in _FILE_BACKENDS or not name or name == ":memory:":
        return None
    if name.startswith(("md:", "motherduck:", "file:")):
        return None
    return Path(name)


def same_database(url: str, other: str) -> bool:
    """Returns whether two URLs name the same database (the same local file counts, however spelled)."""
    if url == other:
        return True
    mine, theirs = database_file(url), database_file(other)
    return (mine is not None and theirs is not None and sa.make_url(url).get_backend_name()
            == sa.make_url(other).get_backend_name() and mine.resolve() == theirs.resolve())


def make_engine(url: str, read_only: bool = False) -> Engine:
    """Returns an SQLAlchemy engine for `url` (DuckDB opened read-only when `read_only`), or raises SourceError.

    Nothing is connected yet, so no database file is created here.
    """
    try:
        parsed = sa.make_url(url)
        # DuckDB refuses writes on a read-only connection and never creates its file; other backends rely on
        # the loader sending no writes.
        connect_args = {"read_only": True} if read_only and parsed.get_backend_name() == "duckdb" else {}
        return sa.create_engine(parsed, connect_args=connect_args)
    except Exception as exc:  # bad URL syntax, unknown dialect, missing driver
        raise SourceError(scrub(f"The database URL {url!r} cannot be used ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}): give an SQLAlchemy URL "
                                "like postgresql://user:password@host/db.")) from None


def to_utc(value: Any) -> Optional[datetime]:
    """Returns `value` (datetime, date or ISO text) as an aware UTC datetime, or None when it is not a date.

    Naive values are taken as UTC.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            return to_utc(datetime.fromisoformat(text))
        except ValueError:
            return None
    return None


class CrmSource:
    """One SQL database holding the CRM tables, views or queries named by the mapping."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check(self, mappings: Sequence[ObjectMapping]) -> None:
        """Raises SourceError or MappingError unless the database opens and has every column `mappings` name.

        Reads no rows (each source is queried with a false condition), so a mistake is found before anything
        is sent or logged.
        """
        with _Reading(self.engine, None):
            pass
        for mapping in mappings:
            with self._connect(mapping) as conn:
                result = conn.execute(sa.text(f"SELECT * FROM {self._source(mapping)} AS src WHERE 1 = 0"))
                self._columns(mapping, list(result.keys()))
                result.close()

    def read_changed(self, mapping: ObjectMapping, since: Optional[datetime]) -> list[dict[str, Any]]:
        """Returns the rows of `mapping` modified after `since` (all rows when None), oldest first.

        Each row maps the mapping's column names to values, plus `_modified` (aware UTC or None).
        """
        quote = self.engine.dialect.identifier_preparer.quote
        sql = f"SELECT * FROM {self._source(mapping)} AS src"
        params: dict[str, Any] = {}
        if since is not None:
            sql += f" WHERE src.{quote(mapping.modified_column)} >= :floor"
            params["floor"] = (since - SQL_FILTER_SLACK).replace(tzinfo=None)
        sql += f" ORDER BY src.{quote(mapping.modified_column)}"
        rows: list[dict[str, Any]] = []
        with self._connect(mapping) as conn:
            result = conn.execute(sa.text(sql), params)
            columns = self._columns(mapping, list(result.keys()))
            for record in result:
                values = record._mapping
                row = {name: values[actual] for name, actual in columns.items()}
                row["_modified"] = to_utc(row[mapping.modified_column])
                if since is None or row["_modified"] is None or row["_modified"] > since:
                    rows.append(row)
        logger.info("%s: %d row(s) changed%s", mapping.object_type, len(rows),
                    f" since {since.isoformat()}" if since else "")
        return rows

    def existing_ids(self, mapping: ObjectMapping) -> set[str]:
        """Returns the objectIds of every row of `mapping` that is not flagged deleted."""
        from .validate import is_true

        ids: set[str] = set()
        with self._connect(mapping) as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {self._source(mapping)} AS src"))
            columns = self._columns(mapping, list(result.keys()))
            id_col = columns[mapping.id_column]
            deleted_col = columns.get(mapping.deleted_column or "")
            for record in result:
                values = record._mapping
                if deleted_col is not None and is_true(values[deleted_col]):
                    continue
                if values[id_col] is not None:
                    ids.add(str(values[id_col]))
        return ids

    def _source(self, mapping: ObjectMapping) -> str:
        if mapping.query is not None:
            return f"({mapping.query.strip().rstrip(';')})"
        quote = self.engine.dialect.identifier_preparer.quote
        return ".".join(quote(part) for part in str(mapping.table).split("."))

    def _connect(self, mapping: ObjectMapping) -> _Reading:
        return _Reading(self.engine, mapping)

    @staticmethod
    def _columns(mapping: ObjectMapping, keys: list[str]) -> dict[str, str]:
        """Mapping column name -> the column the source returns (exact, else case-insensitive)."""
        wanted = {("modified_date", mapping.modified_column)}
        if mapping.deleted_column:
            wanted.add(("deleted", mapping.deleted_column))
        wanted |= {(f"fields.{k}", v) for k, v in mapping.fields.items()}
        wanted |= {(f"custom_fields.{c.unique_name}.column", c.column) for c in mapping.custom_fields if c.column}
        lower = {k.lower(): k for k in keys}
        out: dict[str, str] = {}
        for key, column in sorted(wanted):
            actual = column if column in keys else lower.get(column.lower())
            if actual is None:
                raise MappingError(
                    f"objects.{mapping.object_type}.{key} names the column {column!r}, which the source "
                    f"{'query' if mapping.query else mapping.table} does not have (it has: {', '.join(keys)})."
                )
            out[column] = actual
        return out


class _Reading:
    """A connection context that turns database errors into one-sentence SourceErrors."""

    def __init__(self, engine: Engine, mapping: Optional[ObjectMapping]) -> None:
        self.engine = engine
        self.mapping = mapping
        self.conn: Optional[sa.Connection] = None

    def __enter__(self) -> sa.Connection:
        path = database_file(self.engine.url)
        if path is not None and not path.is_file():
            # Connecting would create an empty database and then fail on its first table.
            raise SourceError(f"The CRM database file {path.absolute()} does not exist: pass --database-url with the "
                              "database that holds the CRM tables (a DuckDB file gong-sync wrote, or any "
                              "SQLAlchemy URL).")
        try:
            self.conn = self.engine.connect()
        except Exception as exc:
            raise SourceError(scrub(f"Could not connect to the CRM database {self.engine.url!r} "
                                    f"({_first_line(exc)}): check --database-url and that it is running.")) from None
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self.conn is not None:
            self.conn.close()
        if isinstance(exc, sa.exc.DBAPIError | sa.exc.StatementError) and self.mapping is not None:
            what = self.mapping.query and "query" or f"table {self.mapping.table}"
            raise SourceError(scrub(f"Reading {self.mapping.object_type} from the {what} failed "
                                    f"({_first_line(exc.orig if hasattr(exc, 'orig') else exc)}): check "
                                    f"objects.{self.mapping.object_type} in the mapping.")) from None
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
