"""Turns source rows into Gong lines and rejects, with a reason, every row Gong would refuse.

Pure functions: no SQL, no HTTP. A rejected row is reported with its objectId and every reason it
cannot be sent (so one fix-and-rerun round settles it), and is not sent; the valid rows of the same batch
still go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Optional

from .mapping import CustomField, ObjectMapping
from .reader import to_utc
from .settings import (
    DEAL_STATUSES,
    EMAIL,
    OBJECT_ID,
    OBJECT_ID_MAX_LENGTH,
    REFERENCE_TARGETS,
    REQUIRED_FIELDS,
    STANDARD_FIELDS,
    STANDARD_REFERENCES,
)

_TRUE = {"1", "t", "true", "y", "yes"}
_FALSE = {"0", "f", "false", "n", "no", ""}


@dataclass(frozen=True)
class Line:
    """One valid object as Gong will receive it, with its exact modified time (for the watermark)."""

    object_id: str
    modified: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """A record that was not sent, or that Gong refused: its objectId and why.

    `count` is how many records it stands for: more than 1 only for the refused lines Gong counted
    without listing them (its request status lists a limited number of line errors).
    """

    object_type: str
    object_id: str
    reason: str
    count: int = 1


class _Invalid(Exception):
    """One field of one row cannot be sent; the message is the reason."""


def is_true(value: Any) -> bool:
    """Returns whether a deleted-flag value means "deleted" (booleans, 0/1, true/false, yes/no, t/f)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value != 0
    return str(value).strip().lower() in _TRUE


