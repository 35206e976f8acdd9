"""Sync Gong into a warehouse: `gong-sync --help`.

Runs the Gong dlt source through one dlt pipeline into DuckDB (the default), Postgres, or any
destination dlt supports, configured by dlt's own keys. Prints progress and a summary; user
mistakes end in one sentence on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STOPPED_EARLY = 3

DEFAULT_PIPELINE_NAME = "gong"
DEFAULT_DATASET = "gong"


@dataclass
class SyncResult:
    """What one sync did: rows per table, requests per endpoint, window, and why it stopped early."""

    row_counts: dict[str, int] = field(default_factory=dict)
    request_counts: dict[str, int] = field(default_factory=dict)
    requests_used: int = 0
    budget_left: Optional[int] = None
    window: Optional[list[str]] = None
    stop_reason: Optional[str] = None
    destination: str = ""
    dataset: str = ""


class UserError(Exception):
    """A mistake the user can fix; its message is the one sentence shown to them."""


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser of `gong-sync`."""
    from sources.gong.catalog import resource_names

    parser = argparse.ArgumentParser(
        prog="gong-sync",
        description="Copy Gong (API v2) into a warehouse, incrementally. Credentials and the base URL come "
        "from SOURCES__GONG__* environment variables or .dlt/secrets.toml; the destination from dlt's keys.",
        epilog="Exit codes: 0 done, 1 error, 2 bad arguments, 3 stopped early (quota or rate limit; completed "
        "work kept, run again later).",
    )
    parser.add_argument("--resources", default=None,
                        help="comma-separated resources to sync (default: all default ones: "
                        + ", ".join(resource_names(default_only=True)) + ")")
    parser.add_argument("--start", default=None, help="backfill from this date (YYYY-MM-DD or ISO date-time, UTC)")
    parser.add_argument("--end", default=None, help="backfill up to this date, exclusive (default: now)")
    parser.add_argument("--full-refresh", action="store_true",
                        help="drop the synced tables and state first and sync again from the start date")
    parser.add_argument("--destination", default=os.environ.get("GONG_SYNC_DESTINATION", "duckdb"),
                        help="dlt destination: duckdb (default), postgres, or any other dlt destination; its "
                        "credentials come from dlt config, e.g. DESTINATION__POSTGRES__CREDENTIALS")
    parser.add_argument("--dataset", default=os.environ.get("GONG_SYNC_DATASET", DEFAULT_DATASET),
                        help="dataset (schema) name in the destination (default: gong)")
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME,
                        help="dlt pipeline name; also names the DuckDB file (default: gong -> gong.duckdb)")
    parser.add_argument("--pipelines-dir", default=None, help="where dlt keeps pipeline state (default: ~/.dlt)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (credentials never shown)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return parser


def parse_resources(value: Optional[str]) -> list[str]:
    """Returns the resource names asked for, or raises UserError naming an unknown one and the valid ones."""
    from sources.gong.catalog import resource_names

    if not value:
        return resource_names(default_only=True)
    names = [n.strip() for n in value.split(",") if n.strip()]
    valid = resource_names()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UserError(f"Unknown resource {', '.join(map(repr, unknown))}: choose from {', '.join(valid)}.")
    if not names:
        raise UserError(f"--resources is empty: choose from {', '.join(valid)}.")
    return names


def run_sync(
    resources: Sequence[str],
    start: Optional[str] = None,
    end: Optional[str] = None,
    full_refresh: bool = False,
    destination: Any = "duckdb",
    dataset: str = DEFAULT_DATASET,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    pipelines_dir: Optional[str] = None,
    source_options: Optional[dict[str, Any]] = None,
) -> SyncResult:
    """Runs one sync and returns what it did; raises UserError for mistakes the user can fix.

    Holds a lock so that two runs of the same pipeline never overlap, and counts every request in
    the company's daily ledger (kept beside dlt's pipelines), so the budget spans runs of a day.
    """
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.run_lock import RunLock, RunLockedError

    pipelines_dir = pipelines_dir or get_dlt_pipelines_dir()
    try:
        with RunLock(Path(pipelines_dir) / f"{pipeline_name}.gong-sync.lock", pipeline_name):
            return _run_sync_locked(resources, start, end, full_refresh, destination, dataset, pipeline_name,
                                    pipelines_dir, source_options)
    except RunLockedError as exc:
        raise UserError(str(exc)) from None


def _run_sync_locked(resources: Sequence[str], start: Optional[str], end: Optional[str], full_refresh: bool,
                     destination: Any, dataset: str, pipeline_name: str, pipelines_dir: str,
                     source_options: Optional[dict[str, Any]]) -> SyncResult:
    import dlt
    from dlt.common.configuration.exceptions import ConfigurationException
    from dlt.pipeline.exceptions import PipelineStepFailed

    from sources.gong import GongError, gong_source, make_client
    from sources.gong.budget import BudgetLedger

    # Transcripts arrive as Arrow tables; stamp them with the load id like every other table.
    os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    options = dict(source_options or {})
    own_client = options.get("client") is None
    try:
        client = options.pop("client", None) or make_client()
        if client.ledger is None:
            host = re.sub(r"[^A-Za-z0-9.-]+", "_", client.base_url.split("://", 1)[-1])
            client.ledger = BudgetLedger(Path(pipelines_dir) / "gong_request_budget" / f"{host}.json")
        source = gong_source(start_date=start, end_date=end, client=client, **options)
    except Exception as exc:  # dlt wraps errors raised while the source is built
        raise UserError(_user_message(exc)) from None
    source = source.with_resources(*resources)
    try:
        pipeline = dlt.pipeline(pipeline_name=pipeline_name, destination=destination, dataset_name=dataset,
                                pipelines_dir=pipelines_dir)
    except Exception as exc:
        raise UserError(f"The destination {destination!r} could not be set up: {_user_message(exc)}") from None
    try:
        pipeline.run(source, refresh="drop_sources" if full_refresh else None)
    except PipelineStepFailed as exc:
        raise UserError(_step_message(exc)) from None
    except (GongError, ConfigurationException) as exc:
        raise UserError(_user_message(exc)) from None
    except Exception as exc:
        raise UserError(_step_message_generic(exc, destination)) from None
    finally:
        if own_client:
            client.close()

    trace = pipeline.last_trace
    rows = dict(trace.last_normalize_info.row_counts) if trace and trace.last_normalize_info else {}
    state = pipeline.state.get("sources", {}).get("gong", {}).get("resources", {}).get("calls", {})
    return SyncResult(
        row_counts={k: v for k, v in rows.items() if not k.startswith("_dlt")},
        request_counts=dict(client.request_counts),
        requests_used=client.requests_used,
        budget_left=client.budget_left,
        window=state.get("last_window") if "calls" in resources or "transcripts" in resources else None,
        stop_reason=client.stop_reason,
        destination=pipeline.destination.destination_name if pipeline.destination else str(destination),
        dataset=dataset,
    )


_SECRET_URL = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


def scrub(text: str) -> str:
    """Removes passwords from connection strings inside `text`."""
    return _SECRET_URL.sub(r"\1***@", text)


def _root_causes(exc: BaseException) -> list[BaseException]:
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


def _user_message(exc: BaseException) -> str:
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    from sources.gong import GongError

    for e in _root_causes(exc):
        if isinstance(e, GongError):
            return str(e)
    for e in _root_causes(exc):
        if isinstance(e, ConfigFieldMissingException):
            return f"A required setting is missing ({', '.join(e.fields)}): set it in .dlt/secrets.toml, " \
                   ".dlt/config.toml or the environment (see README)."
    return scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _step_message(exc: Any) -> str:
    from sources.gong import GongError

    causes = _root_causes(exc)
    for e in causes:
        if isinstance(e, GongError):
            return str(e)
    return _step_message_generic(exc, exc.pipeline.destination.destination_name if exc.pipeline.destination
                                 else "destination", step=exc.step)


def _step_message_generic(exc: BaseException, destination: Any, step: str = "run") -> str:
    from dlt.destinations.exceptions import DestinationConnectionError, DestinationUndefinedEntity

    causes = _root_causes(exc)
    for e in causes:
        if isinstance(e, DestinationConnectionError) or type(e).__name__ in ("OperationalError",):
            return scrub(
                f"Could not connect to the {destination} destination ({str(e).splitlines()[0][:200]}): check "
                f"that it is running and DESTINATION__{str(destination).upper()}__CREDENTIALS."
            )
        if isinstance(e, DestinationUndefinedEntity):
            return scrub(f"The {destination} destination is missing something: {str(e).splitlines()[0][:200]}.")
    last = causes[-1]
    detail = str(last).splitlines()[0][:300] if str(last) else ""
    return scrub(f"The {step} step failed: {type(last).__name__}: {detail}")


def print_summary(result: SyncResult, out: Any = None) -> None:
    """Prints the end-of-run summary: rows per table, requests per endpoint, window, budget."""
    out = out or sys.stdout
    w = out.write
    w(f"\nSync summary ({result.destination}, dataset {result.dataset})\n")
    if result.window:
        w(f"  calls window synced: {result.window[0]} .. {result.window[1]} (end exclusive)\n")
    w("  rows loaded per table:\n")
    if not result.row_counts:
        w("    (no rows)\n")
    width = max([len(t) for t in result.row_counts] + [10])
    for table, count in sorted(result.row_counts.items()):
        w(f"    {table:<{width}}  {count:>9,}\n")
    w(f"  Gong requests: {result.requests_used}"
      + (f" (daily budget left: {result.budget_left})" if result.budget_left is not None else "") + "\n")
    for path, count in sorted(result.request_counts.items()):
        w(f"    {path:<{width}}  {count:>9,}\n")
    if result.stop_reason:
        w(f"  STOPPED EARLY: {result.stop_reason}\n")


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Sends the project's progress lines to stdout; DEBUG shows every request (never credentials)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    root = logging.getLogger("gong_sync")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `gong-sync` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        resources = parse_resources(args.resources)
        if not args.quiet:
            print(f"Syncing {', '.join(resources)} from Gong into {args.destination} (dataset {args.dataset})...",
                  flush=True)
        result = run_sync(resources, start=args.start, end=args.end, full_refresh=args.full_refresh,
                          destination=args.destination, dataset=args.dataset, pipeline_name=args.pipeline_name,
                          pipelines_dir=args.pipelines_dir)
    except UserError as exc:
        print(f"gong-sync: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("gong-sync: interrupted; nothing of the unfinished step was committed, run again to resume.",
              file=sys.stderr)
        return 130
    print_summary(result)
    return EXIT_STOPPED_EARLY if result.stop_reason else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
