"""`gong-sync erase`: the warehouse side of a data-subject erasure request (GDPR art. 17).

`erase(destination, dataset, emails=[...], phones=[...])` removes from the synced dataset (and from dlt's
staging copy of it, `<dataset>_staging`) every row that identifies the person with those e-mail addresses
and phone numbers, and returns how many rows it removed per table (`ErasureResult`). Gong's own
`POST /v2/data-privacy/erase-data-for-email-address` (and `.../erase-data-for-phone-number`) erases the person
in Gong; this erases the copies gong-sync made (README "Erasing a person").

How the person is matched: an e-mail address case-insensitively (the whole value: `lower(column)`), a phone
number digit for digit (`+1 (555) 010-2000` matches `+15550102000`), and, when the project stores personal
data hashed (`sources/gong/pii.py`, a salt set), also by the hashed forms of both, compared as stored.
`person_candidates` is the one place that makes the values compared.

First the person's keys are collected from the rows that name them: their Gong user ids (`users` by
email_address, trusted_email_address or phone_number; `users__email_aliases.value`; and the user_id of every
row keyed by their address below), their participations in calls (`calls__parties` by email_address,
phone_number or user_id: the `(call_id, party_id)` and `(call_id, speaker_id)` of each), their speakers
(`calls__speakers` by user_id), the CRM person records holding their address (a Contact, Lead or User object
of a call's or a party's CRM context with a field whose value is the address or number), and the scorecards
that review them. Then, table by table, in this order and in ONE TRANSACTION PER TABLE (a failure leaves that
table as it was; the tables before it stay erased; running again finishes the rest):

- `transcripts`, `calls__action_items`, `calls__trackers__occurrences`,
  `calls__trackers__phrases__occurrences`: what one of their speakers said, by `(call_id, speaker_id)`.
- `calls__speakers`: their talk time, by `(call_id, speaker_id)` or their `user_id`.
- `calls__public_comments`: the comments they wrote (`commenter_user_id`).
- `calls__context__objects` and `calls__context__objects__fields`: a Contact, Lead or User object holding their
  address or number (the object and all its fields); any other field whose `value` is their address or number.
- `calls__parties__context__objects__fields`, `calls__parties__context__objects`, `calls__parties__context`,
  `calls__parties__methods` (and any other `calls__parties__*` table): the rows of their parties, by
  `(call_id, party_id)`; a person object or a `value` of theirs as above on another party.
- `calls__parties`: their participations, by `email_address`, `phone_number` (digits) or `user_id`.
- `answered_scorecards` (with `__answers` and `__answers__selected_options`): the scorecards that review them
  (`reviewed_user_id`).
- `activity_day_by_day` (with `__calls`), `activity_aggregate`, `activity_by_period`, `interaction_stats` (with
  `__person_interaction_stats`): their rows, by `user_id` or `user_email_address`.
- `coaching`: their rows as a report, by `report_id` or `report_email_address` (a manager's rows about their
  reports stay).
- `user_settings_history`, `call_user_access`, `permission_profiles__team_leads`: by their `user_id`.
- `permission_profile_users`: by their `user_id` or `email_address`.
- `audit_logs`: by `user_id` / `impersonator_user_id` or `user_email_address` / `impersonator_email_address`.
- `users__personal_meeting_urls`, `users__spoken_languages` (and any other `users__*` table), then `users`, then
  `users__email_aliases`: their user rows (`id`, `user_id`), last.

Then, in every table of the dataset (the same transaction as that table's rows), any other text or JSON value
that contains one of their e-mail addresses (e.g. an address inside an audit log's `log_record`, a call title,
a sentence someone else said, `crm_integrations.owner_email`) is set to NULL ("values cleared"; a row whose
column cannot be NULL is removed instead). So no text column of the dataset holds their address afterwards.

Kept: the calls themselves (`calls` and the call's own nested tables: a call is the company's record) and the
company's other records (workspaces, trackers, scorecards, library folders, manual CRM associations, ...);
user ids in them (`calls.primary_user_id`, a scorecard's `reviewer_user_id`, `library_folders.created_by_user_id`,
`users.manager_id`, `coaching.manager_id`, ...) stay, and no longer lead to a name or an address in the
warehouse once the user's rows are gone. Free text that names the person by name only (a call title "Demo with
Zoe", another speaker saying "thanks, Zoe") cannot be found by an address and stays.

Besides the warehouse: the same rules run on dlt's staging dataset (`<dataset>_staging`, which holds a copy
of the rows last loaded into each table), and the completed load packages dlt keeps in the pipeline's folder
(`<pipelines-dir>/<pipeline>/load/loaded/`: the files every loaded row came in, never read again) are deleted.
A pipeline with packages not yet loaded (an interrupted run) is refused: the next sync would load them.
A run of the same pipeline holds its lock, so a sync cannot load while the person is erased.

Idempotent: a second run finds nothing and says so. `dry_run=True` runs the same statements and rolls each
table's transaction back, so it counts exactly what a run would remove. The addresses and numbers asked for
are never logged or printed. Works on DuckDB and Postgres, through the pipeline's own dlt SQL client
(`pipeline.sql_client()`), with every value a query parameter.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError, user_message

logger = logging.getLogger("gong_sync.erase")

DEFAULT_PIPELINE_NAME = "gong"
DEFAULT_DATASET = "gong"
# The warehouses whose SQL (regexp_replace(..., 'g'), strpos, row-value IN) the statements are written in.
SUPPORTED = ("duckdb", "postgres")
# Keys per statement (a tuple key takes one parameter per column).
BATCH = 500
# CRM object types that are a person's record (as sources/gong/pii.py judges them).
PERSON_OBJECTS = ("contact", "lead", "user")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE = re.compile(r"[0-9 +().\-/]+")

# A hook that gives the stored (hashed) forms of one value: hashed(group, value) with group "emails" or "phones".
Hasher = Callable[[str, str], Iterable[str]]


# ----------------------------------------------------------------------------------------------- the person


@dataclass(frozen=True)
class Candidates:
    """The values a person is matched by: e-mail addresses lower-cased, phone numbers as digits, and stored
    forms compared exactly as they are (the hashed values of both, when personal data is stored hashed)."""

    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()


def check_person(emails: Sequence[str], phones: Sequence[str]) -> tuple[list[str], list[str]]:
    """The addresses and numbers asked for, stripped and without repeats; raises UsageError for none, or for
    one that is not an e-mail address or a phone number."""
    got_emails: list[str] = []
    for raw in emails:
        value = str(raw).strip()
        if not _EMAIL.fullmatch(value):
            raise UsageError(f"--email {value!r} is not an e-mail address: give one like name@example.com.")
        if value.lower() not in (e.lower() for e in got_emails):
            got_emails.append(value)
    got_phones: list[str] = []
    for raw in phones:
        value = str(raw).strip()
        digits = re.sub(r"\D", "", value)
        if not _PHONE.fullmatch(value) or not 7 <= len(digits) <= 15:
            raise UsageError(f"--phone {value!r} is not a phone number: give it with its country code, e.g. "
                             "+1 425 555 2671 (spaces, dashes and brackets are ignored).")
        if digits not in (re.sub(r"\D", "", p) for p in got_phones):
            got_phones.append(value)
    if not got_emails and not got_phones:
        raise UsageError("Nothing to erase: give the person's --email ADDRESS and/or --phone NUMBER (see gong-sync "
                         "erase --help).")
    return got_emails, got_phones


def person_candidates(emails: Sequence[str], phones: Sequence[str], hashed: Optional[Hasher] = None) -> Candidates:
    """The values a person is matched by. THE one place that makes them: the raw values here, and the hashed
    forms (`hashed(group, value)`, by default sources/gong/pii.py's `hash_value` with the configured salt)."""
    mails = tuple(dict.fromkeys(e.strip().lower() for e in emails))
    numbers = tuple(dict.fromkeys(re.sub(r"\D", "", p) for p in phones))
    exact: list[str] = []
    if hashed is not None:
        for value in mails:
            exact += list(hashed("emails", value))
        for digits in numbers:  # Gong's numbers are stored with or without their leading +
            exact += list(hashed("phones", "+" + digits)) + list(hashed("phones", digits))
    return Candidates(mails, numbers, tuple(dict.fromkeys(v for v in exact if v)))


def pii_hasher() -> Optional[Hasher]:
    """sources/gong/pii.py's `hash_value` with the salt of `[sources.gong.pii]` (SOURCES__GONG__PII__SALT), as the
    sync hashes with it; None when that module or a salt is not there (then nothing is stored hashed)."""
    try:
        from sources.gong import pii
    except ImportError:
        return None
    hash_value = getattr(pii, "hash_value", None)
    if hash_value is None:
        return None
    import dlt

    try:
        salt = dlt.secrets.get("sources.gong.pii.salt")
    except Exception:  # an unreadable setting: the sync would refuse it too; nothing can be stored hashed
        salt = None
    if not salt:
        return None
    return lambda group, value: [hash_value(value, str(salt), group)]


# ----------------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Match:
    """One way a row belongs to the person: `kind` "email", "phone" or "value" (either, or a stored form) on one
    column, or "keys" (the columns' values are one of the person's keys `keys`)."""

    kind: str
    columns: tuple[str, ...]
    keys: str = ""


def _email(column: str) -> Match:
    return Match("email", (column,))


def _phone(column: str) -> Match:
    return Match("phone", (column,))


def _value(column: str) -> Match:
    return Match("value", (column,))


def _keys(name: str, *columns: str) -> Match:
    return Match("keys", columns, name)


SPEAKER = ("call_id", "speaker_id")
PARTY = ("call_id", "party_id")
CRM_OBJECT = ("call_id", "system", "object_type", "object_id")
PARTY_CRM_OBJECT = ("call_id", "party_id", "system", "object_type", "object_id")


@dataclass(frozen=True)
class Rule:
    """The rows of `table` that belong to the person: those any of `matches` selects (deleted), or, with
    `clear`, rows whose `clear` column is set to NULL instead."""

    table: str
    matches: tuple[Match, ...]
    clear: str = ""


def _rule(table: str, *matches: Match, clear: str = "") -> Rule:
    return Rule(table, matches, clear)


_USERS = _keys("users", "user_id")
# In this order: what refers to the person's keys first, the rows their keys are found by last (so a run that
# stops midway leaves the rows the next run finds the rest by).
RULES: tuple[Rule, ...] = (
    _rule("transcripts", _keys("speakers", *SPEAKER)),
    _rule("calls__action_items", _keys("speakers", *SPEAKER)),
    _rule("calls__trackers__occurrences", _keys("speakers", *SPEAKER)),
    _rule("calls__trackers__phrases__occurrences", _keys("speakers", *SPEAKER)),
    _rule("calls__speakers", _keys("speakers", *SPEAKER), _USERS),
    _rule("calls__public_comments", _keys("users", "commenter_user_id")),
    _rule("calls__context__objects", _keys("crm_objects", *CRM_OBJECT)),
    _rule("calls__context__objects__fields", _keys("crm_objects", *CRM_OBJECT), _value("value")),
    _rule("calls__parties__context__objects__fields", _keys("parties", *PARTY),
          _keys("party_crm_objects", *PARTY_CRM_OBJECT), _value("value")),
    _rule("calls__parties__context__objects", _keys("parties", *PARTY), _keys("party_crm_objects", *PARTY_CRM_OBJECT)),
    _rule("calls__parties__context", _keys("parties", *PARTY)),
    _rule("calls__parties__methods", _keys("parties", *PARTY), _value("value")),
    # (any other calls__parties__* table: by the party key, see _rules_for)
    _rule("calls__parties", _keys("parties", *PARTY), _email("email_address"), _phone("phone_number"), _USERS),
    _rule("answered_scorecards__answers__selected_options", _keys("scorecards", "answered_scorecard_id")),
    _rule("answered_scorecards__answers", _keys("scorecards", "answered_scorecard_id")),
    _rule("answered_scorecards", _keys("users", "reviewed_user_id")),
    _rule("activity_day_by_day__calls", _USERS),
    _rule("activity_day_by_day", _USERS, _email("user_email_address")),
    _rule("activity_aggregate", _USERS, _email("user_email_address")),
    _rule("activity_by_period", _USERS, _email("user_email_address")),
    _rule("interaction_stats__person_interaction_stats", _USERS),
    _rule("interaction_stats", _USERS, _email("user_email_address")),
    _rule("coaching", _keys("users", "report_id"), _email("report_email_address")),
    _rule("user_settings_history", _USERS),
    _rule("call_user_access", _USERS),
    _rule("permission_profiles__team_leads", _USERS),
    _rule("permission_profile_users", _USERS, _email("email_address")),
    _rule("audit_logs", _USERS, _keys("users", "impersonator_user_id"), _email("user_email_address"),
          _email("impersonator_email_address")),
    _rule("crm_integrations", _email("owner_email"), clear="owner_email"),
    _rule("users__personal_meeting_urls", _USERS),
    _rule("users__spoken_languages", _USERS),
    # (any other users__* table: by user_id, see _rules_for)
    _rule("users", _keys("users", "id"), _email("email_address"), _email("trusted_email_address"),
          _phone("phone_number")),
    _rule("users__email_aliases", _USERS, _email("value")),
)
BY_TABLE = {rule.table: rule for rule in RULES}

# Where the person's user ids are found: (table, the user id column, the address columns).
USER_SEEDS: tuple[tuple[str, str, tuple[Match, ...]], ...] = (
    ("users", "id", (_email("email_address"), _email("trusted_email_address"), _phone("phone_number"))),
    ("users__email_aliases", "user_id", (_email("value"),)),
    ("permission_profile_users", "user_id", (_email("email_address"),)),
    ("activity_aggregate", "user_id", (_email("user_email_address"),)),
    ("activity_by_period", "user_id", (_email("user_email_address"),)),
    ("activity_day_by_day", "user_id", (_email("user_email_address"),)),
    ("interaction_stats", "user_id", (_email("user_email_address"),)),
    ("coaching", "report_id", (_email("report_email_address"),)),
    ("audit_logs", "user_id", (_email("user_email_address"),)),
    ("audit_logs", "impersonator_user_id", (_email("impersonator_email_address"),)),
)


# ----------------------------------------------------------------------------------------------- the result


@dataclass
class ErasureResult:
    """What one erasure removed (or, with `dry_run`, would remove).

    `removed`: rows deleted per table of the dataset (every table the rules or the sweep met, 0 included);
    `cleared`: values set to NULL per table (an address inside a value the company keeps); `staging_removed` /
    `staging_cleared`: the same in dlt's staging dataset `staging_dataset`; `packages_deleted`: completed load
    packages deleted from the pipeline's folder; `notes`: sentences about copies this could not erase.
    """

    destination: str
    dataset: str
    dry_run: bool = False
    emails: int = 0
    phones: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    staging_dataset: str = ""
    staging_removed: dict[str, int] = field(default_factory=dict)
    staging_cleared: dict[str, int] = field(default_factory=dict)
    packages_deleted: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        """Rows deleted from the dataset and its staging copy."""
        return sum(self.removed.values()) + sum(self.staging_removed.values())

    @property
    def values_cleared(self) -> int:
        return sum(self.cleared.values()) + sum(self.staging_cleared.values())

    @property
    def total(self) -> int:
        """Everything changed in the warehouse: rows removed and values cleared."""
        return self.rows_removed + self.values_cleared


class _Rollback(Exception):
    """Ends a dry run's transaction: dlt's sql client rolls it back and lets this through."""


# ----------------------------------------------------------------------------------------------- erase


def erase(destination: Any = "duckdb", dataset: str = DEFAULT_DATASET, emails: Sequence[str] = (),
          phones: Sequence[str] = (), *, dry_run: bool = False, pipeline_name: str = DEFAULT_PIPELINE_NAME,
          pipelines_dir: Optional[str] = None, hashed: Optional[Hasher] = None) -> ErasureResult:
    """Removes every row of `dataset` that identifies the person with these `emails` and `phones` (module
    docstring: the exact rule per table), one transaction per table; returns the counts, or raises UserError
    (UsageError: nothing or something malformed asked) with one sentence.

    `destination` is what `run_sync` takes (a name resolved as the sync does, or a dlt destination);
    `pipeline_name` and `pipelines_dir` name the sync's pipeline: its default DuckDB file, its lock (held
    meanwhile) and its folder (its completed load packages are deleted). `dry_run` counts, changes nothing.
    `hashed(group, value)` gives a value's stored hashed forms (default: `pii_hasher()`).
    """
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.run_lock import RunLock, RunLockedError

    emails, phones = check_person(emails, phones)
    candidates = person_candidates(emails, phones, hashed if hashed is not None else pii_hasher())
    pipelines_dir = pipelines_dir or get_dlt_pipelines_dir()
    try:
        with RunLock(Path(pipelines_dir) / f"{pipeline_name}.gong-sync.lock", pipeline_name):
            local = _local_pipeline(pipeline_name, pipelines_dir)
            with tempfile.TemporaryDirectory() as tmp:
                result = _erase_warehouse(destination, dataset, pipeline_name, tmp, candidates, dry_run)
            result.emails, result.phones = len(emails), len(phones)
            if local is not None:
                result.packages_deleted = _delete_loaded_packages(local, dry_run)
    except RunLockedError as exc:
        raise UserError(str(exc)) from None
    _log_end(result)
    return result


def _local_pipeline(pipeline_name: str, pipelines_dir: str) -> Any:
    """The sync's pipeline in its folder (None when it has none); raises UserError when it holds packages an
    interrupted run did not load, which the next sync would load (and with them the person's rows)."""
    import dlt
    from dlt.pipeline.exceptions import CannotRestorePipelineException

    if not (Path(pipelines_dir) / pipeline_name).is_dir():
        return None
    try:
        pipeline = dlt.attach(pipeline_name=pipeline_name, pipelines_dir=pipelines_dir)
    except CannotRestorePipelineException:
        return None
    if pipeline.has_pending_data:
        raise UserError(f"The pipeline {pipeline_name!r} holds data an interrupted run did not load, which the next "
                        "sync would load: run gong-sync first (it loads it) or gong-sync --drop-pending (it discards "
                        "it), then erase.")
    return pipeline


def _delete_loaded_packages(pipeline: Any, dry_run: bool) -> int:
    """Deletes the completed load packages dlt keeps in the pipeline's folder (the files of every loaded row;
    dlt never reads them again); returns how many there were."""
    load_ids = list(pipeline.list_completed_load_packages())
    if not dry_run:
        for load_id in load_ids:
            shutil.rmtree(pipeline.get_load_package_info(load_id).package_path, ignore_errors=True)
    if load_ids:
        logger.info("%s %d completed load package(s) in the pipeline's folder (copies of the loaded rows)",
                    "would delete" if dry_run else "deleted", len(load_ids))
    return len(load_ids)


def _erase_warehouse(destination: Any, dataset: str, pipeline_name: str, tmp: str, candidates: Candidates,
                     dry_run: bool) -> ErasureResult:
    import dlt

    from pipelines.destinations import check_destination, destination_type, duckdb_file, make_destination

    resolved = make_destination(destination, dataset, pipeline_name)
    kind = destination_type(resolved)
    if kind not in SUPPORTED:
        raise UsageError(f"gong-sync erase works on duckdb and postgres, not on {kind}: erase there with SQL by the "
                         "rules in README \"Erasing a person\".")
    # A throwaway pipeline: it reaches the warehouse through dlt's sql client, with no state of its own.
    pipeline = dlt.pipeline(pipeline_name=f"{pipeline_name}_erase", destination=resolved, dataset_name=dataset,
                            pipelines_dir=tmp)
    check_destination(pipeline)
    where = _where(pipeline, kind)
    database = duckdb_file(pipeline)
    if database is not None and not Path(database).exists():
        raise UserError(f"The dataset {dataset!r} does not exist in {where}: nothing to erase (check --dataset, "
                        "--destination and its credentials).")
    result = ErasureResult(destination=kind, dataset=dataset, dry_run=dry_run)
    try:
        client = pipeline.sql_client()
        client.__enter__()  # opens the connection (as `with pipeline.sql_client()` does)
    except Exception as exc:
        raise UserError(f"Could not connect to {where} ({user_message(exc)}): check that it is running and its "
                        "credentials.") from None
    try:
        _erase_in(client, dataset, candidates, dry_run, result, where)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"Erasing from {where} failed ({user_message(exc)}): nothing was changed by the step that "
                        "failed; fix the cause and run again.") from None
    finally:
        client.__exit__(None, None, None)
    return result


