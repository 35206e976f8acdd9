"""The reverse loader (loaders/gong_crm, pipelines/crm_upload.py) against the live in-process simulator.

Every test builds the example CRM tables (the ones schemas/crm_mapping.example.toml maps) in a fresh
database, uploads them to a fresh simulator and asserts on what Gong received (entities, request
bodies, request counts) and on the upload log. The simulator advances a request one status per poll
and the loader's waits go to a list, so nothing depends on the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import pytest
import requests
import sqlalchemy as sa

from loaders.gong_crm import CrmSource, GongCrmApi, MappingError, UploadLog, load_mapping, run_upload
from loaders.gong_crm.files import build_files
from loaders.gong_crm.mapping import Mapping, parse_mapping
from loaders.gong_crm.upload import UploadResult
from loaders.gong_crm.upload_log import metadata as log_metadata
from loaders.gong_crm.validate import build_lines
from pipelines import crm_upload
from simulator import GongSimulator, SimConfig
from sources.gong.client import ClientSettings, GongClient
from tests.conftest import require_mariadb, require_postgres

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MAPPING = ROOT / "schemas" / "crm_mapping.example.toml"
KEY, SECRET = "crm-key", "crm-secret-do-not-log"
T0 = datetime(2026, 10, 1, 10, 0, 0, 250000)  # milliseconds on purpose: Gong wants none

crm = sa.MetaData()
accounts = sa.Table("crm_accounts", crm, sa.Column("id", sa.String(80), primary_key=True),
                    sa.Column("name", sa.String(100)), sa.Column("crm_url", sa.String(200)),
                    sa.Column("domain", sa.String(200)), sa.Column("owner_id", sa.String(20)),
                    sa.Column("industry", sa.String(40)), sa.Column("employees", sa.Integer),
                    sa.Column("updated_at", sa.DateTime), sa.Column("is_deleted", sa.Boolean))
users = sa.Table("crm_users", crm, sa.Column("id", sa.String(20), primary_key=True),
                 sa.Column("email", sa.String(100)), sa.Column("first_name", sa.String(50)),
                 sa.Column("last_name", sa.String(50)), sa.Column("crm_url", sa.String(200)),
                 sa.Column("updated_at", sa.DateTime))
stages = sa.Table("crm_stages", crm, sa.Column("id", sa.String(20), primary_key=True),
                  sa.Column("name", sa.String(50)), sa.Column("sort_order", sa.Integer),
                  sa.Column("probability", sa.Integer), sa.Column("crm_url", sa.String(200)),
                  sa.Column("updated_at", sa.DateTime))
contacts = sa.Table("crm_contacts", crm, sa.Column("id", sa.String(20), primary_key=True),
                    sa.Column("account_id", sa.String(80)), sa.Column("first_name", sa.String(50)),
                    sa.Column("last_name", sa.String(50)), sa.Column("email", sa.String(100)),
                    sa.Column("title", sa.String(50)), sa.Column("crm_url", sa.String(200)),
                    sa.Column("updated_at", sa.DateTime), sa.Column("is_deleted", sa.Boolean))
deals = sa.Table("crm_deals", crm, sa.Column("id", sa.String(20), primary_key=True),
                 sa.Column("name", sa.String(100)), sa.Column("account_id", sa.String(80)),
                 sa.Column("owner_id", sa.String(20)), sa.Column("stage_id", sa.String(20)),
                 sa.Column("status", sa.String(10)), sa.Column("close_date", sa.Date),
                 sa.Column("amount", sa.Numeric(12, 2)), sa.Column("crm_url", sa.String(200)),
                 sa.Column("updated_at", sa.DateTime), sa.Column("is_deleted", sa.Boolean),
                 sa.Column("forecast", sa.String(20)))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seed(engine: sa.Engine) -> None:
    """Creates the example CRM tables with a small, valid data set (and drops any older log)."""
    log_metadata.drop_all(engine)
    crm.drop_all(engine)
    crm.create_all(engine)
    with engine.begin() as conn:
        conn.execute(accounts.insert(), [
            {"id": f"A{i}", "name": f"Account {i}", "crm_url": f"https://crm.example/a/A{i}",
             "domain": f"a{i}.example,www.a{i}.example", "owner_id": "U1", "industry": "Software",
             "employees": 10 * i, "updated_at": at(i), "is_deleted": False} for i in range(1, 5)])
        conn.execute(users.insert(), [
            {"id": f"U{i}", "email": f"rep{i}@acme.example", "first_name": "Rep", "last_name": str(i),
             "crm_url": f"https://crm.example/u/U{i}", "updated_at": at(i)} for i in (1, 2)])
        conn.execute(stages.insert(), [
            {"id": "S1", "name": "Prospecting", "sort_order": 1, "probability": 10,
             "crm_url": "https://crm.example/s/S1", "updated_at": at(1)},
            {"id": "S2", "name": "Closed Won", "sort_order": 2, "probability": 100,
             "crm_url": "https://crm.example/s/S2", "updated_at": at(1)}])
        conn.execute(contacts.insert(), [
            {"id": f"C{i}", "account_id": f"A{1 + i % 4}", "first_name": "Pat", "last_name": f"Contact{i}",
             "email": f"c{i}@customer.example", "title": "CTO", "crm_url": f"https://crm.example/c/C{i}",
             "updated_at": at(10 + i), "is_deleted": False} for i in range(1, 6)])
        conn.execute(deals.insert(), [
            {"id": f"D{i}", "name": f"Deal {i}", "account_id": f"A{i}", "owner_id": "U2",
             "stage_id": "S1" if i < 3 else "S2", "status": "open" if i < 3 else "WON",
             "close_date": at(0).date() + timedelta(days=30 * i), "amount": 1000 * i + 0.5,
             "crm_url": f"https://crm.example/d/D{i}", "updated_at": at(20 + i), "is_deleted": False,
             "forecast": "Commit"} for i in range(1, 4)])


@dataclass
class Env:
    """One test's Gong simulator, CRM database and loader settings."""

    sim: GongSimulator
    engine: sa.Engine
    out_dir: Path
    mapping: Mapping
    sleeps: list[float] = field(default_factory=list)

    def client(self) -> GongClient:
        return GongClient(self.sim.base_url, KEY, SECRET, settings=ClientSettings(rate_limit=None))

    def api(self, **kw: Any) -> GongCrmApi:
        kw.setdefault("poll_first_wait_s", 1.0)
        return GongCrmApi(self.client(), sleep=self.sleeps.append, **kw)

    def upload(self, api: Optional[GongCrmApi] = None, **kw: Any) -> UploadResult:
        kw.setdefault("out_dir", self.out_dir)
        return run_upload(self.mapping, CrmSource(self.engine), UploadLog(self.engine), api or self.api(), **kw)

    def log(self) -> UploadLog:
        return UploadLog(self.engine)

    def uploads(self, object_type: Optional[str] = None) -> list[tuple[str, str, bytes]]:
        return [u for u in self.sim.crm.uploads if object_type in (None, u[1])]

    def lines(self, object_type: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for _, _, data in self.uploads(object_type) for raw in data.decode().splitlines()]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.sim.request_log if r["method"] == method and r["path"] == path)

    def execute(self, statement: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(statement)


def sim_config() -> SimConfig:
    return SimConfig(rate_limit=None, daily_quota=None, users=2, calls_per_day=1, days=1, sentences_per_call=2,
                     access_key=KEY, access_key_secret=SECRET)


@pytest.fixture
def env_factory(tmp_path: Path) -> Iterator[Any]:
    sims: list[GongSimulator] = []
    engines: list[sa.Engine] = []

    def make(url: Optional[str] = None) -> Env:
        engine = sa.create_engine(url or f"duckdb:///{tmp_path / 'crm.duckdb'}")
        engines.append(engine)
        seed(engine)
        sim = GongSimulator(sim_config())
        sim.start()
        sims.append(sim)
        return Env(sim, engine, tmp_path / "files", load_mapping(EXAMPLE_MAPPING))

    yield make
    for sim in sims:
        sim.stop()
    for engine in engines:
        # A server database (Postgres, MariaDB) keeps what a test made: the next test, and the docs'
        # examples run by hand, must not find it.
        log_metadata.drop_all(engine)
        crm.drop_all(engine)
        engine.dispose()


@pytest.fixture
def env(env_factory: Any) -> Env:
    return env_factory()


def backend_url(name: str, tmp_path: Path) -> str:
    if name == "postgres":
        return require_postgres()
    if name == "mariadb":
        return require_mariadb()
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.sqlite'}"
    return f"duckdb:///{tmp_path / 'crm.duckdb'}"


# --------------------------------------------------------------------------- full and incremental uploads
@pytest.mark.parametrize("backend", ["duckdb", "sqlite", "postgres", "mariadb"])
def test_full_upload_then_incremental_with_a_deletion(backend: str, env_factory: Any, tmp_path: Path) -> None:
    env = env_factory(backend_url(backend, tmp_path))
    first = env.upload()
    assert first.rejected_count == 0 and not first.failed and not first.unfinished
    # Referenced objects go first, one request per object type here.
    assert [u[1] for u in env.uploads()] == ["ACCOUNT", "BUSINESS_USER", "STAGE", "CONTACT", "DEAL"]
    stored = env.sim.crm.entities
    assert sorted(stored["ACCOUNT"]) == ["A1", "A2", "A3", "A4"] and sorted(stored["CONTACT"]) == [
        "C1", "C2", "C3", "C4", "C5"]
    assert stored["ACCOUNT"]["A2"] == {
        "objectId": "A2", "modifiedDate": "2026-10-01T10:02:00Z", "isDeleted": False, "name": "Account 2",
        "url": "https://crm.example/a/A2", "domains": ["a2.example", "www.a2.example"], "ownerId": "U1",
        "industry": "Software", "employees": 20}
    assert stored["DEAL"]["D1"]["status"] == "OPEN" and stored["DEAL"]["D1"]["amount"] == 1000.5
    assert stored["DEAL"]["D1"]["closeDate"] == "2026-10-31" and stored["DEAL"]["D1"]["forecastCategory"] == "Commit"
    # Lines are sorted by modifiedDate and carry no milliseconds.
    dates = [line["modifiedDate"] for line in env.lines("CONTACT")]
    assert dates == sorted(dates) and all(d.endswith(":00Z") for d in dates)
    rows = env.log().rows()
    assert len(rows) == 5 and {r.status for r in rows} == {"DONE"}
    assert {r.object_type: r.success_count for r in rows}["CONTACT"] == 5
    assert all(r.integration_id == first.integration_id for r in rows)

    # Nothing changed: nothing is uploaded.
    uploads_before = len(env.uploads())
    second = env.upload()
    assert len(env.uploads()) == uploads_before and all(r.rows_read == 0 for r in second.reports.values())

    # One account edited, one contact deleted: only those two go.
    env.execute(accounts.update().where(accounts.c.id == "A3").values(name="Account 3 renamed", updated_at=at(60)))
    env.execute(contacts.update().where(contacts.c.id == "C2").values(is_deleted=True, updated_at=at(61)))
    third = env.upload()
    assert [(u[1], [json.loads(x)["objectId"] for x in u[2].decode().splitlines()])
            for u in env.uploads()[uploads_before:]] == [("ACCOUNT", ["A3"]), ("CONTACT", ["C2"])]
    assert env.lines("CONTACT")[-1] == {"objectId": "C2", "modifiedDate": "2026-10-01T11:01:00Z", "isDeleted": True}
    assert stored["ACCOUNT"]["A3"]["name"] == "Account 3 renamed" and "C2" not in stored["CONTACT"]
    assert third.rejected_count == 0 and len(env.log().rows()) == 7


def test_entities_read_back_through_get_and_integration_id_is_not_truncated(env: Env) -> None:
    api = env.api()
    result = env.upload(api)
    integration_id = result.integration_id
    assert integration_id is not None and int(integration_id) > 2**53
    assert str(int(float(integration_id))) != integration_id, "the simulator's id would not survive a float"
    got = api.get_entities(integration_id, "DEAL", ["D2", "nope"])
    assert got["nope"] is None and got["D2"]["accountId"] == "A2" and got["D2"]["stage"] == "S1"
    status_params = [r["query"] for r in env.sim.request_log if r["path"] == "/v2/crm/request-status"]
    assert {q["integrationId"] for q in status_params} == {integration_id}
    # A second run finds the integration instead of registering another one.
    env.upload()
    assert env.count("PUT", "/v2/crm/integrations") == 1


# --------------------------------------------------------------------------- validation
def test_bad_rows_are_reported_by_object_id_and_the_valid_rows_still_go(env: Env) -> None:
    env.execute(accounts.insert().values(id="A" * 65, name="Too long", crm_url="https://crm.example/a/x",
                                         updated_at=at(30), is_deleted=False))
    env.execute(accounts.insert().values(id="A 6", name="Space", crm_url="https://crm.example/a/y",
                                         updated_at=at(31), is_deleted=False))
    env.execute(accounts.insert().values(id="A7", name=None, crm_url="https://crm.example/a/7",
                                         updated_at=at(32), is_deleted=False))
    env.execute(accounts.insert().values(id="A8", name="Bad pick", crm_url="https://crm.example/a/8",
                                         industry="Mining", updated_at=at(33), is_deleted=False))
    env.execute(contacts.insert().values(id="C9", account_id="A404", crm_url="https://crm.example/c/9",
                                         email="c9@x.example", updated_at=at(34), is_deleted=False))
    env.execute(contacts.insert().values(id="C10", account_id="A1", crm_url="ftp://crm.example/c/10",
                                         email="not-an-email", updated_at=at(35), is_deleted=False))
    env.execute(deals.update().where(deals.c.id == "D2").values(status="PAUSED"))
    result = env.upload()
    reasons = {r.object_id: r.reason for report in result.reports.values() for r in report.rejected}
    assert set(reasons) == {"A" * 65, "A 6", "A7", "A8", "C9", "C10", "D2"}
    assert "at most 64" in reasons["A" * 65] and "letters, digits" in reasons["A 6"]
    assert reasons["A7"] == "required field name (column name) is empty"
    assert "picklist" in reasons["A8"] and "A404" in reasons["C9"] and "ACCOUNT" in reasons["C9"]
    assert "not an email address" in reasons["C10"] and "WON, LOST, OPEN" in reasons["D2"]
    sent = {line["objectId"] for t in ("ACCOUNT", "CONTACT", "DEAL") for line in env.lines(t)}
    assert sent == {"A1", "A2", "A3", "A4", "C1", "C2", "C3", "C4", "C5", "D1", "D3"}
    logged = {(r["object_id"], r["stage"]) for r in env.log().rejections(result.run_id)}
    assert logged == {(i, "validation") for i in reasons}
    account_row = next(r for r in env.log().rows() if r.object_type == "ACCOUNT")
    assert account_row.rejected_count == 4 and account_row.line_count == 4
    # Rejected rows were reported; the next run does not read them again until they change.
    again = env.upload()
    assert again.rejected_count == 0


def test_gong_line_errors_are_mapped_back_to_object_ids(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    # Contacts alone: Gong has none of their accounts yet, so it refuses every line.
    code = crm_upload.main(["--mapping", str(EXAMPLE_MAPPING), "--database-url", str(env.engine.url),
                            "--log-database-url", str(env.engine.url), "--out-dir", str(env.out_dir),
                            "--object-types", "contact", "-q"], client=env.client(), sleep=env.sleeps.append)
    out, err = capsys.readouterr()
    assert code == crm_upload.EXIT_REJECTED
    assert "CONTACT C1: Referenced account [A2] in field [accountId] was not found" in out
    assert "5 record(s) were rejected" in err and len(err.strip().splitlines()) == 1
    [row] = env.log().rows()
    assert (row.status, row.success_count, row.error_count) == ("DONE", 0, 5)
    assert [e["objectId"] for e in json.loads(row.errors or "[]")] == ["C1", "C2", "C3", "C4", "C5"]
    assert {r["object_id"] for r in env.log().rejections() if r["stage"] == "gong"} == {"C1", "C2", "C3", "C4", "C5"}


# --------------------------------------------------------------------------- files
def test_files_split_below_the_size_limit_and_each_has_its_own_request(env: Env) -> None:
    with env.engine.begin() as conn:
        conn.execute(contacts.insert(), [
            {"id": f"C{i}", "account_id": "A1", "crm_url": f"https://crm.example/c/C{i}", "updated_at": at(100 - i),
             "is_deleted": False} for i in range(10, 40)])
    result = env.upload(max_file_bytes=1024)
    files = result.reports["CONTACT"].files
    assert len(files) > 2 and all(len(f.data) <= 1024 for f in files)
    contact_uploads = env.uploads("CONTACT")
    assert [u[0] for u in contact_uploads] == [f.client_request_id for f in files]
    assert len({u[0] for u in contact_uploads}) == len(files)
    dates = [line["modifiedDate"] for line in env.lines("CONTACT")]
    assert dates == sorted(dates) and len(dates) == len(set(line["objectId"] for line in env.lines("CONTACT"))) == 35
    assert len(env.sim.crm.entities["CONTACT"]) == 35
    assert [p.name for p in sorted(env.out_dir.glob("contact-*.ldjson"))] == sorted(f.name for f in files)


def test_one_line_per_object_keeps_the_latest_row_and_ids_are_deterministic() -> None:
    mapping = load_mapping(EXAMPLE_MAPPING).objects["STAGE"]
    rows = [{"id": "S1", "name": name, "crm_url": "https://crm.example/s", "sort_order": 1, "probability": 5,
             "updated_at": at(m), "_modified": at(m).replace(tzinfo=UTC)} for name, m in (("new", 5), ("old", 1))]
    lines, rejected = build_lines(mapping, rows)
    assert not rejected and [line.data["name"] for line in lines] == ["new"]
    one, _ = build_files("STAGE", lines, 10_000, "123")
    two, _ = build_files("STAGE", lines, 10_000, "123")
    other, _ = build_files("STAGE", lines, 10_000, "124")
    assert one[0].content_hash == two[0].content_hash != other[0].content_hash


# --------------------------------------------------------------------------- idempotency
def test_a_crash_after_upload_resumes_by_polling_the_same_request(env: Env) -> None:
    api = env.api()
    real_wait = api.wait

    def die(integration_id: str, client_request_id: str) -> Any:
        raise KeyboardInterrupt

    api.wait = die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        env.upload(api, object_types=["ACCOUNT"])
    [row] = env.log().rows()
    assert row.status == "PENDING" and len(env.uploads()) == 1
    api.wait = real_wait  # type: ignore[method-assign]
    result = env.upload(api, object_types=["ACCOUNT"])
    assert len(env.uploads()) == 1, "the file was not uploaded again"
    [row] = env.log().rows()
    assert row.status == "DONE" and row.success_count == 4 and result.requests[0].client_request_id == \
        row.client_request_id
    assert env.upload(api, object_types=["ACCOUNT"]).reports["ACCOUNT"].rows_read == 0


def test_a_crash_before_gong_received_the_file_uploads_it_on_the_next_run(env: Env) -> None:
    api = env.api()
    real_upload = api.upload

    def die(*args: Any) -> bool:
        raise KeyboardInterrupt

    api.upload = die  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        env.upload(api, object_types=["STAGE"])
    assert [r.status for r in env.log().rows()] == ["UPLOADING"] and not env.uploads()
    api.upload = real_upload  # type: ignore[method-assign]
    env.upload(api, object_types=["STAGE"])
    statuses = sorted((r.status, r.client_request_id[-2:]) for r in env.log().rows())
    assert statuses == [("DONE", "-1"), ("LOST", "-0")] and len(env.uploads()) == 1


def test_gong_409_for_a_reused_request_id_is_polled_not_failed(env: Env) -> None:
    env.upload(object_types=["ACCOUNT"])
    assert len(env.uploads()) == 1
    # The log is lost (a restored warehouse): the same rows give the same file and the same clientRequestId.
    with env.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM gong_crm_upload_log"))
    result = env.upload(object_types=["ACCOUNT"])
    assert len(env.uploads()) == 1 and env.count("POST", "/v2/crm/entities") == 2
    assert [r.status for r in result.requests] == ["DONE"] and not result.failed


# --------------------------------------------------------------------------- status
def test_a_failed_request_exits_non_zero_and_is_retried_with_a_new_request_id(
        env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.sim.crm.fail_next_upload = "The file could not be processed"
    args = ["--mapping", str(EXAMPLE_MAPPING), "--database-url", str(env.engine.url), "--log-database-url",
            str(env.engine.url), "--out-dir", str(env.out_dir), "--object-types", "ACCOUNT,BUSINESS_USER", "-q"]
    assert crm_upload.main(args, client=env.client(), sleep=env.sleeps.append) == crm_upload.EXIT_REJECTED
    out, err = capsys.readouterr()
    assert "1 request(s) FAILED" in err
    rows = {r.object_type: r for r in env.log().rows()}
    assert rows["ACCOUNT"].status == "FAILED" and rows["BUSINESS_USER"].status == "DONE"
    assert json.loads(rows["ACCOUNT"].errors or "[]")[0]["description"] == "The file could not be processed"
    assert env.sim.crm.entities["ACCOUNT"] == {}
    # The watermark did not move: the next run sends the same accounts again under a new clientRequestId.
    assert crm_upload.main(args, client=env.client(), sleep=env.sleeps.append) == crm_upload.EXIT_OK
    account_ids = [u[0] for u in env.uploads("ACCOUNT")]
    assert len(account_ids) == 2 and account_ids[0][:-2] == account_ids[1][:-2] and account_ids[1].endswith("-1")
    assert len(env.sim.crm.entities["ACCOUNT"]) == 4 and env.uploads("ACCOUNT")[0][2] == env.uploads("ACCOUNT")[1][2]


def test_polling_backs_off_is_bounded_and_a_later_run_finishes_the_request(env: Env) -> None:
    env.sim.crm.hold = True
    result = env.upload(env.api(poll_timeout_s=100.0), object_types=["ACCOUNT", "CONTACT"])
    assert [r.status for r in result.unfinished] == ["IN_PROGRESS"]
    assert env.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] and sum(env.sleeps) <= 100
    assert "waiting for Gong" in str(result.reports["CONTACT"].skipped) and not env.uploads("CONTACT")
    assert crm_upload.exit_code(result) == crm_upload.EXIT_UNFINISHED
    env.sim.crm.hold = False
    later = env.upload(object_types=["ACCOUNT"])
    assert [r.status for r in later.requests] == ["DONE"] and len(env.uploads("ACCOUNT")) == 1


def test_schema_is_pushed_only_when_the_mapping_changes(env: Env) -> None:
    env.upload()
    assert env.count("POST", "/v2/crm/entity-schema") == 2  # ACCOUNT and DEAL have custom fields
    bodies = [r for r in env.sim.request_log if r["path"] == "/v2/crm/entity-schema"]
    assert bodies[0]["query"]["objectType"] == "ACCOUNT"
    assert [(f["uniqueName"], f["type"]) for f in bodies[0]["body"]] == [("industry", "PICKLIST"),
                                                                         ("employees", "NUMBER")]
    env.upload()
    assert env.count("POST", "/v2/crm/entity-schema") == 2
    raw = {"integration": {"name": env.mapping.integration_name, "owner_email": env.mapping.owner_email},
           "objects": {"ACCOUNT": {"table": "crm_accounts", "modified_date": "updated_at",
                                   "fields": {"objectId": "id", "name": "name", "url": "crm_url"},
                                   "custom_fields": {"employees": {"column": "employees", "label": "Staff",
                                                                   "type": "NUMBER"}}}}}
    env.mapping = parse_mapping(raw)
    env.upload()
    assert env.count("POST", "/v2/crm/entity-schema") == 3
    assert [f["label"] for f in env.sim.crm.schemas["ACCOUNT"]] == ["Staff"]


# --------------------------------------------------------------------------- command line
def test_dry_run_writes_and_validates_files_and_sends_nothing(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.execute(accounts.insert().values(id="A9", name=None, crm_url="https://crm.example/a/9", updated_at=at(40),
                                         is_deleted=False))
    # A dry run opens DuckDB read-only, which one process cannot do beside its own read-write connections.
    env.engine.dispose()
    code = crm_upload.main(["--mapping", str(EXAMPLE_MAPPING), "--database-url", str(env.engine.url),
                            "--log-database-url", str(env.engine.url), "--out-dir", str(env.out_dir), "--dry-run",
                            "-q"])
    out, err = capsys.readouterr()
    assert code == crm_upload.EXIT_REJECTED and not env.sim.request_log
    assert "Dry run: nothing was sent to Gong." in out and "ACCOUNT A9: required field name" in out
    written = sorted(p.name.split("-")[0] for p in env.out_dir.glob("*.ldjson"))
    assert written == ["account", "business_user", "contact", "deal", "stage"]
    account_file = next(env.out_dir.glob("account-*.ldjson")).read_text().splitlines()
    assert [json.loads(x)["objectId"] for x in account_file] == ["A1", "A2", "A3", "A4"]
    assert not sa.inspect(env.engine).has_table("gong_crm_upload_log"), "a dry run writes no log"


@pytest.mark.parametrize(("argv", "expected"), [
    (["--mapping", "/nonexistent.toml"], "does not exist"),
    (["--object-types", "OPPORTUNITY"], "Unknown object type 'OPPORTUNITY'"),
    (["--database-url", "nosuchdb://x"], "cannot be used"),
    (["--database-url", "postgresql://u:hunter2@127.0.0.1:1/x"], "Could not connect"),
])
def test_user_mistakes_are_one_sentence(argv: list[str], expected: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = f"duckdb:///{tmp_path / 'x.duckdb'}"
    base = ["--mapping", str(EXAMPLE_MAPPING), "--database-url", db, "--log-database-url", db, "--dry-run"]
    code = crm_upload.main(base + argv)
    err = capsys.readouterr().err
    assert code == crm_upload.EXIT_ERROR and expected in err and len(err.strip().splitlines()) == 1
    assert "hunter2" not in err


def test_mapping_errors_name_the_key_at_fault() -> None:
    good = {"integration": {"name": "x", "owner_email": "a@b.example"},
            "objects": {"DEAL": {"table": "d", "modified_date": "m", "fields": {"objectId": "id"}}}}
    parse_mapping(good)
    cases = [
        ({"objects": {"DEAL": {"table": "d", "modified_date": "m", "fields": {"objectId": "id", "amout": "a"}}}},
         "objects.DEAL.fields.amout"),
        ({"objects": {"OPPORTUNITY": {}}}, "objects.OPPORTUNITY"),
        ({"objects": {"DEAL": {"table": "d", "query": "q", "modified_date": "m", "fields": {"objectId": "i"}}}},
         "exactly one of table"),
        ({"objects": {"STAGE": {"table": "s", "modified_date": "m", "fields": {"objectId": "i"},
                                "custom_fields": {"x": {"column": "x", "type": "STRING"}}}}},
         "objects.STAGE.custom_fields"),
        ({"objects": {"DEAL": {"table": "d", "modified_date": "m", "fields": {"objectId": "i"},
                               "custom_fields": {"p": {"column": "p", "type": "PICKLIST"}}}}},
         "objects.DEAL.custom_fields.p.values"),
    ]
    for change, key in cases:
        with pytest.raises(MappingError, match=key.replace(".", r"\.")):
            parse_mapping({**good, **change})


def test_a_column_missing_from_the_source_is_named(env: Env) -> None:
    raw = {"integration": {"name": "x", "owner_email": "a@b.example"},
           "objects": {"ACCOUNT": {"table": "crm_accounts", "modified_date": "updated_at",
                                   "fields": {"objectId": "id", "name": "account_name", "url": "crm_url"}}}}
    env.mapping = parse_mapping(raw)
    with pytest.raises(MappingError, match=r"objects\.ACCOUNT\.fields\.name names the column 'account_name'"):
        env.upload()


def test_secrets_never_reach_logs_the_log_tables_or_files(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="gong_sync"):
        env.upload()
    assert caplog.records and SECRET not in caplog.text and KEY not in caplog.text
    with env.engine.connect() as conn:
        dump = repr([list(conn.execute(sa.text(f"SELECT * FROM {t}"))) for t in
                     ("gong_crm_upload_log", "gong_crm_rejected_rows", "gong_crm_state")])
    assert SECRET not in dump
    assert all(SECRET.encode() not in p.read_bytes() for p in env.out_dir.iterdir())


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        crm_upload.main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    for option in ("--dry-run", "--object-types", "--mapping", "--database-url", "--max-file-bytes"):
        assert option in out


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLIs point the gong_sync logger at their stdout: start each test from a plain logger, restore it after."""
    import logging

    logger = logging.getLogger("gong_sync")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    logger.handlers[:], logger.propagate, logger.level = [], True, logging.NOTSET
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def test_simulator_crm_answers_match_the_spec(env: Env) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = json.loads((ROOT / "simulator" / "spec" / "gong-openapi-v2.json").read_text())
    registry = Registry().with_resource("urn:gong", Resource.from_contents(spec, DRAFT202012))

    def check(payload: Any, name: str) -> None:
        validator = Draft202012Validator({"$ref": f"urn:gong#/components/schemas/{name}"}, registry=registry)
        assert not list(validator.iter_errors(payload)), name
        declared = spec["components"]["schemas"][name]["properties"]
        assert set(payload) <= set(declared), (name, set(payload) - set(declared))

    api = env.api()
    result = env.upload(api, object_types=["ACCOUNT"])
    iid = str(result.integration_id)
    auth = (KEY, SECRET)
    base = env.sim.base_url
    listed = requests.get(f"{base}/v2/crm/integrations", auth=auth, timeout=10).json()
    check(listed, "ListGenericCrmIntegrationsResponse")
    assert str(listed["integrations"][0]["integrationId"]) == iid
    schema = requests.get(f"{base}/v2/crm/entity-schema", params={"integrationId": iid, "objectType": "ACCOUNT"},
                          auth=auth, timeout=10)
    check(schema.json(), "ListSelectedFieldsResponse")
    crid = result.requests[0].client_request_id
    status = requests.get(f"{base}/v2/crm/request-status", params={"integrationId": iid, "clientRequestId": crid},
                          auth=auth, timeout=10)
    check(status.json(), "RequestStatusResponse")
    entities = requests.get(f"{base}/v2/crm/entities", params={"integrationId": iid, "objectType": "ACCOUNT"},
                            json=["A1"], auth=auth, timeout=10)
    # The spec types each field value as "object" while Gong sends scalars: check the shape only.
    assert set(entities.json()) == {"requestId", "crmObjectsMap"}
    assert entities.json()["crmObjectsMap"]["A1"]["name"] == "Account 1"
    again = requests.put(f"{base}/v2/crm/integrations", json={"name": "x", "ownerEmail": "a@b.example"}, auth=auth,
                         timeout=10)
    assert again.status_code == 409
    check(again.json(), "ErrorResponse")
