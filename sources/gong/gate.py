"""What stands between a page of rows and dlt: the privacy policy (pii.py), then the checks a row must pass.

A record that cannot be loaded as the table contract says is set aside, never dropped in silence and never
allowed to fail the load of the good rows beside it: it goes to the table `_gong_rejected` (one row per
record and reason: the endpoint, the record's id where it has one, the reason, the row as JSON after the
privacy policy, merged on a hash of endpoint and row so a re-read record is stored once). The run's summary
says how many. What is set aside:

- a record without its key (a call without `id`, a user without `id`, a stats row without `userId`...): it
  could not be merged, and would fail the load of its whole table on the NOT NULL key;
- a value of the wrong type for its column in the contract (a call's `durationS` of "long", a `started`
  that is not a date-time): dlt would store it in a surprise variant column (`duration_s__v_text`) and
  leave the real column NULL;
- a transcript of a call the request did not ask for (its sentences would belong to no call).

What is loaded as it is: an enum value the contract does not know (Gong adds values; the run logs it and the
dbt models' accepted-values tests warn), and a list that is null (no child rows, as an empty list).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Optional

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention

from .catalog import Endpoint
from .pii import PiiPolicy, RowPrivacy

logger = logging.getLogger("gong_sync.source")

REJECTED_TABLE = "_gong_rejected"
# Enum values the contract knows, per table and column (a top-level field of the row); others load as they are.
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("calls", "direction"): frozenset({"Inbound", "Outbound", "Conference", "Unknown"}),
    ("calls", "scope"): frozenset({"Internal", "External", "Unknown"}),
    ("calls", "media"): frozenset({"Video", "Audio"}),
}
_NAMING = NamingConvention()


def rejected_resource(rows: list[dict[str, Any]]) -> Any:
    """The rows set aside, as the resource `_gong_rejected` (extracted after the source, into its schema).

    A resource of its own, not rows a Gong resource yields under another table name: such a table variant
    inherits the resource's column hints (a call's `started`, a sentence's key columns), which would give
    `_gong_rejected` their columns and NOT NULL constraints."""
    return dlt.resource(
        list(rows), name=REJECTED_TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key="record_key",
        columns=[
            {"name": "record_key", "data_type": "text", "nullable": False},
            {"name": "endpoint", "data_type": "text", "nullable": False},
            {"name": "record_id", "data_type": "text", "nullable": True},
            {"name": "reason", "data_type": "text", "nullable": False},
            {"name": "record", "data_type": "json", "nullable": True},
        ],
    )


def _rejected_row(endpoint: str, record_id: Any, reason: str, record: Any) -> dict[str, Any]:
    document = json.dumps(record, sort_keys=True, default=str)
    key = hashlib.sha256(f"{endpoint}\x00{reason}\x00{document}".encode()).hexdigest()[:32]
    return {"record_key": key, "endpoint": endpoint, "record_id": None if record_id is None else str(record_id),
            "reason": reason, "record": json.loads(document)}


def _type_error(data_type: str, value: Any) -> Optional[str]:
    """Why `value` cannot be stored in a column of `data_type` (None when it can)."""
    if data_type == "bigint":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.strip().lstrip("+-").isdigit())
    elif data_type == "double":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(value, str):
            try:
                float(value)
                ok = True
            except ValueError:
                ok = False
    elif data_type == "bool":
        ok = isinstance(value, bool)
    elif data_type in ("timestamp", "date"):
        ok = isinstance(value, datetime | date)
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value) if data_type == "timestamp" else date.fromisoformat(value[:10])
                ok = True
            except ValueError:
                ok = False
    elif data_type == "text":
        ok = not isinstance(value, dict | list)
    else:
        return None
    if ok:
        return None
    shown = json.dumps(value, default=str)
    return f"{data_type} expected, got {type(value).__name__} {shown[:40]}{'...' if len(shown) > 40 else ''}"


class RowGate:
    """The privacy policy and the row checks of one endpoint (built once per source)."""

    def __init__(self, endpoint: Endpoint, policy: PiiPolicy, contract_table: Optional[dict[str, Any]],
                 rejected: Optional[list[dict[str, Any]]] = None) -> None:
        self.endpoint = endpoint
        # Where the records set aside go (the runner loads them into `_gong_rejected`); without a list, they
        # are counted and logged.
        self.rejected = rejected
        self.unsunk = 0
        self.privacy = RowPrivacy(policy, endpoint.name)
        columns = (contract_table or {}).get("columns") or {}
        self.types = {name: spec["data_type"] for name, spec in columns.items()
                      if spec.get("data_type") and not name.startswith("_dlt")}
        self.key = tuple(endpoint.primary_key)
        self._names: dict[str, str] = {}
        self.unknown_enums: dict[tuple[str, str], int] = {}

    def _column(self, key: str) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = _NAMING.normalize_identifier(key)
        return name

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's rows to load, with the policy applied; the bad ones are set aside."""
        if self.privacy.active:
            self.privacy.rows(rows)
        good: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        name = self.endpoint.name
        for row in rows:
            columns = {self._column(k): v for k, v in row.items()}
            missing = [k for k in self.key if columns.get(k) in (None, "")]
            if missing:
                rejected.append(_rejected_row(name, columns.get("id"), f"no {', '.join(missing)}: the record "
                                              "has no key to merge it on", row))
                continue
            reason = None
            for column, value in columns.items():
                data_type = self.types.get(column)
                if data_type is not None and value is not None:
                    why = _type_error(data_type, value)
                    if why:
                        reason = f"{column}: {why}"
                        break
                known = ENUMS.get((name, column))
                if known is not None and isinstance(value, str) and value not in known:
                    self.unknown_enums[(column, str(value))] = self.unknown_enums.get((column, str(value)), 0) + 1
            if reason:
                rejected.append(_rejected_row(name, ".".join(str(columns.get(k)) for k in self.key), reason, row))
            else:
                good.append(row)
        self._set_aside(rejected)
        return good

    def _set_aside(self, rejected: list[dict[str, Any]]) -> None:
        if self.rejected is not None:
            self.rejected.extend(rejected)
        else:
            self.unsunk += len(rejected)

    def transcripts(self, table: pa.Table, asked: Iterable[str]) -> pa.Table:
        """A table of sentences with the policy applied; the sentences of calls not asked for are set aside
        (one rejected row per such call)."""
        table = self.privacy.transcript(table)
        if not len(table):
            return table
        known = pc.is_in(table.column("call_id"), value_set=pa.array(list(asked), pa.string()))
        if pc.all(known).as_py():
            return table
        strays = table.filter(pc.invert(known))
        rejected = []
        for call_id in sorted(set(strays.column("call_id").to_pylist()), key=str):
            n = len(strays.filter(pc.equal(strays.column("call_id"), call_id)))
            reason = f"transcript of a call that was not asked for ({n} sentence{'' if n == 1 else 's'})"
            rejected.append(_rejected_row(self.endpoint.name, call_id, reason, {"call_id": call_id, "sentences": n}))
        self._set_aside(rejected)
        return table.filter(known)

    def report(self) -> None:
        """Logs the enum values the contract does not know (loaded as they are), once per run of the source."""
        for (column, value), count in sorted(self.unknown_enums.items()):
            logger.info("%s: %d %s with %s %r, a value the contract does not know (loaded as it is)",
                        self.endpoint.name, count, "row" if count == 1 else "rows", column, value)
        self.unknown_enums.clear()
        if self.unsunk:
            logger.warning("%s: %d records could not be loaded as the contract says and were left out (run_sync "
                           "loads them into %s)", self.endpoint.name, self.unsunk, REJECTED_TABLE)
            self.unsunk = 0
