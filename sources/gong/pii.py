"""Personal data under the company's control: per column group, keep it, hash it or drop it before it is loaded.

Configured in `[sources.gong.pii]` of .dlt/config.toml (or SOURCES__GONG__PII__EMAILS=hash, ...):

    [sources.gong.pii]
    emails = "hash"           # keep (default) | hash | drop
    phones = "drop"
    names = "keep"
    transcript_text = "keep"

and, when any group is hashed, a salt in .dlt/secrets.toml (`[sources.gong.pii] salt = "..."`, or
SOURCES__GONG__PII__SALT): a hashed value is `sha256:` and the hex SHA-256 of the salt and the value, so the
same person hashes the same everywhere (joins and counts still work) and cannot be looked up without the
salt. E-mail addresses are lower-cased and phone numbers reduced to their digits first, so that the same
address or number hashes the same whichever way Gong spelled it. A dropped value is NULL.

The rows are changed where they are made, before dlt sees them: no raw value of a hashed or dropped group
reaches dlt's extract files, its packages, the warehouse or `_gong_rejected`. `COLUMNS` lists the warehouse
columns of each group (docs/tables.md shows the same list); CRM context fields (the call's and each party's)
are judged by their value and field name, see `_crm_field_group`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

GROUPS = ("emails", "phones", "names", "transcript_text")
ACTIONS = ("keep", "hash", "drop")
HASH_PREFIX = "sha256:"

# Each group's columns: (warehouse table, column, the path to the value in the row the catalog makes of a
# record: a key, or keys through lists of child rows). docs/tables.md is generated from this list.
_Path = tuple[str, ...]
COLUMNS: dict[str, tuple[tuple[str, str, _Path], ...]] = {
    "emails": (
        ("users", "email_address", ("emailAddress",)),
        ("users", "trusted_email_address", ("trustedEmailAddress",)),
        ("users__email_aliases", "value", ("emailAliases", "value")),
        ("calls__parties", "email_address", ("parties", "emailAddress")),
        ("activity_aggregate", "user_email_address", ("userEmailAddress",)),
        ("activity_by_period", "user_email_address", ("userEmailAddress",)),
        ("activity_day_by_day", "user_email_address", ("userEmailAddress",)),
        ("interaction_stats", "user_email_address", ("userEmailAddress",)),
        ("coaching", "report_email_address", ("reportEmailAddress",)),
        ("permission_profile_users", "email_address", ("emailAddress",)),
        ("audit_logs", "user_email_address", ("userEmailAddress",)),
        ("audit_logs", "impersonator_email_address", ("impersonatorEmailAddress",)),
        ("crm_integrations", "owner_email", ("ownerEmail",)),
    ),
    "phones": (
        ("users", "phone_number", ("phoneNumber",)),
        ("calls__parties", "phone_number", ("parties", "phoneNumber")),
    ),
    "names": (
        ("users", "first_name", ("firstName",)),
        ("users", "last_name", ("lastName",)),
        ("calls__parties", "name", ("parties", "name")),
        ("permission_profile_users", "full_name", ("fullName",)),
        ("audit_logs", "user_full_name", ("userFullName",)),
        ("audit_logs", "impersonator_full_name", ("impersonatorFullName",)),
    ),
    "transcript_text": (
        ("transcripts", "text", ("text",)),
    ),
}

# CRM context fields: the call's and each party's, as (table, path to the list of fields).
CRM_FIELD_TABLES: tuple[tuple[str, _Path], ...] = (
    ("calls__context__objects__fields", ("context", "objects", "fields")),
    ("calls__parties__context__objects__fields", ("parties", "context", "objects", "fields")),
)
# Audit log entries keep their log record as one JSON value: an e-mail address anywhere in it is of the
# e-mail group.
JSON_WITH_EMAILS: tuple[tuple[str, str, _Path], ...] = (("audit_logs", "log_record", ("logRecord",)),)

_EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z]{2,}")
_PHONE_FIELD = re.compile(r"phone|mobile|fax", re.IGNORECASE)
_NAME_FIELD = re.compile(r"^(name|full_?name|first_?name|last_?name)$", re.IGNORECASE)
_PERSON_OBJECTS = {"user", "contact", "lead"}


class PiiSettingsError(ValueError):
    """A `[sources.gong.pii]` setting is not one the source knows."""


@configspec
class PiiConfiguration(BaseConfiguration):
    """`[sources.gong.pii]`: keep, hash or drop per group; the salt of the hashes (a secret)."""

    emails: str = "keep"
    phones: str = "keep"
    names: str = "keep"
    transcript_text: str = "keep"
    salt: Optional[TSecretStrValue] = None


@dataclass(frozen=True)
class PiiPolicy:
    """What happens to each group of personal data, and the salt its hashes use."""

    emails: str = "keep"
    phones: str = "keep"
    names: str = "keep"
    transcript_text: str = "keep"
    salt: Optional[str] = None

    @classmethod
    def from_config(cls, settings: Any) -> PiiPolicy:
        """The policy of the source's resolved `pii` argument, after checking the names in the
        `[sources.gong.pii]` section of the config files (dlt would ignore a misspelt `email = "hash"`)."""
        import dlt

        section = dlt.config.get("sources.gong.pii")
        if isinstance(section, dict):
            unknown = sorted(set(section) - {*GROUPS, "salt"})
            if unknown:
                raise PiiSettingsError(f"[sources.gong.pii] has no setting {unknown[0]!r}: use "
                                       f"{', '.join(GROUPS)} (keep, hash or drop) and salt.")
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls, settings: Any) -> PiiPolicy:
        """The policy of a `PiiConfiguration` or a plain dict; raises PiiSettingsError naming a bad setting."""
        if settings is None:
            return cls()
        get = settings.get if isinstance(settings, dict) else (lambda k, d=None: getattr(settings, k, d))
        unknown = sorted(set(settings) - {*GROUPS, "salt"}) if isinstance(settings, dict) else []
        if unknown:
            raise PiiSettingsError(f"[sources.gong.pii] has no setting {unknown[0]!r}: use {', '.join(GROUPS)} "
                                   "(keep, hash or drop) and salt.")
        actions = {}
        for group in GROUPS:
            action = str(get(group, "keep") or "keep").strip().lower()
            if action not in ACTIONS:
                raise PiiSettingsError(f"SOURCES__GONG__PII__{group.upper()} {get(group)!r} is not one of keep, "
                                       "hash, drop: fix it in .dlt/config.toml or the environment.")
            actions[group] = action
        salt = get("salt")
        salt = str(salt) if salt else None
        if "hash" in actions.values() and not salt:
            hashed = next(g for g in GROUPS if actions[g] == "hash")
            raise PiiSettingsError(f"SOURCES__GONG__PII__{hashed.upper()} is hash but no salt is set: add a long "
                                   "random `salt` under [sources.gong.pii] in .dlt/secrets.toml (or "
                                   "SOURCES__GONG__PII__SALT), and keep it: changing it changes every hash.")
        return cls(**actions, salt=salt)

    def __repr__(self) -> str:  # the salt is a secret: never in a log or an exception
        return ("PiiPolicy(" + ", ".join(f"{g}={getattr(self, g)}" for g in GROUPS)
                + (", salt=***" if self.salt else "") + ")")

    @property
    def keeps_all(self) -> bool:
        return all(getattr(self, g) == "keep" for g in GROUPS)

    def action(self, group: str) -> str:
        return str(getattr(self, group))

    def value(self, group: str, value: Any) -> Any:
        """`value` as the policy stores it for `group`: as is, hashed, or None."""
        action = self.action(group)
        if action == "keep" or value is None:
            return value
        if action == "drop":
            return None
        return hash_value(str(value), self.salt or "", group)


def canonical(value: str, group: str) -> str:
    """What is hashed: an e-mail address lower-cased, a phone number's digits (with a leading +)."""
    value = value.strip()
    if group == "emails":
        return value.lower()
    if group == "phones":
        digits = re.sub(r"\D", "", value)
        return ("+" if value.startswith("+") else "") + digits
    return value


