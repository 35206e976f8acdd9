"""What gong-crm-upload tells the user and what it leaves behind (issue 21, point 10).

A dry run points at no log table it did not write; a run that fails before its first upload creates no
database file; every reason a row is refused is reported, by validation and by Gong; the docs and the
example mapping name the same tables as the loader and the test data. Same simulator and example CRM
tables as tests/test_crm_upload.py.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import simulator.crm_endpoints
from loaders.gong_crm import CrmSource, RequestStatus, SourceError, make_engine
from loaders.gong_crm.mapping import ObjectMapping, parse_mapping
from loaders.gong_crm.upload_log import metadata as log_metadata
from loaders.gong_crm.upload_log import rejected_rows, upload_log
from loaders.gong_crm.validate import build_lines
from pipelines import crm_upload
from pipelines.destinations import DEFAULT_DUCKDB_FILE
from sources.gong.client import ClientSettings, GongClient
from tests import test_crm_upload as base
from tests.test_crm_upload import EXAMPLE_MAPPING, KEY, ROOT, Env, accounts, at, contacts, crm

# The same fixtures as tests/test_crm_upload.py (a fresh simulator and seeded CRM tables per test).
env_factory = base.env_factory
env = base.env
_restore_logging = base._restore_logging

DOC = ROOT / "docs" / "crm_upload.md"


def cli(env: Env, *extra: str, log_url: str | None = None) -> list[str]:
    return ["--mapping", str(EXAMPLE_MAPPING), "--database-url", str(env.engine.url), "--log-database-url",
            log_url or str(env.engine.url), "--out-dir", str(env.out_dir), *extra]


def add_bad_accounts(env: Env, count: int) -> list[str]:
    """Adds `count` accounts without a name (each rejected) and returns their ids."""
    ids = [f"BAD{i:02d}" for i in range(count)]
    with env.engine.begin() as conn:
        conn.execute(accounts.insert(), [{"id": i, "name": None, "crm_url": f"https://crm.example/a/{i}",
                                          "updated_at": at(50 + n), "is_deleted": False}
                                         for n, i in enumerate(ids)])
    return ids


# --------------------------------------------------------------------------- a dry run's messages
def test_a_dry_run_with_rejections_points_at_no_log_table(env: Env, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crm_upload, "MAX_SHOWN_REJECTIONS", 2)
    ids = add_bad_accounts(env, 5)
    env.engine.dispose()  # the dry run opens the file read-only
    code = crm_upload.main(cli(env, "--dry-run", "-q"))
    out, err = capsys.readouterr()
    assert code == crm_upload.EXIT_REJECTED
    assert err == ("gong-crm-upload: dry run: 5 record(s) would be rejected, each listed above; a dry run writes "
                   "no upload log (a real run records them in the table gong_crm_rejected_rows).\n")
    assert ("Dry run: nothing was sent to Gong. No upload log was written; the files below are what a real run "
            "would upload.\n") in out
    assert "  Records that would be rejected (5):\n" in out
    assert ("    ... 3 more, each listed above as it was found (a dry run writes no log; a real run records them "
            "in the table gong_crm_rejected_rows)\n") in out
    assert "more in the table" not in out and "gong_crm_upload_log" not in out + err
    # "Listed above" holds: each rejected row has its warning line before the summary.
    above = out.split("Dry run:")[0]
    assert [i for i in ids if f"ACCOUNT {i} not sent: required field name (column name) is empty" in above] == ids
    assert not set(sa.inspect(env.engine).get_table_names()) & set(log_metadata.tables)


def test_a_real_run_with_many_rejections_points_at_the_table_it_wrote(
        env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crm_upload, "MAX_SHOWN_REJECTIONS", 2)
    ids = add_bad_accounts(env, 5)
    code = crm_upload.main(cli(env, "--object-types", "ACCOUNT", "-q"), client=env.client(),
                           sleep=env.sleeps.append)
    out, err = capsys.readouterr()
    assert code == crm_upload.EXIT_REJECTED
    assert err == ("gong-crm-upload: 5 record(s) were rejected and 0 request(s) FAILED; see above and the tables "
                   "gong_crm_upload_log and gong_crm_rejected_rows.\n")
    assert "  Rejected records (5):\n" in out and "    ... 3 more in the table gong_crm_rejected_rows\n" in out
    assert sorted(r["object_id"] for r in env.log().rejections()) == ids


def test_a_failed_request_shows_gongs_reason_in_the_summary(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.sim.crm.fail_next_upload = "The file could not be processed"
    code = crm_upload.main(cli(env, "--object-types", "STAGE", "-q"), client=env.client(), sleep=env.sleeps.append)
    out = capsys.readouterr().out
    [row] = env.log().rows()
    assert code == crm_upload.EXIT_REJECTED and row.status == "FAILED"
    assert f"    {row.client_request_id}  STAGE  2 line(s)  FAILED  ok 0, errors 1  (The file could not be " \
           "processed)\n" in out


# --------------------------------------------------------------------------- no database file left behind
def test_the_default_databases_are_the_renamed_warehouse(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GONG_CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("GONG_CRM_LOG_DATABASE_URL", raising=False)
    args = crm_upload.build_parser().parse_args([])
    assert DEFAULT_DUCKDB_FILE == "gong_warehouse.duckdb"
    assert args.database_url == args.log_database_url == "duckdb:///gong_warehouse.duckdb"
    with pytest.raises(SystemExit):
        crm_upload.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert help_text.count("duckdb:///gong_warehouse.duckdb") == 2 and "gong.duckdb" not in help_text
    doc = DOC.read_text()
    assert doc.count("`duckdb:///gong_warehouse.duckdb`") == 2 and "gong.duckdb" not in doc


def test_a_dry_run_with_the_defaults_and_no_warehouse_names_the_file_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GONG_CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("GONG_CRM_LOG_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code = crm_upload.main(["--mapping", str(EXAMPLE_MAPPING), "--dry-run"])
    err = capsys.readouterr().err
    assert code == crm_upload.EXIT_ERROR
    assert err == (f"gong-crm-upload: The CRM database file {tmp_path / 'gong_warehouse.duckdb'} does not exist: "
                   "pass --database-url with the database that holds the CRM tables (a DuckDB file gong-sync "
                   "wrote, or any SQLAlchemy URL).\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mistake", "expected"), [
    ("missing mapping", "nope.toml does not exist"),
    ("unknown object type", "Unknown object type 'OPPORTUNITY'"),
    ("missing CRM file", "no_crm.duckdb does not exist"),
    ("unreachable CRM database", "Could not connect to the CRM database"),
    ("missing CRM table", "Reading DEAL from the query failed"),
    ("missing referenced table", "Reading ACCOUNT from the table crm_accounts failed"),
    ("bad credentials", "401"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_run_that_fails_before_loading_creates_no_database_file(
        mistake: str, expected: str, dry_run: bool, env: Env, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    log_file = tmp_path / "new_log.duckdb"
    argv = cli(env, log_url=f"duckdb:///{log_file}") + (["--dry-run"] if dry_run else [])
    client = env.client()
    if mistake == "missing mapping":
        argv += ["--mapping", str(tmp_path / "nope.toml")]
    elif mistake == "unknown object type":
        argv += ["--object-types", "ACCOUNT,OPPORTUNITY"]
    elif mistake == "missing CRM file":
        argv += ["--database-url", f"duckdb:///{tmp_path / 'no_crm.duckdb'}"]
    elif mistake == "unreachable CRM database":
        argv += ["--database-url", "postgresql://u:hunter2@127.0.0.1:1/crm"]
    elif mistake == "missing CRM table":
        env.execute(sa.text("DROP TABLE crm_deals"))
    elif mistake == "missing referenced table":
        # Deals alone, but their accountIds are checked against the accounts: that table is read too.
        argv += ["--object-types", "DEAL"]
        env.execute(sa.text("DROP TABLE crm_accounts"))
    else:
        client = GongClient(env.sim.base_url, KEY, "wrong-secret", settings=ClientSettings(rate_limit=None))
    env.engine.dispose()
    before = sorted(p.name for p in tmp_path.iterdir() if p.name != "files")
    code = crm_upload.main(argv, client=client, sleep=env.sleeps.append)
    err = capsys.readouterr().err
    if mistake == "bad credentials" and dry_run:
        # A dry run never asks Gong, so credentials cannot stop it; it still writes no log.
        assert code == crm_upload.EXIT_OK and not env.sim.request_log
    else:
        assert code == crm_upload.EXIT_ERROR and len(err.strip().splitlines()) == 1
        assert expected in err and "hunter2" not in err and "wrong-secret" not in err
    assert not log_file.exists() and not (tmp_path / "no_crm.duckdb").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "files") == before
    if mistake != "bad credentials":
        assert not env.sim.request_log, "a local mistake is found before Gong is asked anything"
    else:
        assert [r["path"] for r in env.sim.request_log] == ([] if dry_run else ["/v2/crm/integrations"])


def test_a_real_run_creates_its_log_database_once_it_uploads(env: Env, tmp_path: Path) -> None:
    log_file = tmp_path / "new_log.duckdb"
    env.engine.dispose()  # the CRM file is opened read-only when the log is elsewhere
    code = crm_upload.main(cli(env, "-q", log_url=f"duckdb:///{log_file}"), client=env.client(),
                           sleep=env.sleeps.append)
    assert code == crm_upload.EXIT_OK
    reader = sa.create_engine(f"duckdb:///{log_file}")
    with reader.connect() as conn:
        statuses = [row[0] for row in conn.execute(sa.select(upload_log.c.status))]
    reader.dispose()
    assert statuses == ["DONE"] * 5


def test_a_dry_run_reads_an_existing_log_without_writing_it(env: Env, tmp_path: Path) -> None:
    env.upload(object_types=["ACCOUNT"])
    env.execute(accounts.update().where(accounts.c.id == "A2").values(name="Renamed", updated_at=at(90)))
    env.engine.dispose()
    code = crm_upload.main(cli(env, "--dry-run", "--object-types", "ACCOUNT", "-q", "--out-dir",
                               str(tmp_path / "dry")))
    assert code == crm_upload.EXIT_OK
    # The watermark came from the log: only the changed account was written to a file.
    [written] = (tmp_path / "dry").glob("account-*.ldjson")
    assert [json.loads(x)["objectId"] for x in written.read_text().splitlines()] == ["A2"]
    assert [r.status for r in env.log().rows()] == ["DONE"]


def test_duckdb_opened_read_only_refuses_writes_and_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "crm.duckdb"
    writer = sa.create_engine(f"duckdb:///{path}")
    with writer.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    writer.dispose()
    engine = make_engine(f"duckdb:///{path}", read_only=True)
    with pytest.raises(sa.exc.DBAPIError, match="read-only"), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    with pytest.raises(SourceError, match=re.escape(f"The CRM database file {tmp_path / 'gone.duckdb'} does")):
        CrmSource(make_engine(f"duckdb:///{tmp_path / 'gone.duckdb'}")).check([])
    with pytest.raises(SourceError, match="gone.sqlite does not exist"):
        CrmSource(make_engine(f"sqlite:///{tmp_path / 'gone.sqlite'}")).check([])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.duckdb"]


# --------------------------------------------------------------------------- every reason of a row
def deal_mapping() -> ObjectMapping:
    from loaders.gong_crm import load_mapping

    return load_mapping(EXAMPLE_MAPPING).objects["DEAL"]


def deal_row(**values: Any) -> dict[str, Any]:
    row = {"id": "D9", "name": "Deal 9", "account_id": "A1", "owner_id": "U1", "stage_id": "S1", "status": "OPEN",
           "close_date": "2026-12-01", "amount": 10, "crm_url": "https://crm.example/d/9", "updated_at": at(1),
           "is_deleted": False, "forecast": "Commit", "_modified": at(1).replace(tzinfo=UTC)}
    row.update(values)
    return row


def test_a_row_is_rejected_with_every_reason_at_once() -> None:
    lines, rejected = build_lines(deal_mapping(), [deal_row(id=None, updated_at="x", _modified=None, status="MAYBE")])
    assert lines == [] and [(r.object_id, r.reason) for r in rejected] == [(
        "(row 1 without id)",
        "objectId (column id) is empty; modifiedDate (column updated_at) is empty or not a date: 'x'; "
        "status (column status) must be one of WON, LOST, OPEN: 'MAYBE'")]
    # An invalid required value is reported as invalid, not once more as empty; references are all checked.
    known = {"ACCOUNT": {"A1"}, "BUSINESS_USER": {"U1"}, "STAGE": {"S1"}}
    _, [rejection] = build_lines(deal_mapping(), [deal_row(amount="abc", name=None, account_id="A404",
                                                           stage_id="S404", crm_url="ftp://x")], known)
    assert rejection.reason == (
        "amount (column amount) is not a number: 'abc'; url (column crm_url) is not an http(s) URL: 'ftp://x'; "
        "required field name (column name) is empty; accountId 'A404' is not the objectId of any ACCOUNT in the "
        "source (or that one is flagged deleted); stage 'S404' is not the objectId of any STAGE in the source (or "
        "that one is flagged deleted)")
    # A deletion carries no other field, so their problems do not keep it from being sent.
    lines, rejected = build_lines(deal_mapping(), [deal_row(is_deleted=True, amount="abc", crm_url="ftp://x")])
    assert not rejected and [line.data for line in lines] == [
        {"objectId": "D9", "modifiedDate": "2026-10-01T10:01:00Z", "isDeleted": True}]
    # Both objectId rules are reported, alongside the row's other problems.
    _, [rejection] = build_lines(deal_mapping(), [deal_row(id="D " + "9" * 70, status="MAYBE")])
    assert rejection.reason.split("; ") == [
        "objectId is 72 characters long: Gong allows at most 64",
        "objectId may contain only letters, digits and . _ : - characters",
        "status (column status) must be one of WON, LOST, OPEN: 'MAYBE'"]


def test_every_reason_reaches_the_summary_and_the_rejected_rows_table(
        env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.execute(contacts.insert().values(id="C9", account_id="A404", crm_url="ftp://crm.example/c/9",
                                         email="not-an-email", updated_at=at(40), is_deleted=False))
    code = crm_upload.main(cli(env, "-q"), client=env.client(), sleep=env.sleeps.append)
    out = capsys.readouterr().out
    reason = ("emailAddress (column email) is not an email address: 'not-an-email'; url (column crm_url) is not an "
              "http(s) URL: 'ftp://crm.example/c/9'; accountId 'A404' is not the objectId of any ACCOUNT in the "
              "source (or that one is flagged deleted)")
    assert code == crm_upload.EXIT_REJECTED and f"    CONTACT C9: {reason}\n" in out
    assert [(r["object_id"], r["stage"], r["reason"]) for r in env.log().rejections()] == [
        ("C9", "validation", reason)]


# --------------------------------------------------------------------------- every line error of Gong
def test_line_errors_gong_counts_but_does_not_list_are_recorded(
        env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator.crm_endpoints, "MAX_LINE_ERRORS", 2)
    # Contacts alone: Gong has none of their accounts, so it refuses all 5 lines and lists 2.
    code = crm_upload.main(cli(env, "--object-types", "CONTACT", "-q"), client=env.client(),
                           sleep=env.sleeps.append)
    out, err = capsys.readouterr()
    [row] = env.log().rows()
    assert code == crm_upload.EXIT_REJECTED and (row.error_count, len(json.loads(row.errors or "[]"))) == (5, 2)
    assert "5 record(s) were rejected" in err and "  Rejected records (5):\n" in out
    logged = [(r["object_id"], r["stage"], r["reason"]) for r in env.log().rejections()]
    assert logged == [
        ("C1", "gong", "Referenced account [A2] in field [accountId] was not found"),
        ("C2", "gong", "Referenced account [A3] in field [accountId] was not found"),
        ("(3 more lines)", "gong", f"Gong refused 3 more line(s) of {row.file_name} without naming them (its "
                                   "request status lists only 2 of its 5 line errors)")]


def test_several_line_errors_of_one_line_are_all_recorded(env: Env) -> None:
    api = env.api()
    real_status = api.status

    def status(integration_id: str, client_request_id: str) -> RequestStatus | None:
        answer = real_status(integration_id, client_request_id)
        if answer is not None and answer.status == "DONE":
            answer.errors.insert(1, {"line": 1, "description": "Field [title] is too long"})
        return answer

    api.status = status  # type: ignore[method-assign]
    result = env.upload(api, object_types=["CONTACT"])
    assert result.rejected_count == 5
    reasons = {r["object_id"]: r["reason"] for r in env.log().rejections()}
    assert len(env.log().rejections()) == 5 and sorted(reasons) == ["C1", "C2", "C3", "C4", "C5"]
    assert reasons["C1"] == "Referenced account [A2] in field [accountId] was not found; Field [title] is too long"


# --------------------------------------------------------------------------- docs and example mapping agree
def source_tables(om: ObjectMapping) -> set[str]:
    if om.table is not None:
        return {om.table}
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)", str(om.query), flags=re.IGNORECASE))


def test_the_docs_the_example_mapping_and_the_test_tables_name_the_same_tables() -> None:
    example = tomllib.loads(EXAMPLE_MAPPING.read_text())
    example_tables = set().union(*(source_tables(om) for om in parse_mapping(example).objects.values()))
    assert example_tables == set(crm.tables) == {"crm_accounts", "crm_users", "crm_stages", "crm_contacts",
                                                 "crm_deals"}
    doc = DOC.read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, flags=re.DOTALL)
    assert blocks, "the doc shows a mapping"
    for block in blocks:
        documented = parse_mapping(tomllib.loads(block))
        for object_type, om in documented.objects.items():
            assert source_tables(om) <= example_tables, object_type
            assert om.fields == parse_mapping(example).objects[object_type].fields, object_type
        # Comments count too: the alternative shown beside the query names the same table.
        named = set(re.findall(r"(?:\b(?:FROM|JOIN)\s+|table = \")([A-Za-z_][\w.]*)", block, flags=re.IGNORECASE))
        assert named and named <= example_tables


def test_the_docs_name_the_log_tables_and_columns_the_loader_writes() -> None:
    doc = DOC.read_text()
    assert set(re.findall(r"\bgong_crm_[a-z_]+", doc)) == set(log_metadata.tables)
    assert {crm_upload.LOG_TABLE, crm_upload.REJECTED_TABLE} == {upload_log.name, rejected_rows.name}
    log_section = doc.split("`gong_crm_upload_log`, one row per request:")[1].split("\n\n")[1]
    documented = {name for line in log_section.splitlines() if line.startswith("| `")
                  for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert documented == set(upload_log.columns.keys())
    rejected_paragraph = doc.split("`gong_crm_rejected_rows` has one row")[1].split("A rejected row")[0]
    named = {token.split()[0] for token in re.findall(r"`([^`]+)`", rejected_paragraph)} - {";"}
    assert named == set(rejected_rows.columns.keys())
