"""Push CRM entities from SQL into Gong: `gong-crm-upload --help`.

Reads accounts, business users, stages, contacts, deals and leads from any SQLAlchemy database as the
mapping file says, uploads what changed since the last upload Gong reported DONE, and records every
request and every refused record in an upload log. User mistakes end in one sentence on stderr and a
non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, TextIO

from pipelines.destinations import DEFAULT_DUCKDB_FILE

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNFINISHED = 3
EXIT_REJECTED = 4

DEFAULT_DATABASE_URL = "duckdb:///" + DEFAULT_DUCKDB_FILE
MAX_SHOWN_REJECTIONS = 50
# Named here as upload_log.py names them; tests/test_crm_upload_messages.py keeps the two in step.
LOG_TABLE = "gong_crm_upload_log"
REJECTED_TABLE = "gong_crm_rejected_rows"


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser of `gong-crm-upload`."""
    from loaders.gong_crm.settings import MAX_FILE_BYTES, OBJECT_TYPES, POLL_FIRST_WAIT_S, POLL_TIMEOUT_S

    parser = argparse.ArgumentParser(
        prog="gong-crm-upload",
        description="Upload CRM entities (accounts, business users, stages, contacts, deals, leads) from a SQL "
        "database into Gong's generic CRM integration, incrementally. Gong credentials and base URL come from "
        "SOURCES__GONG__* environment variables or .dlt/secrets.toml.",
        epilog="Exit codes: 0 done, 1 error, 2 bad arguments, 3 Gong is still processing a request or the quota "
        "stopped the run (run again later), 4 records were rejected or a request FAILED (listed in the summary; "
        f"a real run also records them in {LOG_TABLE} and {REJECTED_TABLE}, a dry run writes no log).",
    )
    parser.add_argument("--mapping", default=os.environ.get("GONG_CRM_MAPPING", "crm_mapping.toml"),
                        help="the mapping file (TOML; see schemas/crm_mapping.example.toml); env GONG_CRM_MAPPING")
    parser.add_argument("--database-url", default=os.environ.get("GONG_CRM_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="SQLAlchemy URL of the database holding the CRM tables (default: the DuckDB "
                        f"warehouse {DEFAULT_DATABASE_URL}); env GONG_CRM_DATABASE_URL")
    parser.add_argument("--log-database-url",
                        default=os.environ.get("GONG_CRM_LOG_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="SQLAlchemy URL of the warehouse that keeps the upload log (default: "
                        f"{DEFAULT_DATABASE_URL}); env GONG_CRM_LOG_DATABASE_URL")
    parser.add_argument("--object-types", default=None,
                        help="comma-separated object types to upload (default: all mapped): " + ", ".join(OBJECT_TYPES))
    parser.add_argument("--dry-run", action="store_true",
                        help="read, validate and write the files that would be uploaded; send nothing to Gong "
                        "and write no upload log")
    parser.add_argument("--out-dir", default="crm_upload_files",
                        help="where the upload files are written (default: crm_upload_files)")
    parser.add_argument("--max-file-bytes", type=int, default=MAX_FILE_BYTES,
                        help=f"split files above this size (default: {MAX_FILE_BYTES}, below Gong's 200 MB limit)")
    parser.add_argument("--poll-timeout", type=float, default=POLL_TIMEOUT_S,
                        help=f"seconds to wait for Gong to process one file (default: {POLL_TIMEOUT_S:.0f})")
    parser.add_argument("--poll-first-wait", type=float, default=POLL_FIRST_WAIT_S,
                        help=f"first wait between status polls, doubling up to 60 s (default: {POLL_FIRST_WAIT_S:.0f})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (credentials never shown)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return parser


class UserError(Exception):
    """A mistake the user can fix; its message is the one sentence shown to them."""


def parse_object_types(value: Optional[str], mapped: Sequence[str]) -> Optional[list[str]]:
    """Returns the object types asked for (None = all mapped), or raises UserError naming a wrong one."""
    from loaders.gong_crm.settings import OBJECT_TYPES

    if value is None:
        return None
    names = [n.strip().upper() for n in value.split(",") if n.strip()]
    if not names:
        raise UserError(f"--object-types is empty: choose from {', '.join(mapped)}.")
    unknown = [n for n in names if n not in OBJECT_TYPES]
    if unknown:
        raise UserError(f"Unknown object type {', '.join(map(repr, unknown))}: choose from {', '.join(OBJECT_TYPES)}.")
    unmapped = [n for n in names if n not in mapped]
    if unmapped:
        raise UserError(f"The mapping has no {', '.join(unmapped)}: map it under [objects.{unmapped[0]}] or choose "
                        f"from {', '.join(mapped)}.")
    return names


def run(args: argparse.Namespace, client: Any = None, sleep: Any = None) -> Any:
    """Runs the upload the arguments describe and returns its UploadResult; raises UserError for user mistakes."""
    import time

    from loaders.gong_crm import (
        CrmSource,
        GongCrmApi,
        MappingError,
        SourceError,
        UploadLog,
        load_mapping,
        make_engine,
        run_upload,
    )
    from loaders.gong_crm.reader import same_database
    from sources.gong.client import GongError

    if args.max_file_bytes < 1024:
        raise UserError("--max-file-bytes must be at least 1024.")
    engines: list[Any] = []
    own_client = False
    try:
        mapping = load_mapping(args.mapping)
        object_types = parse_object_types(args.object_types, list(mapping.objects))
        # One engine when both URLs name one database: DuckDB refuses a second connection to a file that is
        # opened with another configuration (read-only beside read-write) in the same process.
        shared = same_database(args.log_database_url, args.database_url)
        engines.append(make_engine(args.database_url, read_only=args.dry_run or not shared))
        engines.append(engines[0] if shared else make_engine(args.log_database_url, read_only=args.dry_run))
        log = UploadLog(engines[1], read_only=args.dry_run)
        api = None
        if not args.dry_run:
            if client is None:
                from sources.gong import make_client
                from sources.gong.budget import attach_company_limits

                client = make_client()
                # The company's daily ledger and pace, shared with the syncs of this machine.
                attach_company_limits(client)
                own_client = True
            api = GongCrmApi(client, sleep=sleep or time.sleep, poll_first_wait_s=args.poll_first_wait,
                             poll_timeout_s=args.poll_timeout)
        return run_upload(mapping, CrmSource(engines[0]), log, api, object_types=object_types,
                          dry_run=args.dry_run, out_dir=Path(args.out_dir), max_file_bytes=args.max_file_bytes)
    except (MappingError, SourceError, GongError) as exc:
        raise UserError(str(exc).rstrip(".") + ".") from None
    except Exception as exc:  # dlt wraps configuration errors raised while the client is built
        from pipelines.errors import user_message

        raise UserError(user_message(exc)) from None
    finally:
        if own_client:
            client.close()
        # Closing the pooled connections releases DuckDB's file for whoever opens it next in this process.
        for engine in {id(e): e for e in engines}.values():
            engine.dispose()


def print_summary(result: Any, out: TextIO) -> None:
    """Prints what the run did: per object type, the files, every rejected record, and the requests."""
    w = out.write
    if result.dry_run:
        w("\nDry run: nothing was sent to Gong. No upload log was written; the files below are what a real run "
          "would upload.\n")
        if result.integration_id is None:
            w("  (no upload has run yet, so the integration id is unknown: the clientRequestIds below assume 0)\n")
    else:
        w(f"\nCRM upload (integration {result.integration_id}, run {result.run_id})\n")
    for report in result.reports.values():
        since = report.since.isoformat() if report.since else "the beginning"
        w(f"  {report.object_type}: {report.rows_read} row(s) changed since {since}; {report.lines} to send in "
          f"{len(report.files)} file(s); {len(report.rejected)} rejected\n")
        if report.schema_changed:
            w("    custom-field schema " + ("pushed\n" if report.schema_pushed else "would be pushed (changed)\n"))
        for upload in report.files:
            w(f"    {upload.path or upload.name}  {len(upload.object_ids)} line(s), {len(upload.data)} bytes, "
              f"clientRequestId {upload.client_request_id}\n")
        if report.skipped:
            w(f"    skipped: {report.skipped}\n")
    rejections = [r for report in result.reports.values() for r in report.rejected] + result.gong_rejected
    if rejections:
        w(f"  {'Records that would be rejected' if result.dry_run else 'Rejected records'} "
          f"({result.rejected_count}):\n")
        for r in rejections[:MAX_SHOWN_REJECTIONS]:
            w(f"    {r.object_type} {r.object_id}: {r.reason}\n")
        hidden = len(rejections) - MAX_SHOWN_REJECTIONS
        if hidden > 0 and result.dry_run:
            w(f"    ... {hidden} more, each listed above as it was found (a dry run writes no log; a real run "
              f"records them in the table {REJECTED_TABLE})\n")
        elif hidden > 0:
            w(f"    ... {hidden} more in the table {REJECTED_TABLE}\n")
    if result.requests:
        w("  Requests:\n")
        for row in result.requests:
            w(f"    {row.client_request_id}  {row.object_type}  {row.line_count or 0} line(s)  {row.status}"
              + (f"  ok {row.success_count}, errors {row.error_count}" if row.success_count is not None else "")
              + (f"  ({_failure_reasons(row.errors)})" if row.status == "FAILED" else "")
              + "\n")


def _failure_reasons(errors: Optional[str]) -> str:
    """Every reason Gong gave for a FAILED request, from the log row's JSON `errors`."""
    try:
        listed = json.loads(errors or "[]")
    except ValueError:
        listed = []
    reasons = [str(e.get("description", "")) for e in listed if isinstance(e, dict) and e.get("description")]
    return "; ".join(reasons) or "Gong gave no reason"


def exit_code(result: Any) -> int:
    """Returns the exit code for a finished run."""
    if result.failed or result.rejected_count:
        return EXIT_REJECTED
    if result.unfinished:
        return EXIT_UNFINISHED
    return EXIT_OK


def configure_logging(verbose: bool, quiet: bool) -> None:
    """Sends the loader's progress lines to stdout; DEBUG shows every request (never credentials)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    root = logging.getLogger("gong_sync")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Optional[Sequence[str]] = None, client: Any = None, sleep: Any = None) -> int:
    """The `gong-crm-upload` console script; returns the process exit code."""
    from sources.gong.client import GongStopRun

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        result = run(args, client=client, sleep=sleep)
    except UserError as exc:
        cause = exc.__context__
        print(f"gong-crm-upload: {exc}", file=sys.stderr)
        return EXIT_UNFINISHED if isinstance(cause, GongStopRun) else EXIT_ERROR
    except KeyboardInterrupt:
        print("gong-crm-upload: interrupted; run again: requests already sent are polled, not sent twice.",
              file=sys.stderr)
        return 130
    print_summary(result, sys.stdout)
    code = exit_code(result)
    if code == EXIT_REJECTED and result.dry_run:
        print(f"gong-crm-upload: dry run: {result.rejected_count} record(s) would be rejected, each listed above; "
              f"a dry run writes no upload log (a real run records them in the table {REJECTED_TABLE}).",
              file=sys.stderr)
    elif code == EXIT_REJECTED:
        print(f"gong-crm-upload: {result.rejected_count} record(s) were rejected and {len(result.failed)} "
              f"request(s) FAILED; see above and the tables {LOG_TABLE} and {REJECTED_TABLE}.",
              file=sys.stderr)
    elif code == EXIT_UNFINISHED:
        print("gong-crm-upload: Gong is still processing a request; run again later to poll it.", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