def hash_value(value: str, salt: str, group: str = "") -> str:
    """The stored form of a hashed value: `sha256:` + hex SHA-256 of the salt and the canonical value."""
    digest = hashlib.sha256(salt.encode() + b"\x00" + canonical(value, group).encode()).hexdigest()
    return HASH_PREFIX + digest


def _crm_field_group(field: dict[str, Any], object_type: Any) -> Optional[str]:
    """The group of a CRM context field: an e-mail address by its value; a phone by the field's name; a name
    by the field's name on a person's object (User, Contact, Lead; an Account's name is a company's)."""
    value, name = field.get("value"), str(field.get("name") or "")
    if isinstance(value, str) and _EMAIL.fullmatch(value.strip()):
        return "emails"
    if _PHONE_FIELD.search(name):
        return "phones"
    if _NAME_FIELD.match(name) and str(object_type or "").lower() in _PERSON_OBJECTS:
        return "names"
    return None


def _apply(node: Any, path: _Path, change: Callable[[Any], Any]) -> None:
    """Changes the value at `path` below `node` (through lists of child rows) in place."""
    if isinstance(node, list):
        for item in node:
            _apply(item, path, change)
        return
    if not isinstance(node, dict) or path[0] not in node:
        return
    if len(path) == 1:
        new = change(node[path[0]])
        if new is None:
            del node[path[0]]  # a missing field is NULL, as everywhere in the rows
        else:
            node[path[0]] = new
        return
    _apply(node[path[0]], path[1:], change)