def _where(pipeline: Any, kind: str) -> str:
    """The warehouse, for a sentence (no secrets)."""
    credentials = pipeline.destination_client().config.credentials
    if kind == "duckdb":
        return f"the DuckDB file {credentials.database}"
    return f"the postgres database {credentials.database} at {credentials.host}:{credentials.port or 5432}"


def _erase_in(sql: Any, dataset: str, candidates: Candidates, dry_run: bool, result: ErasureResult,
              where: str) -> None:
    with sql.with_staging_dataset():
        staging = sql.dataset_name
    result.staging_dataset = staging
    datasets = {dataset: _tables(sql, dataset), staging: _tables(sql, staging)}
    if not datasets[dataset]:
        raise UserError(f"The dataset {dataset!r} does not exist in {where}: nothing to erase (check --dataset, "
                        "--destination and its credentials).")
    keys = _discover(sql, datasets, candidates)
    for ds, tables in datasets.items():
        if not tables:
            continue
        removed = result.removed if ds == dataset else result.staging_removed
        cleared = result.cleared if ds == dataset else result.staging_cleared
        for table in _ordered(tables):
            n_removed, n_cleared = _erase_table(sql, ds, table, tables[table], keys, candidates, dry_run)
            removed[table], cleared[table] = n_removed, n_cleared
            if n_removed or n_cleared:
                copy = "" if ds == dataset else f" (the staging copy in {ds})"
                verb = "would be" if dry_run else ""
                logger.info("%s%s: %s", table, copy, ", ".join(
                    f"{n:,} {noun}{'' if n == 1 else 's'} {verb + ' ' if verb else ''}{done}"
                    for n, noun, done in ((n_removed, "row", "removed"), (n_cleared, "value", "cleared")) if n))
    marts = _tables(sql, f"{dataset}_marts")
    if marts:
        result.notes.append(f"The models in {dataset}_marts were built before this erasure and may still hold the "
                            "person: rebuild them with make models ARGS=--full-refresh.")


