"""The upload log in the warehouse: every request, every rejected record, and the loader's own state.

`gong_crm_upload_log` has one row per upload request, written with status UPLOADING *before* the file is
sent, so a run that dies between upload and status leaves a row the next run polls instead of uploading
again. The watermark of an object type is the largest `watermark` of its requests that reached DONE.
`gong_crm_rejected_rows` lists each record that was not sent (validation) or that Gong refused (line
errors), with its objectId and the reason. `gong_crm_state` keeps the hash of the last pushed schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .reader import SourceError, database_file, scrub
from .validate import Rejection

# Statuses of a request: UPLOADING (row written, upload maybe sent), Gong's own PENDING, IN_PROGRESS,
# DONE, FAILED; LOST (Gong never received it); NOT_SENT (every changed row was rejected before upload).
OPEN_STATUSES = ("UPLOADING", "PENDING", "IN_PROGRESS")
WATERMARK_STATUSES = ("DONE", "NOT_SENT")
RETRY_STATUSES = ("FAILED", "LOST")

metadata = sa.MetaData()
upload_log = sa.Table(
    "gong_crm_upload_log", metadata,
    sa.Column("client_request_id", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("integration_id", sa.String(24), nullable=False),
    sa.Column("object_type", sa.String(16), nullable=False),
    sa.Column("file_name", sa.String(255)),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("line_count", sa.Integer),
    sa.Column("byte_count", sa.BigInteger),
    sa.Column("rejected_count", sa.Integer),
    # Exact ISO-8601 text (microseconds kept): some databases would round a DATETIME to the second.
    sa.Column("watermark", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("success_count", sa.Integer),
    sa.Column("error_count", sa.Integer),
    sa.Column("errors", sa.Text),
    sa.Column("uploaded_at_utc", sa.DateTime),
    sa.Column("finished_at_utc", sa.DateTime),
)
rejected_rows = sa.Table(
    "gong_crm_rejected_rows", metadata,
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("client_request_id", sa.String(128)),
    sa.Column("object_type", sa.String(16), nullable=False),
    sa.Column("object_id", sa.String(255), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("recorded_at_utc", sa.DateTime, nullable=False),
)
state = sa.Table(
    "gong_crm_state", metadata,
    sa.Column("state_key", sa.String(200), primary_key=True),
    sa.Column("state_value", sa.Text, nullable=False),
    sa.Column("updated_at_utc", sa.DateTime, nullable=False),
)


@dataclass
class LogRow:
    """One row of the upload log."""

    client_request_id: str
    run_id: str
    integration_id: str
    object_type: str
    file_name: Optional[str]
    content_hash: Optional[str]
    line_count: Optional[int]
    byte_count: Optional[int]
    rejected_count: Optional[int]
    watermark: Optional[str]
    status: str
    success_count: Optional[int] = None
    error_count: Optional[int] = None
    errors: Optional[str] = None
    uploaded_at_utc: Optional[datetime] = None
    finished_at_utc: Optional[datetime] = None


def utc_now() -> datetime:
    """Returns the current time as naive UTC (the log's columns are UTC without a zone, for portability)."""
    return datetime.now(UTC).replace(tzinfo=None)


class UploadLog:
    """The log tables in one SQL database (the warehouse by default)."""

    def __init__(self, engine: Engine, read_only: bool = False) -> None:
        """`read_only` (a dry run) reads the log if it is there and never writes or creates it."""
        self.engine = engine
        self.read_only = read_only
        self._ready = False

    def ensure(self) -> None:
        """Creates the log tables when missing (never in read-only mode)."""
        if self._ready or self.read_only:
            return
        self._ready = True
        self._run(lambda conn: metadata.create_all(conn, checkfirst=True))

    def exists(self) -> bool:
        """Returns whether the log table exists."""
        path = database_file(self.engine.url)
        if self.read_only and path is not None and not path.is_file():
            # Connecting would create the database file: a dry run must leave none behind.
            return False
        return bool(self._run(lambda conn: sa.inspect(conn).has_table(upload_log.name), write=False))

    def watermark(self, integration_id: str, object_type: str) -> Optional[datetime]:
        """Returns the latest modified time Gong has reported DONE for `object_type`, or None."""
        if self.read_only and not self.exists():
            return None
        query = sa.select(upload_log.c.watermark).where(
            upload_log.c.integration_id == integration_id, upload_log.c.object_type == object_type,
            upload_log.c.status.in_(WATERMARK_STATUSES), upload_log.c.watermark.is_not(None))
        values = self._run(lambda conn: [row[0] for row in conn.execute(query)], write=False)
        marks = [datetime.fromisoformat(v) for v in values]
        return max(marks) if marks else None

    def open_requests(self, integration_id: str) -> list[LogRow]:
        """Returns the requests whose outcome is not known yet (a crashed or timed-out run left them)."""
        query = sa.select(upload_log).where(upload_log.c.integration_id == integration_id,
                                            upload_log.c.status.in_(OPEN_STATUSES))
        return self._rows(query)

    def rows(self, run_id: Optional[str] = None) -> list[LogRow]:
        """Returns the log rows (of one run when given), in the order they were written."""
        query = sa.select(upload_log)
        if run_id is not None:
            query = query.where(upload_log.c.run_id == run_id)
        return sorted(self._rows(query), key=lambda r: (r.uploaded_at_utc or datetime.min, r.client_request_id))

    def get(self, client_request_id: str) -> Optional[LogRow]:
        """Returns the log row of one request, or None."""
        found = self._rows(sa.select(upload_log).where(upload_log.c.client_request_id == client_request_id))
        return found[0] if found else None

    def retries(self, content_hash: str) -> int:
        """Returns how many earlier uploads of exactly this content ended FAILED or LOST."""
        query = sa.select(sa.func.count()).select_from(upload_log).where(
            upload_log.c.content_hash == content_hash, upload_log.c.status.in_(RETRY_STATUSES))
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), write=False))

    def insert(self, row: LogRow) -> None:
        """Writes a new log row."""
        values = dict(row.__dict__)
        self._run(lambda conn: conn.execute(upload_log.insert().values(**values)))

    def update(self, client_request_id: str, **values: Any) -> None:
        """Updates columns of one log row."""
        statement = upload_log.update().where(upload_log.c.client_request_id == client_request_id)
        self._run(lambda conn: conn.execute(statement.values(**values)))

    def record_rejections(self, run_id: str, rejections: list[Rejection], stage: str,
                          client_request_id: Optional[str] = None) -> None:
        """Writes one row per rejected record."""
        if not rejections:
            return
        now = utc_now()
        values = [{"run_id": run_id, "client_request_id": client_request_id, "object_type": r.object_type,
                   "object_id": r.object_id[:255], "stage": stage, "reason": r.reason, "recorded_at_utc": now}
                  for r in rejections]
        self._run(lambda conn: conn.execute(rejected_rows.insert(), values))

    def rejections(self, run_id: Optional[str] = None) -> list[dict[str, Any]]:
        """Returns the rejected records (of one run when given)."""
        query = sa.select(rejected_rows)
        if run_id is not None:
            query = query.where(rejected_rows.c.run_id == run_id)
        return self._run(lambda conn: [dict(r._mapping) for r in conn.execute(query)], write=False)

    def get_state(self, key: str) -> Optional[str]:
        """Returns a stored state value, or None."""
        if self.read_only and not self.exists():
            return None
        query = sa.select(state.c.state_value).where(state.c.state_key == key)
        return self._run(lambda conn: conn.execute(query).scalar_one_or_none(), write=False)

    def set_state(self, key: str, value: str) -> None:
        """Stores a state value."""
        def write(conn: sa.Connection) -> None:
            conn.execute(state.delete().where(state.c.state_key == key))
            conn.execute(state.insert().values(state_key=key, state_value=value, updated_at_utc=utc_now()))
        self._run(write)

    def _rows(self, query: Any) -> list[LogRow]:
        return self._run(lambda conn: [LogRow(**dict(r._mapping)) for r in conn.execute(query)], write=False)

    def _run(self, work: Any, write: bool = True) -> Any:
        if write and self.read_only:
            raise RuntimeError("the upload log is read-only in a dry run")
        self.ensure()
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except sa.exc.SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", exc) or type(exc).__name__).strip().splitlines()
            raise SourceError(scrub(
                f"The upload log in {self.engine.url!r} could not be {'written' if write else 'read'} "
                f"({first[0][:200] if first else type(exc).__name__}): check --log-database-url."
            )) from None


def errors_json(errors: list[dict[str, Any]]) -> str:
    """Returns line errors as compact JSON for the log's `errors` column."""
    return json.dumps(errors, ensure_ascii=False, separators=(",", ":"))