def _scrub_emails(document: Any, change: Callable[[Any], Any]) -> Any:
    """A JSON document with every e-mail address in its strings changed."""
    if isinstance(document, dict):
        return {k: _scrub_emails(v, change) for k, v in document.items()}
    if isinstance(document, list):
        return [_scrub_emails(v, change) for v in document]
    if isinstance(document, str) and "@" in document:
        return _EMAIL.sub(lambda m: change(m.group(0)) or "", document)
    return document


class RowPrivacy:
    """Applies a policy to the rows of one table (the catalog endpoint's), in place."""

    def __init__(self, policy: PiiPolicy, table: str) -> None:
        self.policy = policy
        self.changes: list[tuple[_Path, Callable[[Any], Any]]] = []
        for group in GROUPS:
            if policy.action(group) == "keep":
                continue
            for col_table, _column, path in COLUMNS[group]:
                if col_table == table or col_table.startswith(table + "__"):
                    self.changes.append((path, self._changer(group)))
            if group == "emails":
                for col_table, _column, path in JSON_WITH_EMAILS:
                    if col_table == table:
                        self.changes.append((path, lambda doc: _scrub_emails(doc, self._changer("emails"))))
        self.crm_paths = [path for crm_table, path in CRM_FIELD_TABLES
                          if crm_table.startswith(table + "__")] if not policy.keeps_all else []

    def _changer(self, group: str) -> Callable[[Any], Any]:
        return lambda value: self.policy.value(group, value)

    @property
    def active(self) -> bool:
        return bool(self.changes or self.crm_paths)

    def rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Changes `rows` (and their child rows) in place."""
        for row in rows:
            for path, change in self.changes:
                _apply(row, path, change)
            for path in self.crm_paths:
                self._crm_fields(row, path)

    def _crm_fields(self, row: dict[str, Any], path: _Path) -> None:
        def fields(node: Any, rest: _Path) -> Iterable[dict[str, Any]]:
            if isinstance(node, list):
                for item in node:
                    yield from fields(item, rest)
            elif isinstance(node, dict) and rest and rest[0] in node:
                if len(rest) == 1:
                    yield from (f for f in node[rest[0]] or [] if isinstance(f, dict))
                else:
                    yield from fields(node[rest[0]], rest[1:])

        for field in fields(row, path):
            group = _crm_field_group(field, field.get("objectType"))
            if group and self.policy.action(group) != "keep":
                new = self.policy.value(group, field.get("value"))
                if new is None:
                    field.pop("value", None)
                else:
                    field["value"] = new

    def transcript(self, table: pa.Table) -> pa.Table:
        """A table of sentences with their text as the policy says."""
        action = self.policy.transcript_text
        if action == "keep" or "text" not in table.column_names:
            return table
        index = table.column_names.index("text")
        text = table.column("text")
        if action == "drop":
            new = pa.nulls(len(table), pa.string())
        else:
            salt = self.policy.salt or ""
            new = pa.array([None if t is None else hash_value(t, salt) for t in text.to_pylist()], pa.string())
        return table.set_column(index, table.schema.field(index), new)


def policy_columns() -> dict[str, list[str]]:
    """Per group, the warehouse columns it covers as `table.column` (for docs/tables.md)."""
    out: dict[str, list[str]] = {}
    for group in GROUPS:
        cols = [f"{t}.{c}" for t, c, _ in COLUMNS[group]]
        if group == "emails":
            cols += [f"{t}.{c} (any address in it)" for t, c, _ in JSON_WITH_EMAILS]
        out[group] = cols
    return out

