"""The sentences a user reads when a run cannot go on: every failure becomes one line that says what to fix.

`UserError` is a mistake or a fault the user can act on (exit 1); `UsageError` a bad argument or setting
(exit 2). `user_message` and `step_message` turn dlt's and the client's exceptions into such a sentence,
with any password in a connection string masked.
"""

from __future__ import annotations

import re
from typing import Any


class UserError(Exception):
    """A mistake the user can fix; its message is the one sentence shown to them (exit code 1)."""


class UsageError(UserError):
    """A bad argument or setting: refused before anything runs (exit code 2)."""


_SECRET_URL = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


def scrub(text: str) -> str:
    """Removes passwords from connection strings inside `text`."""
    return _SECRET_URL.sub(r"\1***@", text)


def root_causes(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception behind it (dlt's wrapped `exception`, causes and contexts), nearest first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        chain.append(e)
        for nxt in (getattr(e, "exception", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return chain


def deepest_cause(exc: BaseException) -> BaseException:
    """Follows the explicit causes (dlt's wrapped exception, `raise ... from`) to the original error."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "exception", None) or exc.__cause__
        if not isinstance(nxt, BaseException):
            break
        exc = nxt
    return exc


def missing_settings(exc: Any) -> str:
    """The environment variables that would fill the fields a ConfigFieldMissingException names, e.g.
    `DESTINATION__POSTGRES__CREDENTIALS` (a connection string) or `SOURCES__GONG__ACCESS_KEY`."""
    names: list[str] = []
    for field, traces in (getattr(exc, "traces", None) or {}).items():
        found: list[list[str]] = []
        nested = _lookup_sections(traces, found)
        sections = max(found, key=len, default=[])
        if not nested:  # a plain value: its own key after its sections
            sections = [*sections, field]
        elif sections[-1:] != [field]:
            sections = [*sections, field]
        names.append("__".join(s.upper() for s in sections))
    return " and ".join(dict.fromkeys(names)) or "the missing setting"


def _lookup_sections(traces: Any, found: list[list[str]]) -> bool:
    """Collects the `sections` of every lookup dlt tried for one field; True when the field is a whole
    configuration (its lookups are those of its own fields, e.g. the parts of a connection string)."""
    nested = False
    for item in traces if isinstance(traces, list) else [traces]:
        inner = getattr(item, "traces", None)
        if isinstance(inner, dict):
            nested = True
            for value in inner.values():
                _lookup_sections(value, found)
        elif getattr(item, "sections", None) is not None:
            found.append([str(s) for s in item.sections])
    return nested


def user_message(exc: BaseException) -> str:
    """One sentence for an error met while configuring or running: the client's own message, the setting to
    fill in, or the error's type and first line."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigValueCannotBeCoercedException

    from sources.gong import GongError

    for e in root_causes(exc):
        if isinstance(e, GongError):
            return str(e)
    for e in root_causes(exc):
        if isinstance(e, ConfigValueCannotBeCoercedException):
            kind = getattr(e.hint, "__name__", None) or str(e.hint)
            shown = "" if any(w in e.field_name for w in ("secret", "key", "token", "password", "credentials")) \
                else f" {e.field_value!r}"
            return f"The setting {e.field_name}{shown} is not a valid {kind}: fix it in .dlt/config.toml or the " \
                   "environment."
        if isinstance(e, ConfigFieldMissingException):
            return f"A required setting is missing: set {missing_settings(e)} in the environment, .dlt/secrets.toml " \
                   "or .dlt/config.toml (see README)."
    return scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def step_message(exc: Any) -> str:
    """One sentence for a failed dlt pipeline step (PipelineStepFailed)."""
    from sources.gong import GongError

    for e in root_causes(exc):
        if isinstance(e, GongError):
            return str(e)
    destination = exc.pipeline.destination.destination_name if exc.pipeline.destination else "destination"
    return step_message_generic(exc, destination, step=exc.step)


def step_message_generic(exc: BaseException, destination: Any, step: str = "run") -> str:
    """One sentence for any failure of a step against `destination`: unreachable, refused load job, other."""
    from dlt.destinations.exceptions import DestinationConnectionError, DestinationUndefinedEntity
    from dlt.load.exceptions import LoadClientJobFailed, LoadClientJobRetry

    causes = root_causes(exc)
    lost = None if any(isinstance(e, DestinationConnectionError) for e in causes) else next(
        (e for e in causes if any(c.__name__ == "OperationalError" for c in type(e).__mro__)), None)
    if lost is not None and step == "load":
        # The connection was open (dlt says so when opening one fails) and went away under a load: killed, or
        # the server restarted. dlt retries such a job; what it could not finish waits in its package.
        return scrub(
            f"The {destination} destination lost the connection in the middle of the load "
            f"({str(lost).splitlines()[0][:200]}): what was loaded before is kept, the package is kept and the "
            "next run loads it again; check that the database is running and run again."
        )
    for e in causes:
        if isinstance(e, DestinationConnectionError) or e is lost:
            return scrub(
                f"Could not connect to the {destination} destination ({str(e).splitlines()[0][:200]}): check "
                f"that it is running and DESTINATION__{str(destination).upper()}__CREDENTIALS."
            )
        if isinstance(e, DestinationUndefinedEntity):
            return scrub(f"The {destination} destination is missing something: {str(e).splitlines()[0][:200]}.")
    for e in causes:
        # A load job that failed: dlt keeps the whole traceback as its message; its last line says why.
        failed = getattr(e, "failed_message", None)
        if isinstance(failed, str) and failed.strip():
            reason = [line.strip() for line in failed.splitlines() if line.strip()][-1][:300]
            table = str(getattr(e, "job_id", "")).split(".")[0] or "a table"
            if isinstance(e, LoadClientJobFailed):  # dlt aborted the package
                what, then = "refused the load of", "the package was dropped and its window will be read again"
            elif isinstance(e, LoadClientJobRetry):  # a transient failure, retried until dlt's limit
                what, then = "kept failing to load", "the package is kept and the next run loads it again"
            else:
                what, then = "refused the load of", "the package is kept and the next run loads it again"
            return scrub(f"The {destination} destination {what} {table} ({reason}): what was loaded before is "
                         f"kept, {then}; fix the cause and run again.")
    last = deepest_cause(exc)
    detail = str(last).splitlines()[0][:300] if str(last) else ""
    return scrub(f"The {step} step failed: {type(last).__name__}: {detail}")


def setting_error(exc: BaseException) -> UserError:
    """The UserError for an error met while setting up or running: a UsageError when a setting is invalid."""
    from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException

    from sources.gong import GongConfigError

    message = user_message(exc)
    if any(isinstance(e, (GongConfigError, ConfigValueCannotBeCoercedException)) for e in root_causes(exc)):
        return UsageError(message)
    return UserError(message)
