"""The mapping file: which SQL table, view or query feeds each Gong object type, column by column.

A TOML file (see schemas/crm_mapping.example.toml). `load_mapping` reads and checks it and raises
MappingError with one sentence naming the file and the key at fault.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .settings import (
    CUSTOM_FIELD_TYPES,
    OBJECT_TYPES,
    REFERENCE_TARGETS,
    SCHEMA_OBJECT_TYPES,
    STANDARD_FIELDS,
)


class MappingError(Exception):
    """The mapping file is missing, unreadable or wrong; the message names the key at fault."""


@dataclass(frozen=True)
class CustomField:
    """A custom field: the source column and how Gong declares it in the object's schema."""

    unique_name: str
    column: Optional[str]
    label: str
    type: str
    reference_to: Optional[str] = None
    values: tuple[str, ...] = ()
    deleted: bool = False

    def schema_entry(self) -> dict[str, Any]:
        """Returns this field as one entry of Gong's entity-schema list (without lastModified)."""
        entry: dict[str, Any] = {"uniqueName": self.unique_name, "label": self.label, "type": self.type,
                                 "isDeleted": self.deleted}
        if self.reference_to:
            entry["referenceTo"] = self.reference_to
        if self.values:
            entry["orderedValueList"] = list(self.values)
        return entry


@dataclass(frozen=True)
class ObjectMapping:
    """How one Gong object type is read: source, modified-date column, deleted flag, field columns."""

    object_type: str
    table: Optional[str]
    query: Optional[str]
    modified_column: str
    deleted_column: Optional[str]
    fields: dict[str, str]
    custom_fields: tuple[CustomField, ...] = ()

    @property
    def id_column(self) -> str:
        """Returns the column that holds the objectId."""
        return self.fields["objectId"]

    def schema_fields(self) -> list[dict[str, Any]]:
        """Returns the full custom-field list Gong's entity-schema endpoint expects for this type."""
        return [f.schema_entry() for f in self.custom_fields]

    def schema_hash(self) -> str:
        """Returns a hash of the custom-field schema: it changes exactly when the schema must be pushed."""
        canon = json.dumps(self.schema_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Mapping:
    """The whole mapping file: the integration to use and one ObjectMapping per object type."""

    integration_name: str
    owner_email: str
    objects: dict[str, ObjectMapping] = field(default_factory=dict)
    path: str = ""


def load_mapping(path: str | Path) -> Mapping:
    """Returns the checked mapping in `path`, or raises MappingError naming the key at fault."""
    where = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"The mapping file {where} does not exist: pass --mapping with the path of "
                           "your mapping (see schemas/crm_mapping.example.toml).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"The mapping file {where} could not be read ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"The mapping file {where} is not valid TOML ({exc}).") from None
    return parse_mapping(raw, where)


def parse_mapping(raw: dict[str, Any], where: str = "mapping") -> Mapping:
    """Returns the checked Mapping for an already parsed document; raises MappingError naming the key."""

    def error(key: str, problem: str) -> MappingError:
        return MappingError(f"In {where}, {key} {problem}.")

    _only(raw, {"integration", "objects"}, "", error)
    integration = raw.get("integration")
    if not isinstance(integration, dict):
        raise error("[integration]", "is missing: give the integration's name and owner_email")
    _only(integration, {"name", "owner_email"}, "integration.", error)
    name = _text(integration, "name", "integration.", error)
    owner = _text(integration, "owner_email", "integration.", error)
    if "@" not in owner:
        raise error("integration.owner_email", f"must be an email address, not {owner!r}")
    objects_raw = raw.get("objects")
    if not isinstance(objects_raw, dict) or not objects_raw:
        raise error("[objects]", "is missing: map at least one of " + ", ".join(OBJECT_TYPES))
    objects: dict[str, ObjectMapping] = {}
    for object_type, spec in objects_raw.items():
        if object_type not in OBJECT_TYPES:
            raise error(f"objects.{object_type}", "is not a Gong object type: use one of " + ", ".join(OBJECT_TYPES))
        if not isinstance(spec, dict):
            raise error(f"objects.{object_type}", "must be a table")
        objects[object_type] = _object(object_type, spec, error)
    ordered = {t: objects[t] for t in OBJECT_TYPES if t in objects}
    return Mapping(integration_name=name, owner_email=owner, objects=ordered, path=where)