@dataclass(frozen=True)
class _Column:
    name: str
    text: bool
    nullable: bool


def _tables(sql: Any, dataset: str) -> dict[str, dict[str, _Column]]:
    """The tables of `dataset` (dlt's own `_dlt_*` ones left out) and their columns."""
    rows = sql.execute_sql(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE'", dataset) or []
    tables: dict[str, dict[str, _Column]] = {}
    for table, column, data_type, nullable in rows:
        if str(table).startswith("_dlt"):
            continue
        kind = str(data_type).lower()
        text = kind in ("text", "json", "jsonb") or kind.startswith(("varchar", "character varying"))
        tables.setdefault(str(table), {})[str(column)] = _Column(str(column), text, str(nullable).upper() != "NO")
    return tables


def _ordered(tables: dict[str, dict[str, _Column]]) -> list[str]:
    """The tables in the rules' order (another calls__parties__* or users__* table before its parent), then
    every other table (only the sweep of addresses runs there)."""
    order: list[str] = []
    for rule in RULES:
        if rule.table == "calls__parties":
            order += sorted(t for t in tables if t.startswith("calls__parties__") and t not in BY_TABLE)
        if rule.table == "users":
            order += sorted(t for t in tables if t.startswith("users__") and t not in BY_TABLE)
        order.append(rule.table)
    order = [t for t in order if t in tables]
    return order + sorted(t for t in tables if t not in order)


def _rules_for(table: str) -> Optional[Rule]:
    if table in BY_TABLE:
        return BY_TABLE[table]
    if table.startswith("calls__parties__"):
        return _rule(table, _keys("parties", *PARTY))
    if table.startswith("users__"):
        return _rule(table, _USERS)
    return None


# ----------------------------------------------------------------------------------------------- SQL


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _fragments(sql: Any, match: Match, columns: dict[str, _Column], candidates: Candidates,
               keys: dict[str, set[tuple[str, ...]]]) -> list[tuple[str, list[Any]]]:
    """`match` as WHERE fragments with their parameters (one per batch of keys); none when a column is missing
    or there is nothing to compare."""
    if any(c not in columns for c in match.columns):
        return []
    cols = [sql.escape_column_name(c) for c in match.columns]
    if match.kind == "keys":
        values = sorted(keys.get(match.keys, set()))
        out = []
        for i in range(0, len(values), BATCH):
            batch = values[i:i + BATCH]
            if len(cols) == 1:
                out.append((f"{cols[0]} IN ({_marks(len(batch))})", [k[0] for k in batch]))
            else:
                tuples = ", ".join(f"({_marks(len(cols))})" for _ in batch)
                out.append((f"({', '.join(cols)}) IN ({tuples})", [v for k in batch for v in k]))
        return out
    text = f"CAST({cols[0]} AS TEXT)"
    parts: list[str] = []
    params: list[Any] = []
    if match.kind in ("email", "value") and candidates.emails:
        parts.append(f"lower({text}) IN ({_marks(len(candidates.emails))})")
        params += candidates.emails
    if match.kind in ("phone", "value") and candidates.phones:
        digits = f"regexp_replace({text}, '[^0-9]', '', 'g') IN ({_marks(len(candidates.phones))})"
        if match.kind == "value":  # a CRM value counts as a number only when it is written like one
            digits = f"(regexp_replace({text}, '[0-9 +().-]', '', 'g') = '' AND {digits})"
        parts.append(digits)
        params += candidates.phones
    if candidates.exact:
        parts.append(f"{text} IN ({_marks(len(candidates.exact))})")
        params += candidates.exact
    return [("(" + " OR ".join(parts) + ")", params)] if parts else []


def _mentions(sql: Any, column: str, candidates: Candidates) -> tuple[str, list[Any]]:
    """A fragment: the column's value contains one of the person's e-mail addresses (or their stored forms)."""
    values = list(candidates.emails) + list(candidates.exact)
    text = f"lower(CAST({sql.escape_column_name(column)} AS TEXT))"
    return "(" + " OR ".join(f"strpos({text}, %s) > 0" for _ in values) + ")", values


def _select_keys(sql: Any, datasets: dict[str, dict[str, dict[str, _Column]]], table: str,
                 key_columns: Sequence[str], matches: Iterable[Match], candidates: Candidates,
                 keys: dict[str, set[tuple[str, ...]]], where: str = "",
                 where_params: Sequence[Any] = ()) -> set[tuple[str, ...]]:
    """The distinct `key_columns` of the rows of `table` (in the dataset and its staging copy) that `matches`
    select (and `where`), without NULLs."""
    found: set[tuple[str, ...]] = set()
    for ds, tables in datasets.items():
        columns = tables.get(table)
        if columns is None or any(c not in columns for c in key_columns):
            continue
        name = _qualified(sql, ds, table)
        select = ", ".join(sql.escape_column_name(c) for c in key_columns)
        for match in matches:
            for fragment, params in _fragments(sql, match, columns, candidates, keys):
                rows = sql.execute_sql(f"SELECT DISTINCT {select} FROM {name} WHERE {fragment}{where}",
                                       *params, *where_params) or []
                found |= {tuple(str(v) for v in row) for row in rows if all(v is not None for v in row)}
    return found


def _discover(sql: Any, datasets: dict[str, dict[str, dict[str, _Column]]],
              candidates: Candidates) -> dict[str, set[tuple[str, ...]]]:
    """The person's keys: user ids, parties and speakers, CRM person objects, scorecards reviewing them."""
    keys: dict[str, set[tuple[str, ...]]] = {"users": set()}
    for table, column, matches in USER_SEEDS:
        keys["users"] |= _select_keys(sql, datasets, table, [column], matches, candidates, keys)
    party_matches = (_email("email_address"), _phone("phone_number"), _USERS)
    while True:  # a party found by an address may name a user id, whose other parties are the person's too
        more = _select_keys(sql, datasets, "calls__parties", ["user_id"], party_matches, candidates, keys)
        if more <= keys["users"]:
            break
        keys["users"] |= more
    keys["parties"] = _select_keys(sql, datasets, "calls__parties", PARTY, party_matches, candidates, keys)
    keys["speakers"] = _select_keys(sql, datasets, "calls__parties", SPEAKER, party_matches, candidates, keys)
    keys["speakers"] |= _select_keys(sql, datasets, "calls__speakers", SPEAKER, [_USERS], candidates, keys)
    person = f" AND lower(CAST({sql.escape_column_name('object_type')} AS TEXT)) IN ({_marks(len(PERSON_OBJECTS))})"
    keys["crm_objects"] = _select_keys(sql, datasets, "calls__context__objects__fields", CRM_OBJECT,
                                       [_value("value")], candidates, keys, person, PERSON_OBJECTS)
    keys["party_crm_objects"] = _select_keys(sql, datasets, "calls__parties__context__objects__fields",
                                             PARTY_CRM_OBJECT, [_value("value")], candidates, keys, person,
                                             PERSON_OBJECTS)
    keys["scorecards"] = _select_keys(sql, datasets, "answered_scorecards", ["answered_scorecard_id"],
                                      [_keys("users", "reviewed_user_id")], candidates, keys)
    logger.debug("erase: %s", {name: len(found) for name, found in keys.items()})
    return keys


def _qualified(sql: Any, dataset: str, table: str) -> str:
    with sql.with_alternative_dataset_name(dataset):
        return str(sql.make_qualified_table_name(table))


def _count(sql: Any, name: str, fragment: str, params: Sequence[Any]) -> int:
    rows = sql.execute_sql(f"SELECT count(*) FROM {name} WHERE {fragment}", *params)
    return int(rows[0][0]) if rows else 0


def _erase_table(sql: Any, dataset: str, table: str, columns: dict[str, _Column],
                 keys: dict[str, set[tuple[str, ...]]], candidates: Candidates, dry_run: bool) -> tuple[int, int]:
    """Removes the person's rows of one table and clears their addresses from its other values, in one
    transaction (rolled back on a dry run); returns (rows removed, values cleared)."""
    name = _qualified(sql, dataset, table)
    rule = _rules_for(table)
    deletes: list[tuple[str, list[Any]]] = []
    clears: list[tuple[str, str, list[Any]]] = []
    for match in rule.matches if rule else ():
        for fragment, params in _fragments(sql, match, columns, candidates, keys):
            if rule is not None and rule.clear:
                clears.append((rule.clear, fragment, params))
            else:
                deletes.append((fragment, params))
    if candidates.emails or candidates.exact:  # the sweep: an address inside any other text or JSON value
        for column in columns.values():
            if not column.text or column.name.startswith("_dlt"):
                continue
            fragment, params = _mentions(sql, column.name, candidates)
            if column.nullable:
                clears.append((column.name, fragment, params))
            else:
                deletes.append((fragment, params))
    removed = cleared = 0
    try:
        with sql.begin_transaction():
            for fragment, params in deletes:
                n = _count(sql, name, fragment, params)
                if n:
                    sql.execute_sql(f"DELETE FROM {name} WHERE {fragment}", *params)
                    removed += n
            if clears and _count(sql, name, " OR ".join(f for _, f, _ in clears),
                                 [p for _, _, params in clears for p in params]):
                for column_name, fragment, params in clears:
                    n = _count(sql, name, fragment, params)
                    if n:
                        sql.execute_sql(f"UPDATE {name} SET {sql.escape_column_name(column_name)} = NULL WHERE "
                                        f"{fragment}", *params)
                        cleared += n
            if dry_run:
                raise _Rollback()
    except _Rollback:
        pass
    except Exception as exc:
        raise UserError(f"Erasing from {dataset}.{table} failed ({user_message(exc)}): that table was left as it "
                        "was (its transaction rolled back) and the tables before it are erased; fix the cause and run "
                        "again to finish.") from None
    return removed, cleared


def _log_end(result: ErasureResult) -> None:
    if not result.total:
        logger.info("nothing to erase: no row of dataset %s holds the e-mail addresses or phone numbers asked for "
                    "(already erased, or never synced)", result.dataset)
    else:
        logger.info("%s %s and %s in dataset %s and its staging copy", "would remove" if result.dry_run else "removed",
                    _plural(result.rows_removed, "row"), _plural(result.values_cleared, "value") + " cleared",
                    result.dataset)


# ----------------------------------------------------------------------------------------------- the command


def _plural(count: int, noun: str, many: str = "") -> str:
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends in one sentence (exit 2), like every other mistake."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message[:1].upper()}{message[1:]}: see gong-sync erase --help.")


