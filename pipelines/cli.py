"""The `gong-sync` command line: arguments, progress output, the summary, and exit codes.

Everything a user can get wrong is checked before anything is read or written, and ends in one sentence
on stderr: exit 2 for a bad argument or setting, 1 for anything else to fix, 3 when Gong's quota or rate
limit stopped the run early (completed work is kept: run again later).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from pipelines.errors import UsageError, UserError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STOPPED_EARLY = 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends in the same one sentence as every other mistake."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message[:1].upper()}{message[1:]}: see gong-sync --help.")


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser of `gong-sync`."""
    from pipelines.gong_pipeline import (
        DEFAULT_CHUNK_PAGES,
        DEFAULT_DATASET,
        DEFAULT_PIPELINE_NAME,
        DEFAULT_RECONCILE_DAYS,
        DEFAULT_WINDOW_DAYS,
        DEFAULT_WINDOW_REQUESTS,
    )
    from sources.gong.catalog import resource_names

    parser = _Parser(
        prog="gong-sync",
        description="Copy Gong (API v2) into a warehouse, incrementally. Credentials and the base URL come "
        "from SOURCES__GONG__* environment variables or .dlt/secrets.toml; the destination from dlt's keys.",
        epilog="Exit codes: 0 done, 1 error, 2 bad arguments or settings, 3 stopped early (quota or rate limit; "
        "completed work kept, run again later).",
    )
    parser.add_argument("--resources", default=None,
                        help="comma-separated resources to sync (default: all default ones: "
                        + ", ".join(resource_names(default_only=True)) + ")")
    parser.add_argument("--start", default=None, help="backfill from this date (YYYY-MM-DD or ISO date-time, UTC)")
    parser.add_argument("--end", default=None, help="backfill up to this date, exclusive (default: now)")
    parser.add_argument("--reconcile", action="store_true",
                        help="re-read the last --reconcile-days and delete the calls Gong no longer returns "
                        "(deleted or made private), with their child rows and transcripts; weekly is enough")
    parser.add_argument("--soft-delete", action="store_true",
                        help="with --reconcile: keep the vanished calls and their rows, marked is_deleted with the "
                        "time (deleted_at), instead of deleting them")
    parser.add_argument("--reconcile-days", type=float, default=DEFAULT_RECONCILE_DAYS,
                        help=f"days a reconcile run re-reads (default {DEFAULT_RECONCILE_DAYS:g})")
    parser.add_argument("--window-days", type=float, default=DEFAULT_WINDOW_DAYS,
                        help="a range longer than this many days loads in windows, each committed on its own "
                        f"(default {DEFAULT_WINDOW_DAYS:g}; 0 = the whole range in one window; windows of this "
                        "size with --window-requests 0)")
    parser.add_argument("--drop-pending", action="store_true",
                        help="discard what an interrupted run extracted but did not load, instead of loading it "
                        "first (recovery for a package that keeps failing; its window is read again)")
    parser.add_argument("--window-requests", type=int, default=DEFAULT_WINDOW_REQUESTS,
                        help="windows are sized to take about this many requests, from Gong's count of the "
                        f"calls or what a window took (default {DEFAULT_WINDOW_REQUESTS}; 0 = days only)")
    parser.add_argument("--chunk-pages", type=int, default=DEFAULT_CHUNK_PAGES,
                        help="load a window's calls in chunks of at most this many pages of 100 calls (with "
                        f"their transcripts) while the rest is read (default {DEFAULT_CHUNK_PAGES}; 0 = whole windows)")
    parser.add_argument("--max-requests-per-day", type=int, default=None, metavar="N",
                        help="the share of the company's 10,000 daily Gong requests this sync may spend, counted with "
                        "every run of the day (default: SOURCES__GONG__DAILY_BUDGET, 10000); `gong-sync plan` says "
                        "how many days a backfill takes under it")
    parser.add_argument("--full-refresh", action="store_true",
                        help="drop the synced tables and state first and sync again from the start date")
    parser.add_argument("--destination", default=os.environ.get("GONG_SYNC_DESTINATION", "duckdb"),
                        help="dlt destination: duckdb (default, the file gong_warehouse.duckdb), postgres, or any "
                        "other dlt destination; its credentials come from dlt config, e.g. "
                        "DESTINATION__POSTGRES__CREDENTIALS")
    parser.add_argument("--dataset", default=os.environ.get("GONG_SYNC_DATASET", DEFAULT_DATASET),
                        help=f"dataset (schema) name in the destination (default: {DEFAULT_DATASET})")
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME,
                        help=f"dlt pipeline name, which keeps the state (default: {DEFAULT_PIPELINE_NAME})")
    parser.add_argument("--pipelines-dir", default=None, help="where dlt keeps pipeline state (default: ~/.dlt)")
    parser.add_argument("--transform", action="store_true",
                        help="after the sync, build the dbt models (transform/) on the same warehouse, as `make "
                        "models` does (with --full-refresh, the models are rebuilt from scratch too)")
    parser.add_argument("--all-accounts", action="store_true",
                        help="sync every Gong account listed under [sources.gong.accounts.NAME], each into the "
                        "dataset <--dataset>_NAME with a pipeline, state and lock of its own (README \"Several Gong "
                        "accounts\"); a failure in one does not stop the others")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (credentials never shown)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return parser