def _object(object_type: str, spec: dict[str, Any], error: Any) -> ObjectMapping:
    key = f"objects.{object_type}."
    _only(spec, {"table", "query", "modified_date", "deleted", "fields", "custom_fields"}, key, error)
    table = spec.get("table")
    query = spec.get("query")
    if (table is None) == (query is None):
        raise error(f"objects.{object_type}", "needs exactly one of table (a table or view) or query")
    source_key = "table" if table is not None else "query"
    source = table if table is not None else query
    if not isinstance(source, str) or not source.strip():
        raise error(key + source_key, "must be a non-empty string")
    modified = _text(spec, "modified_date", key, error)
    deleted = spec.get("deleted")
    if deleted is not None and (not isinstance(deleted, str) or not deleted.strip()):
        raise error(key + "deleted", "must be a column name")
    fields_raw = spec.get("fields")
    if not isinstance(fields_raw, dict):
        raise error(key + "fields", "is missing: map at least objectId to a column")
    allowed = {"objectId", *STANDARD_FIELDS[object_type]}
    fields: dict[str, str] = {}
    for gong_field, column in fields_raw.items():
        if gong_field not in allowed:
            raise error(key + "fields." + gong_field, f"is not a standard Gong {object_type} field (choose from "
                        + ", ".join(sorted(allowed)) + "; put other fields under custom_fields)")
        if not isinstance(column, str) or not column.strip():
            raise error(key + "fields." + gong_field, "must be a column name")
        fields[gong_field] = column
    if "objectId" not in fields:
        raise error(key + "fields.objectId", "is missing: name the column that holds the object's id")
    customs_raw = spec.get("custom_fields") or {}
    if not isinstance(customs_raw, dict):
        raise error(key + "custom_fields", "must be a table of fields")
    if customs_raw and object_type not in SCHEMA_OBJECT_TYPES:
        raise error(key + "custom_fields", "is not supported: Gong takes custom fields only for "
                    + ", ".join(SCHEMA_OBJECT_TYPES))
    customs = tuple(_custom(object_type, name, value, error) for name, value in customs_raw.items())
    return ObjectMapping(object_type=object_type, table=table, query=query, modified_column=modified,
                         deleted_column=deleted, fields=fields, custom_fields=customs)


def _custom(object_type: str, name: str, spec: Any, error: Any) -> CustomField:
    key = f"objects.{object_type}.custom_fields.{name}"
    if name in STANDARD_FIELDS[object_type] or name in ("objectId", "modifiedDate", "isDeleted"):
        raise error(key, f"has the name of a standard {object_type} field: map it under fields instead")
    if not isinstance(spec, dict):
        raise error(key, "must be a table with column, label and type")
    _only(spec, {"column", "label", "type", "reference_to", "values", "deleted"}, key + ".", error)
    deleted = spec.get("deleted", False)
    if not isinstance(deleted, bool):
        raise error(key + ".deleted", "must be true or false")
    column = spec.get("column")
    if not deleted and (not isinstance(column, str) or not column.strip()):
        raise error(key + ".column", "is missing: name the column that holds the value")
    label = spec.get("label", name)
    if not isinstance(label, str) or not label.strip():
        raise error(key + ".label", "must be a non-empty string")
    kind = spec.get("type")
    if kind not in CUSTOM_FIELD_TYPES:
        raise error(key + ".type", f"must be one of {', '.join(CUSTOM_FIELD_TYPES)}, not {kind!r}")
    reference_to = spec.get("reference_to")
    if kind == "REFERENCE" and reference_to not in REFERENCE_TARGETS:
        raise error(key + ".reference_to", f"must be one of {', '.join(REFERENCE_TARGETS)} for a REFERENCE field")
    if kind != "REFERENCE" and reference_to is not None:
        raise error(key + ".reference_to", "is only for fields of type REFERENCE")
    values = spec.get("values", [])
    if kind == "PICKLIST" and (not isinstance(values, list) or not values
                               or not all(isinstance(v, str) for v in values)):
        raise error(key + ".values", "must list the picklist's values (strings) for a PICKLIST field")
    if kind != "PICKLIST" and values:
        raise error(key + ".values", "is only for fields of type PICKLIST")
    return CustomField(unique_name=name, column=column if not deleted else None, label=label, type=kind,
                       reference_to=reference_to, values=tuple(values), deleted=deleted)


def _text(spec: dict[str, Any], name: str, prefix: str, error: Any) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value.strip():
        raise error(prefix + name, "is missing or empty")
    return value.strip()


def _only(spec: dict[str, Any], allowed: set[str], prefix: str, error: Any) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise error(prefix + unknown[0], "is not a known key (known: " + ", ".join(sorted(allowed)) + ")")
