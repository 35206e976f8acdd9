"""Several Gong accounts (regions, acquisitions): each synced into a dataset of its own, one after the other.

Accounts are listed in the config, one table each; credentials beside them in .dlt/secrets.toml:

    # .dlt/config.toml                          # .dlt/secrets.toml
    [sources.gong.accounts.emea]                [sources.gong.accounts.emea]
    base_url = "https://eu-1.api.gong.io"       access_key = "..."
    [sources.gong.accounts.us]                  access_key_secret = "..."
    base_url = "https://us-2.api.gong.io"       [sources.gong.accounts.us]
    dataset = "gong_us"    # optional           bearer_token = "..."

(or all of it as JSON in SOURCES__GONG__ACCOUNTS). `gong-sync --all-accounts` syncs each into the dataset
`<--dataset>_<name>` (or its own `dataset`) with the pipeline `<--pipeline-name>_<name>`, so each has its
own dlt state, run lock and, being another Gong company, its own daily ledger and pace (keyed by its host).

One dataset per account, not one dataset with an `account` column: every table's key, merge and reconcile
stay those of one Gong company (ids are unique per company only), an account's `--full-refresh` or
failure touches nothing of the others, and the dbt models build per account unchanged; a union across
accounts is one `UNION ALL` view per mart. A failure in one account is reported and the next runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from pipelines.errors import UsageError, UserError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_KEYS = {"base_url", "access_key", "access_key_secret", "bearer_token", "dataset"}


@dataclass(frozen=True)
class Account:
    """One Gong account of the config (its secrets never in a repr)."""

    name: str
    base_url: str
    access_key: Optional[str] = field(default=None, repr=False)
    access_key_secret: Optional[str] = field(default=None, repr=False)
    bearer_token: Optional[str] = field(default=None, repr=False)
    dataset: Optional[str] = None


@dataclass
class AccountOutcome:
    """What one account's sync did: its result, or the sentence it failed with."""

    account: str
    dataset: str
    result: Any = None
    error: Optional[str] = None

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "stopped early" if self.result.stop_reason else "ok"


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise UsageError(f"{where} is not a JSON object of accounts: give e.g. "
                             '{"emea": {"base_url": "https://eu-1.api.gong.io"}}.') from None
    if not isinstance(value, dict):
        raise UsageError(f"{where} must list accounts by name, one table each ([sources.gong.accounts.NAME]).")
    return dict(value)


def configured_accounts() -> list[Account]:
    """The accounts of the config and secrets (sources.gong.accounts), checked; raises UsageError naming what
    is wrong."""
    import dlt

    merged: dict[str, dict[str, Any]] = {}
    for where, value in (("sources.gong.accounts", dlt.config.get("sources.gong.accounts")),
                         ("sources.gong.accounts (secrets)", dlt.secrets.get("sources.gong.accounts"))):
        for name, settings in _table(value, where).items():
            if not isinstance(settings, dict):
                raise UsageError(f"sources.gong.accounts.{name} must be a table of settings (base_url, access_key, "
                                 "access_key_secret or bearer_token, dataset).")
            merged.setdefault(str(name), {}).update(settings)
    if not merged:
        raise UsageError("--all-accounts found no accounts: list them as [sources.gong.accounts.NAME] with base_url "
                         "in .dlt/config.toml and their credentials in .dlt/secrets.toml (README \"Several Gong "
                         "accounts\").")
    accounts = []
    for name, settings in sorted(merged.items()):
        if not _NAME.match(name):
            raise UsageError(f"Account name {name!r} must be lower-case letters, digits and _ (it names a dataset).")
        unknown = sorted(set(settings) - _KEYS)
        if unknown:
            raise UsageError(f"sources.gong.accounts.{name} has no setting {unknown[0]!r}: use "
                             f"{', '.join(sorted(_KEYS))}.")
        if not settings.get("base_url"):
            raise UsageError(f"sources.gong.accounts.{name} has no base_url: add your company's Gong API address.")
        if not settings.get("bearer_token") and not (settings.get("access_key") and settings.get("access_key_secret")):
            raise UsageError(f"sources.gong.accounts.{name} has no credentials: add access_key and access_key_secret "
                             "(or bearer_token) under [sources.gong.accounts."
                             f"{name}] in .dlt/secrets.toml.")
        accounts.append(Account(name=name, **{k: str(v) for k, v in settings.items()}))
    return accounts


def sync_accounts(accounts: list[Account], dataset: str, pipeline_name: str,
                  run: Callable[..., Any], make_client: Callable[..., Any], **sync_args: Any) -> list[AccountOutcome]:
    """Syncs every account in turn with `run` (run_sync) and a client of its own; a failure is kept as its
    sentence and the next account runs."""
    outcomes = []
    options = dict(sync_args.pop("source_options", None) or {})
    for account in accounts:
        target = account.dataset or f"{dataset}_{account.name}"
        outcome = AccountOutcome(account.name, target)
        try:
            credentials = {k: v for k, v in (("access_key", account.access_key),
                                             ("access_key_secret", account.access_key_secret),
                                             ("bearer_token", account.bearer_token)) if v}
            client = make_client(account.base_url, **credentials)
        except Exception as exc:  # a malformed setting of this account
            from pipelines.errors import setting_error

            outcome.error = str(setting_error(exc))
            outcomes.append(outcome)
            continue
        try:
            outcome.result = run(dataset=target, pipeline_name=f"{pipeline_name}_{account.name}",
                                 source_options={**options, "client": client}, **sync_args)
        except UserError as exc:
            # The sentences name the one account's settings; here they are this account's.
            own = f"access_key / access_key_secret of [sources.gong.accounts.{account.name}]"
            outcome.error = str(exc).replace("SOURCES__GONG__ACCESS_KEY / SOURCES__GONG__ACCESS_KEY_SECRET", own)
        finally:
            client.close()
        outcomes.append(outcome)
    return outcomes


def accounts_summary(outcomes: list[AccountOutcome]) -> str:
    """One line per account: what it loaded, or why it failed."""
    from pipelines.cli import plural

    lines = ["Accounts:"]
    width = max(len(o.account) for o in outcomes)
    for o in outcomes:
        if o.error:
            lines.append(f"  {o.account:<{width}}  FAILED   {o.error}")
        else:
            rows = sum(o.result.row_counts.values())
            lines.append(f"  {o.account:<{width}}  {o.status:<8} {plural(rows, 'row')} into {o.dataset}, "
                         f"{plural(o.result.requests_used, 'request')}"
                         + (f": {o.result.stop_reason}" if o.result.stop_reason else ""))
    ok = sum(1 for o in outcomes if not o.error)
    lines.append(f"{ok} of {plural(len(outcomes), 'account')} synced"
                 + ("" if ok == len(outcomes) else "; run again to retry the others (each resumes on its own)"))
    return "\n".join(lines)