def parse_resources(value: Optional[str]) -> list[str]:
    """Returns the resource names asked for, or raises UsageError naming an unknown one and the valid ones."""
    from sources.gong.catalog import resource_names

    if value is None:
        return resource_names(default_only=True)
    names = [n.strip() for n in value.split(",") if n.strip()]
    valid = resource_names()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UsageError(f"Unknown resource {', '.join(map(repr, unknown))}: choose from {', '.join(valid)}.")
    if not names:
        raise UsageError(f"--resources is empty: choose from {', '.join(valid)}.")
    return names


def plural(count: int, noun: str, many: Optional[str] = None) -> str:
    """`1 row`, `2 rows`, `1,024 requests`."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def print_summary(result: Any, out: Any = None) -> None:
    """Prints the end-of-run summary: rows per table, requests per endpoint, window, budget, time taken."""
    out = out or sys.stdout
    w = out.write
    w(f"\nSync summary ({result.destination}, dataset {result.dataset})\n")
    if result.window:
        w(f"  calls window synced: {result.window[0]} .. {result.window[1]} (end exclusive)"
          + (f", in {result.windows} windows" if result.windows > 1 else "") + "\n")
    if result.pending_loaded:
        w(f"  first loaded {plural(result.pending_loaded, 'package')} an interrupted run had left behind\n")
    if result.deleted_calls is not None:
        w(f"  reconcile: {plural(result.deleted_calls, 'call')} Gong no longer returns "
          f"{'was' if result.deleted_calls == 1 else 'were'} "
          + ("marked deleted (is_deleted, deleted_at) with all their rows\n" if result.soft_delete
             else "deleted with all their rows\n"))
    w("  rows loaded per table:\n")
    if not result.row_counts:
        w("    (no rows)\n")
    width = max([len(t) for t in result.row_counts] + [10])
    for table, count in sorted(result.row_counts.items()):
        w(f"    {table:<{width}}  {count:>9,}\n")
    if result.rejected:
        w(f"  set aside: {plural(result.rejected, 'record')} Gong sent that could not be loaded as the contract says "
          f"(SELECT endpoint, record_id, reason FROM {result.dataset}._gong_rejected)\n")
    w(f"  Gong requests: {result.requests_used:,}"
      + (f" (daily budget left: {result.budget_left:,})" if result.budget_left is not None else "") + "\n")
    for path, count in sorted(result.request_counts.items()):
        w(f"    {path:<{width}}  {count:>9,}\n")
    if result.elapsed_s is not None:
        w(f"  took {format_duration(result.elapsed_s)}\n")
    if result.stop_reason:
        w(f"  STOPPED EARLY: {result.stop_reason}\n")


def format_duration(seconds: float) -> str:
    """`4.2 s`, `3 min 05 s`, `1 h 02 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time of each record (it may be replaced after setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Caps glibc's malloc arenas for this process, as MALLOC_ARENA_MAX does, unless that is set already.

    By default every thread that allocates (read-ahead, the loader's workers) may get an arena of its own, up
    to 8 per core, and each keeps the memory it freed: a 10,240-call backfill peaked ~70-100 MB higher
    (bench/RESULTS.md). For processes that run syncs (the CLI, the demo, the benchmark), not for a library
    call: it changes the whole process. Does nothing without glibc (macOS, musl, Windows).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(ctypes.c_int(-8), ctypes.c_int(arenas))  # -8: M_ARENA_MAX in malloc.h
    except (OSError, AttributeError, TypeError):
        pass


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Sends the project's progress lines to stdout; DEBUG shows every request (never credentials)."""
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("  %(message)s"))
    root = logging.getLogger("gong_sync")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `gong-sync` console script; returns the process exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["erase"]:
        return erase_command(words[1:])
    if words[:1] == ["plan"]:
        return plan_command(words[1:])
    from pipelines import gong_pipeline
    from pipelines.config_files import check_settings_files, exposed_secrets

    try:
        args = build_parser().parse_args(argv)
        configure_logging(args.verbose, args.quiet)
        limit_malloc_arenas()
        check_settings_files()
        for warning in exposed_secrets():
            print(f"gong-sync: warning: {warning}", file=sys.stderr)
        resources = parse_resources(args.resources)
        if args.all_accounts:
            return _all_accounts(args, resources)
        if not args.quiet:
            print(f"Syncing {', '.join(resources)} from Gong into {args.destination} (dataset {args.dataset})...",
                  flush=True)
        result = gong_pipeline.run_sync(resources, dataset=args.dataset, pipeline_name=args.pipeline_name,
                                        **_sync_arguments(args))
    except UserError as exc:
        print(f"gong-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("gong-sync: interrupted; nothing of the unfinished step was committed, run again to resume.",
              file=sys.stderr)
        return 130
    print_summary(result)
    if args.transform:
        code = _transform(args)
        if code != EXIT_OK:
            return code
    return EXIT_STOPPED_EARLY if result.stop_reason else EXIT_OK


def _sync_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The run_sync arguments of the command line (but the dataset and pipeline name)."""
    return dict(start=args.start, end=args.end, full_refresh=args.full_refresh, destination=args.destination,
                pipelines_dir=args.pipelines_dir, reconcile=args.reconcile, reconcile_days=args.reconcile_days,
                window_days=args.window_days, drop_pending=args.drop_pending, window_requests=args.window_requests,
                chunk_pages=args.chunk_pages, max_requests_per_day=args.max_requests_per_day,
                soft_delete=args.soft_delete)


def _all_accounts(args: argparse.Namespace, resources: list[str]) -> int:
    """`--all-accounts`: each configured account in turn (pipelines/accounts.py); exit 1 when one failed, 3 when
    one stopped early, else 0."""
    from pipelines import gong_pipeline
    from pipelines.accounts import accounts_summary, configured_accounts, sync_accounts
    from sources.gong import make_client

    if args.transform:
        raise UsageError("--transform builds one dataset's models: with --all-accounts, run `make models "
                         "ARGS='--dataset <dataset>_NAME'` for each account after the sync.")
    accounts = configured_accounts()

    def run(**kwargs: Any) -> Any:
        if not args.quiet:
            print(f"\nSyncing {', '.join(resources)} of account {kwargs['pipeline_name']} into {args.destination} "
                  f"(dataset {kwargs['dataset']})...", flush=True)
        result = gong_pipeline.run_sync(resources, **kwargs)
        print_summary(result)
        return result

    sync_args = _sync_arguments(args)
    if args.destination == "duckdb":  # every account into the one default file, each in its dataset
        from pipelines.destinations import make_destination

        sync_args["destination"] = make_destination("duckdb", args.dataset, args.pipeline_name)
    outcomes = sync_accounts(accounts, args.dataset, args.pipeline_name, run, make_client, **sync_args)
    print("\n" + accounts_summary(outcomes))
    for outcome in outcomes:
        if outcome.error:
            print(f"gong-sync: account {outcome.account}: {outcome.error}", file=sys.stderr)
    if any(o.error for o in outcomes):
        return EXIT_ERROR
    return EXIT_STOPPED_EARLY if any(o.result.stop_reason for o in outcomes) else EXIT_OK


