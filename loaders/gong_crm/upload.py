"""One upload run: resume open requests, then per object type read -> validate -> files -> upload -> status."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

from .files import UploadFile, build_files, client_request_id, write_file
from .gong_crm_api import GongCrmApi, RequestStatus
from .mapping import Mapping, ObjectMapping
from .reader import CrmSource
from .settings import MAX_FILE_BYTES, REFERENCE_TARGETS, SCHEMA_OBJECT_TYPES, STANDARD_REFERENCES
from .upload_log import LogRow, UploadLog, errors_json, utc_now
from .validate import Rejection, build_lines, gong_datetime

logger = logging.getLogger("gong_sync.crm")


@dataclass
class TypeReport:
    """What a run did for one object type."""

    object_type: str
    since: Optional[datetime] = None
    rows_read: int = 0
    lines: int = 0
    files: list[UploadFile] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    schema_pushed: bool = False
    schema_changed: bool = False
    skipped: Optional[str] = None


@dataclass
class UploadResult:
    """What a run did: per object type, the requests it finished, and everything Gong or validation refused."""

    run_id: str
    dry_run: bool
    integration_id: Optional[str] = None
    reports: dict[str, TypeReport] = field(default_factory=dict)
    requests: list[LogRow] = field(default_factory=list)
    gong_rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        """Returns how many records were not sent or were refused by Gong."""
        rejections = [r for report in self.reports.values() for r in report.rejected] + self.gong_rejected
        return sum(r.count for r in rejections)

    @property
    def failed(self) -> list[LogRow]:
        """Returns the requests Gong reported FAILED."""
        return [r for r in self.requests if r.status == "FAILED"]

    @property
    def unfinished(self) -> list[LogRow]:
        """Returns the requests still PENDING/IN_PROGRESS (or unknown) when the run ended."""
        return [r for r in self.requests if r.status in ("UPLOADING", "PENDING", "IN_PROGRESS")]


def run_upload(mapping: Mapping, source: CrmSource, log: UploadLog, api: Optional[GongCrmApi],
               object_types: Optional[list[str]] = None, dry_run: bool = False,
               out_dir: Path = Path("crm_upload_files"), max_file_bytes: int = MAX_FILE_BYTES,
               run_id: Optional[str] = None) -> UploadResult:
    """Runs one upload (or a dry run, which needs no `api` and writes nothing but the files) and returns it."""
    result = UploadResult(run_id=run_id or uuid.uuid4().hex, dry_run=dry_run)
    wanted = [t for t in mapping.objects if object_types is None or t in object_types]
    if not dry_run and api is None:
        raise ValueError("a real run needs the Gong API")
    known_ids = _KnownIds(mapping, source)
    # Mistakes in the source and in Gong's credentials end the run before the upload log is created, so a
    # run that could not start leaves no empty warehouse behind.
    read = set(wanted).union(*(known_ids.targets(mapping.objects[t]) for t in wanted))
    source.check([om for t, om in mapping.objects.items() if t in read])
    if dry_run:
        result.integration_id = log.get_state(_integration_key(mapping))
    else:
        assert api is not None
        result.integration_id = api.find_or_register_integration(mapping.integration_name, mapping.owner_email)
        log.ensure()
        log.set_state(_integration_key(mapping), result.integration_id)
        for row in log.open_requests(result.integration_id):
            logger.info("Resuming request %s (%s) left %s by an earlier run", row.client_request_id,
                        row.object_type, row.status)
            _finish(result, log, api, row, out_dir)
    for object_type in wanted:
        report = TypeReport(object_type)
        result.reports[object_type] = report
        _upload_type(result, report, mapping.objects[object_type], source, log, api, known_ids, dry_run,
                     out_dir, max_file_bytes)
    return result


class _KnownIds:
    """The ids a reference may point at, per mapped object type, read once per run and only when needed."""

    def __init__(self, mapping: Mapping, source: CrmSource) -> None:
        self.mapping = mapping
        self.source = source
        self.cache: dict[str, set[str]] = {}

    def targets(self, om: ObjectMapping) -> set[str]:
        """Returns the mapped object types the references of `om` point at (their ids are read)."""
        targets = {t for f, t in STANDARD_REFERENCES[om.object_type].items() if f in om.fields}
        targets |= {REFERENCE_TARGETS[c.reference_to] for c in om.custom_fields
                    if c.type == "REFERENCE" and c.reference_to}
        return {t for t in targets if t in self.mapping.objects}

    def for_type(self, om: ObjectMapping) -> dict[str, set[str]]:
        """Returns {referenced object type: its ids} for the references `om` maps."""
        out: dict[str, set[str]] = {}
        for target in self.targets(om):
            if target not in self.cache:
                self.cache[target] = self.source.existing_ids(self.mapping.objects[target])
            out[target] = self.cache[target]
        return out


def _upload_type(result: UploadResult, report: TypeReport, om: ObjectMapping, source: CrmSource, log: UploadLog,
                 api: Optional[GongCrmApi], known_ids: _KnownIds, dry_run: bool, out_dir: Path,
                 max_file_bytes: int) -> None:
    object_type = om.object_type
    integration_id = result.integration_id or "0"
    if result.unfinished:
        # Later types may reference objects of the unfinished request, and its own type's watermark is unknown.
        report.skipped = f"waiting for Gong to finish request {result.unfinished[0].client_request_id}"
        return
    if object_type in SCHEMA_OBJECT_TYPES:
        _push_schema(result, report, om, log, api, dry_run)
    report.since = log.watermark(integration_id, object_type) if result.integration_id else None
    rows = source.read_changed(om, report.since)
    report.rows_read = len(rows)
    lines, rejected = build_lines(om, rows, known_ids.for_type(om))
    files, too_big = build_files(object_type, lines, max_file_bytes, integration_id)
    report.rejected = rejected + too_big
    report.lines = sum(len(f.object_ids) for f in files)
    report.files = files
    for rejection in report.rejected:
        logger.warning("%s %s not sent: %s", object_type, rejection.object_id, rejection.reason)
    newest = max((r["_modified"] for r in rows if r["_modified"] is not None), default=None)
    if files and newest is not None:
        # Rows rejected here were reported; once the last file is DONE they are behind the watermark too.
        files[-1].watermark = max(files[-1].watermark, newest)
    for upload in files:
        upload.client_request_id = client_request_id(object_type, upload.content_hash, log.retries(upload.content_hash)
                                                     if not dry_run or log.exists() else 0)
        write_file(upload, out_dir)
    if dry_run:
        return
    assert api is not None
    log.record_rejections(result.run_id, report.rejected, stage="validation")
    if not files:
        if rows and newest is not None:
            row = _log_row(result, object_type, None, f"gong-sync-not-sent-{result.run_id}-{object_type.lower()}",
                           "NOT_SENT", newest, len(report.rejected))
            log.insert(row)
            result.requests.append(row)
        return
    for number, upload in enumerate(files):
        existing = log.get(upload.client_request_id)
        if existing is not None and existing.status == "DONE":
            continue
        row = _log_row(result, object_type, upload, upload.client_request_id, "UPLOADING", upload.watermark,
                       len(report.rejected) if number == len(files) - 1 else 0)
        if existing is None:
            log.insert(row)
        else:
            log.update(row.client_request_id, status="UPLOADING", run_id=result.run_id)
        logger.info("Uploading %s (%d %s objects, %d bytes) as %s", upload.name, len(upload.object_ids),
                    object_type, len(upload.data), upload.client_request_id)
        api.upload(integration_id, object_type, upload.client_request_id, upload.name, upload.data)
        log.update(row.client_request_id, status="PENDING")
        row.status = "PENDING"
        _finish(result, log, api, row, out_dir, upload)
        if row.status != "DONE":
            # Later files must wait: the watermark may only move over a prefix of DONE files.
            report.skipped = f"stopped after request {row.client_request_id} ended {row.status}"
            return


def _push_schema(result: UploadResult, report: TypeReport, om: ObjectMapping, log: UploadLog,
                 api: Optional[GongCrmApi], dry_run: bool) -> None:
    key = f"schema:{result.integration_id}:{om.object_type}"
    pushed = log.get_state(key) if result.integration_id else None
    if pushed == om.schema_hash() or (pushed is None and not om.custom_fields):
        return
    report.schema_changed = True
    if dry_run:
        return
    assert api is not None and result.integration_id is not None
    api.push_schema(result.integration_id, om.object_type, om.schema_fields(), gong_datetime(datetime.now(UTC)))
    log.set_state(key, om.schema_hash())
    report.schema_pushed = True
    logger.info("Pushed the %s custom-field schema (%d fields)", om.object_type, len(om.custom_fields))


def _finish(result: UploadResult, log: UploadLog, api: GongCrmApi, row: LogRow, out_dir: Path,
            upload: Optional[UploadFile] = None) -> None:
    """Polls one request to its end (or the poll timeout) and records the outcome in the log."""
    status = api.wait(row.integration_id, row.client_request_id)
    if status is None:
        # Gong never received the upload (the run died before sending it): the rows will be read again.
        row.status = "LOST"
        log.update(row.client_request_id, status="LOST", finished_at_utc=utc_now())
    elif not status.finished:
        row.status = status.status
        log.update(row.client_request_id, status=status.status)
    else:
        object_ids = upload.object_ids if upload is not None else _file_object_ids(out_dir, row.file_name)
        errors = _line_errors(status, object_ids)
        row.status, row.success_count, row.error_count = status.status, status.success_count, status.error_count
        row.errors, row.finished_at_utc = errors_json(errors), utc_now()
        log.update(row.client_request_id, status=row.status, success_count=row.success_count,
                   error_count=row.error_count, errors=row.errors, finished_at_utc=row.finished_at_utc)
        if status.status == "DONE":
            refused = _refused(row.object_type, errors, status.error_count, row.file_name)
            log.record_rejections(result.run_id, refused, stage="gong", client_request_id=row.client_request_id)
            result.gong_rejected += refused
            for rejection in refused:
                logger.warning("Gong refused %s %s: %s", row.object_type, rejection.object_id, rejection.reason)
        else:
            logger.warning("Gong reported request %s FAILED: %s", row.client_request_id,
                           "; ".join(e["description"] for e in errors) or "no details")
    result.requests.append(row)


def _line_errors(status: RequestStatus, object_ids: Optional[list[str]]) -> list[dict[str, object]]:
    """Gong's line errors with the objectId of each line (line numbers count from 1)."""
    out: list[dict[str, object]] = []
    for error in status.errors:
        line = error.get("line")
        object_id = None
        if object_ids is not None and isinstance(line, int) and 1 <= line <= len(object_ids):
            object_id = object_ids[line - 1]
        out.append({"line": line, "objectId": object_id, "description": str(error.get("description", ""))})
    return out