def build_parser() -> argparse.ArgumentParser:
    """The parser of `gong-sync erase`."""
    parser = _Parser(
        prog="gong-sync erase",
        description="Erase one person from the warehouse (GDPR art. 17): every row of the dataset (and of dlt's "
        "staging copy) that identifies them by these e-mail addresses and phone numbers, one transaction per table; "
        "calls stay. Erase them in Gong too (POST /v2/data-privacy/erase-data-for-email-address): see README "
        "\"Erasing a person\".",
        epilog="Exit codes: 0 done, 1 error, 2 bad arguments.")
    parser.add_argument("--email", action="append", default=[], metavar="ADDRESS",
                        help="the person's e-mail address (any case); repeat for more")
    parser.add_argument("--phone", action="append", default=[], metavar="NUMBER",
                        help="the person's phone number, compared digit for digit (+1 (425) 555-2671 = +14255552671); "
                        "repeat for more")
    parser.add_argument("--destination", default=os.environ.get("GONG_SYNC_DESTINATION", "duckdb"),
                        help="the warehouse the sync loads: duckdb (default) or postgres, with the sync's credentials")
    parser.add_argument("--dataset", default=os.environ.get("GONG_SYNC_DATASET", DEFAULT_DATASET),
                        help=f"dataset (schema) name (default: {DEFAULT_DATASET})")
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME,
                        help="the sync's pipeline: its lock is held, its completed load packages deleted "
                        f"(default: {DEFAULT_PIPELINE_NAME})")
    parser.add_argument("--pipelines-dir", default=None, help="where dlt keeps pipeline state (default: ~/.dlt)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be removed, change nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return parser


def erasure_summary(result: ErasureResult) -> str:
    """The end-of-erasure summary: rows removed per table, the total, and a final sentence."""
    asked = " and ".join(p for p in (_plural(result.emails, "e-mail address", "e-mail addresses"),
                                     _plural(result.phones, "phone number")) if not p.startswith("0 "))
    lines = [f"\nErasure{' (dry run)' if result.dry_run else ''} ({result.destination}, dataset {result.dataset}): "
             f"{asked}"]
    changed = {t: n for t, n in result.removed.items() if n}
    lines.append("  rows " + ("that would be removed" if result.dry_run else "removed") + " per table:")
    width = max([len(t) for t in [*changed, *result.cleared, *result.staging_removed]] + [10])
    lines += [f"    {table:<{width}}  {count:>9,}" for table, count in changed.items()] or ["    (none)"]
    cleared = {t: n for t, n in result.cleared.items() if n}
    if cleared:
        lines.append("  values cleared (an address inside a value that stays, set to NULL):")
        lines += [f"    {table:<{width}}  {count:>9,}" for table, count in cleared.items()]
    staging = sum(result.staging_removed.values()) + sum(result.staging_cleared.values())
    if staging:
        lines.append(f"  staging copies ({result.staging_dataset}): "
                     f"{_plural(sum(result.staging_removed.values()), 'row')} removed, "
                     f"{_plural(sum(result.staging_cleared.values()), 'value')} cleared")
    if result.packages_deleted:
        done = "to delete" if result.dry_run else "deleted"
        lines.append(f"  completed load packages in the pipeline's folder {done}: {result.packages_deleted:,}")
    lines.append(f"  total: {_plural(result.rows_removed, 'row')} removed, {_plural(result.values_cleared, 'value')} "
                 "cleared")
    lines += [f"  note: {note}" for note in result.notes]
    if result.dry_run:
        final = (f"Dry run: nothing was changed; without --dry-run, {_plural(result.total, 'row or value')} would be "
                 "erased." if result.total else "Dry run: nothing to erase, no row holds these addresses or numbers.")
    elif result.total:
        final = (f"Erased: no row of dataset {result.dataset} holds these addresses or numbers any more; erase the "
                 "person in Gong too (README \"Erasing a person\"), or the next sync brings back what Gong still has.")
    else:
        final = (f"Nothing to erase: no row of dataset {result.dataset} holds these addresses or numbers (already "
                 "erased, or never synced).")
    return "\n".join(lines) + "\n" + final