def gong_datetime(value: datetime) -> str:
    """Returns `value` as Gong wants it: ISO-8601 in UTC, without milliseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_lines(mapping: ObjectMapping, rows: list[dict[str, Any]],
                known_ids: Optional[dict[str, set[str]]] = None) -> tuple[list[Line], list[Rejection]]:
    """Returns (valid lines, rejections) for `rows` of one object type.

    Only the latest row of each objectId is kept. `known_ids` holds, per mapped object type, the ids a
    reference may point at; references to a type that is not there are not checked.
    """
    known = known_ids or {}
    otype = mapping.object_type
    latest: dict[str, dict[str, Any]] = {}
    rejected: list[Rejection] = []
    for number, row in enumerate(rows, start=1):
        object_id = _object_id(row.get(mapping.id_column))
        if object_id is None:
            problems = [f"objectId (column {mapping.id_column}) is empty", *_problems(mapping, None, row, known)[1]]
            rejected.append(Rejection(otype, f"(row {number} without id)", "; ".join(problems)))
            continue
        previous = latest.get(object_id)
        if previous is None or _later(row, previous):
            latest[object_id] = row
    lines: list[Line] = []
    for object_id, row in latest.items():
        line, problems = _problems(mapping, object_id, row, known)
        if line is not None:
            lines.append(line)
        else:
            rejected.append(Rejection(otype, object_id, "; ".join(problems)))
    lines.sort(key=lambda line: (line.modified, line.object_id))
    return lines, rejected


def _later(row: dict[str, Any], other: dict[str, Any]) -> bool:
    mine, theirs = row.get("_modified"), other.get("_modified")
    if mine is None or theirs is None:
        return theirs is None
    return bool(mine >= theirs)


def _object_id(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _problems(mapping: ObjectMapping, object_id: Optional[str], row: dict[str, Any],
              known: dict[str, set[str]]) -> tuple[Optional[Line], list[str]]:
    """Returns (the row's line, []) when it can be sent, else (None, every reason it cannot).

    Every field is checked even after one failed, so that the report names all of a row's problems at once.
    """
    otype = mapping.object_type
    problems: list[str] = []
    if object_id is not None:
        if len(object_id) > OBJECT_ID_MAX_LENGTH:
            problems.append(f"objectId is {len(object_id)} characters long: Gong allows at most "
                            f"{OBJECT_ID_MAX_LENGTH}")
        if not OBJECT_ID.match(object_id):
            problems.append("objectId may contain only letters, digits and . _ : - characters")
    modified = row.get("_modified")
    if modified is None:
        problems.append(f"modifiedDate (column {mapping.modified_column}) is empty or not a date: "
                        f"{_show(row.get(mapping.modified_column))}")
    data: dict[str, Any] = {"objectId": object_id, "modifiedDate": gong_datetime(modified) if modified else None}
    if mapping.deleted_column and is_true(row.get(mapping.deleted_column)):
        # A deletion carries no other field, so none of them can keep it from being sent.
        data["isDeleted"] = True
        return _result(object_id, modified, data, problems)
    data["isDeleted"] = False
    types = STANDARD_FIELDS[otype]
    invalid: set[str] = set()
    for gong_field, column in mapping.fields.items():
        if gong_field == "objectId":
            continue
        _put(data, gong_field, problems, invalid, types[gong_field], row.get(column), column)
    for custom in mapping.custom_fields:
        if custom.column is not None:
            _put(data, custom.unique_name, problems, invalid, custom.type, row.get(custom.column), custom.column,
                 custom)
    # A field whose value was reported as invalid is not reported once more as empty.
    missing = [f for f in REQUIRED_FIELDS[otype] if f not in data and f not in invalid]
    if missing:
        columns = [mapping.fields.get(f) for f in missing]
        shown = ", ".join(f"{f} (column {c})" if c else f"{f} (not mapped)" for f, c in zip(missing, columns,
                                                                                             strict=True))
        problems.append(f"required field{'s' if len(missing) > 1 else ''} {shown} "
                        f"{'are' if len(missing) > 1 else 'is'} empty")
    for gong_field, target in STANDARD_REFERENCES[otype].items():
        _check_reference(data, gong_field, target, known, problems)
    for custom in mapping.custom_fields:
        if custom.type == "REFERENCE" and custom.reference_to:
            _check_reference(data, custom.unique_name, REFERENCE_TARGETS[custom.reference_to], known, problems)
    return _result(object_id, modified, data, problems)


def _result(object_id: Optional[str], modified: Optional[datetime], data: dict[str, Any],
            problems: list[str]) -> tuple[Optional[Line], list[str]]:
    if problems or object_id is None or modified is None:
        return None, problems
    return Line(object_id, modified, data), []


def _put(data: dict[str, Any], name: str, problems: list[str], invalid: set[str], kind: str, value: Any,
         column: str, custom: Optional[CustomField] = None) -> None:
    """Converts one field into `data`, or records why it cannot be sent."""
    try:
        converted = _convert(kind, value, name, column, custom)
    except _Invalid as exc:
        problems.append(str(exc))
        invalid.add(name)
        return
    if converted is not None:
        data[name] = converted


def _check_reference(data: dict[str, Any], name: str, target: str, known: dict[str, set[str]],
                     problems: list[str]) -> None:
    value = data.get(name)
    ids = known.get(target)
    if value is None or ids is None:
        return
    if value not in ids:
        problems.append(f"{name} {value!r} is not the objectId of any {target} in the source (or that one is "
                        "flagged deleted)")


def _convert(kind: str, value: Any, name: str, column: str, custom: Optional[CustomField] = None) -> Any:
    """Returns `value` in Gong's JSON form for a field of type `kind`, None for empty, or raises _Invalid."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = f"{name} (column {column}) "
    if kind in ("NUMBER", "CURRENCY", "PERCENT"):
        number = _number(value)
        if number is None:
            raise _Invalid(bad + f"is not a number: {_show(value)}")
        if kind == "PERCENT" and not 0 <= number <= 100:
            raise _Invalid(bad + f"is not a percentage between 0 and 100: {_show(value)}")
        return number
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise _Invalid(bad + f"is not a boolean: {_show(value)}")
    if kind == "DATE":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        moment = to_utc(value)
        if moment is None:
            raise _Invalid(bad + f"is not a date: {_show(value)}")
        return moment.date().isoformat()
    if kind == "DATETIME":
        moment = to_utc(value)
        if moment is None:
            raise _Invalid(bad + f"is not a date-time: {_show(value)}")
        return gong_datetime(moment)
    if kind == "STRINGARRAY":
        return _string_list(value, bad)
    text = str(value).strip() if not isinstance(value, float | Decimal) else _number_text(value)
    if kind == "URL" and not text.lower().startswith(("http://", "https://")):
        raise _Invalid(bad + f"is not an http(s) URL: {_show(value)}")
    if kind == "EMAILADDRESS" and not EMAIL.match(text):
        raise _Invalid(bad + f"is not an email address: {_show(value)}")
    if kind == "DEAL_STATUS":
        text = text.upper()
        if text not in DEAL_STATUSES:
            raise _Invalid(bad + f"must be one of {', '.join(DEAL_STATUSES)}: {_show(value)}")
    if kind == "PICKLIST" and custom is not None and text not in custom.values:
        raise _Invalid(bad + f"is not one of the picklist values ({', '.join(custom.values)}): {_show(value)}")
    return text


def _number(value: Any) -> Optional[int | float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _number_text(value: float | Decimal) -> str:
    number = _number(value)
    return str(number) if number is not None else str(value)


def _string_list(value: Any, bad: str) -> list[str]:
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str) and value.strip().startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            raise _Invalid(bad + f"is not a JSON array: {_show(value)}") from None
        if not isinstance(items, list):
            raise _Invalid(bad + f"is not a JSON array: {_show(value)}")
    else:
        items = str(value).split(",")
    return [str(item).strip() for item in items if item is not None and str(item).strip()]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