def _refused(object_type: str, errors: list[dict[str, object]], error_count: Optional[int],
             file_name: Optional[str]) -> list[Rejection]:
    """Returns one rejection per refused line, with all of Gong's reasons for it.

    Gong's status lists a limited number of line errors; the lines it counts in totalErrorCount beyond those
    become one more rejection that counts them, so no refused record goes unreported.
    """
    reasons: dict[object, list[str]] = {}
    names: dict[object, str] = {}
    for error in errors:
        key = error["line"] if error["line"] is not None else error["objectId"]
        reasons.setdefault(key, []).append(str(error["description"]))
        names.setdefault(key, str(error["objectId"] or f"(line {error['line']})"))
    refused = [Rejection(object_type, names[key], "; ".join(reasons[key])) for key in reasons]
    unlisted = (error_count or 0) - len(refused)
    if unlisted > 0:
        refused.append(Rejection(
            object_type, f"({unlisted} more line{'s' if unlisted > 1 else ''})",
            f"Gong refused {unlisted} more line(s) of {file_name or 'the file'} without naming them (its request "
            f"status lists only {len(refused)} of its {error_count} line errors)", count=unlisted))
    return refused


def _file_object_ids(out_dir: Path, file_name: Optional[str]) -> Optional[list[str]]:
    """The objectIds of a file an earlier run wrote, line by line, or None when the file is gone."""
    if not file_name or not (out_dir / file_name).is_file():
        return None
    ids: list[str] = []
    for raw in (out_dir / file_name).read_text(encoding="utf-8").splitlines():
        try:
            ids.append(str(json.loads(raw).get("objectId")))
        except (ValueError, AttributeError):
            ids.append("")
    return ids


def _log_row(result: UploadResult, object_type: str, upload: Optional[UploadFile], crid: str, status: str,
             watermark: datetime, rejected: int) -> LogRow:
    return LogRow(
        client_request_id=crid, run_id=result.run_id, integration_id=str(result.integration_id),
        object_type=object_type, file_name=upload.name if upload else None,
        content_hash=upload.content_hash if upload else None,
        line_count=len(upload.object_ids) if upload else 0, byte_count=len(upload.data) if upload else 0,
        rejected_count=rejected, watermark=watermark.isoformat(), status=status, uploaded_at_utc=utc_now(),
    )


def _integration_key(mapping: Mapping) -> str:
    return f"integration:{mapping.integration_name}"