def _transform(args: argparse.Namespace) -> int:
    """`--transform`: builds the models on what the sync committed (also after a run stopped early: its loads
    are whole); a failed build leaves the synced data as it is."""
    from pipelines.models import build_models, models_summary

    if not args.quiet:
        print("\nBuilding the models (transform/)...", flush=True)
    try:
        built = build_models(destination=args.destination, dataset=args.dataset, full_refresh=args.full_refresh,
                             pipeline_name=args.pipeline_name, progress=args.verbose)
    except UserError as exc:
        print(f"gong-sync: the sync is loaded, but the models were not built: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    print("\n" + models_summary(built))
    return EXIT_OK


def erase_command(argv: Sequence[str]) -> int:
    """`gong-sync erase --email ADDRESS --phone NUMBER ...` (pipelines/erase.py): erases one person from the
    warehouse and prints what it removed; exit 2 for a bad or missing argument, 1 for anything else to fix."""
    from pipelines.config_files import check_settings_files
    from pipelines.erase import build_parser as build_erase_parser
    from pipelines.erase import erase, erasure_summary

    try:
        args = build_erase_parser().parse_args(argv)
        configure_logging(args.verbose, args.quiet)
        check_settings_files()
        result = erase(args.destination, args.dataset, emails=args.email, phones=args.phone, dry_run=args.dry_run,
                       pipeline_name=args.pipeline_name, pipelines_dir=args.pipelines_dir)
    except UserError as exc:
        print(f"gong-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("gong-sync: interrupted; the table being erased was left as it was, run again to finish.",
              file=sys.stderr)
        return 130
    print(erasure_summary(result))
    return EXIT_OK


def build_plan_parser() -> argparse.ArgumentParser:
    """The parser of `gong-sync plan`."""
    from pipelines.gong_pipeline import DEFAULT_WINDOW_DAYS, DEFAULT_WINDOW_REQUESTS

    parser = _Parser(prog="gong-sync plan",
                     description="Plan a backfill without syncing: ask Gong for the counts (a few requests) and print "
                     "the requests, days and sending time the sync of the range will take.",
                     epilog="Exit codes: 0 done, 1 error, 2 bad arguments.")
    parser.add_argument("--start", required=True, help="the backfill's start (YYYY-MM-DD or ISO date-time, UTC)")
    parser.add_argument("--end", default=None, help="its end, exclusive (default: now)")
    parser.add_argument("--resources", default=None, help="comma-separated resources (default: the sync's)")
    parser.add_argument("--max-requests-per-day", type=int, default=None, metavar="N",
                        help="the share of the company's daily requests the backfill may spend (default: the daily "
                        "budget, SOURCES__GONG__DAILY_BUDGET)")
    parser.add_argument("--window-days", type=float, default=DEFAULT_WINDOW_DAYS, help="as for the sync")
    parser.add_argument("--window-requests", type=int, default=DEFAULT_WINDOW_REQUESTS, help="as for the sync")
    parser.add_argument("--pipelines-dir", default=None, help="where dlt keeps pipeline state and the company's "
                        "daily ledger (default: ~/.dlt)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def plan_command(argv: Sequence[str]) -> int:
    """`gong-sync plan --start DATE ...` (pipelines/backfill.py): prints what a backfill will cost."""
    from pipelines.backfill import format_plan, plan_backfill
    from pipelines.config_files import check_settings_files
    from pipelines.errors import setting_error
    from sources.gong import GongError, make_client
    from sources.gong.budget import attach_company_limits

    try:
        args = build_plan_parser().parse_args(argv)
        configure_logging(args.verbose, False)
        check_settings_files()
        resources = parse_resources(args.resources)
        try:
            client = make_client()
        except Exception as exc:  # dlt wraps errors raised while resolving the configuration
            raise setting_error(exc) from None
        try:
            attach_company_limits(client, args.pipelines_dir)
            plan = plan_backfill(client, resources, args.start, args.end, window_days=args.window_days,
                                 window_requests=args.window_requests, max_requests_per_day=args.max_requests_per_day)
        except GongError as exc:
            raise setting_error(exc) from None
        finally:
            client.close()
    except UserError as exc:
        print(f"gong-sync: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    print(format_plan(plan))
    share = f" --max-requests-per-day {args.max_requests_per_day}" if args.max_requests_per_day else ""
    print(f"To run it: gong-sync --start {args.start}{' --end ' + args.end if args.end else ''}{share}"
          + (f" --resources {args.resources}" if args.resources else "")
          + (" (each day, until it has caught up)" if plan.days > 1 else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
