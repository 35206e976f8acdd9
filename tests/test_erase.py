"""`gong-sync erase`: one person leaves the warehouse (GDPR art. 17), on DuckDB and Postgres.

A whole simulated Gong account is synced (every resource), a real person is picked from the synced rows (an
internal user by e-mail in another case, an external party by e-mail, another external party by phone number
only, written otherwise than Gong spells it), and the erasure is judged on the data: every row before and
after, compared with what an independent reading of the rules says must go; no text value anywhere holds the
addresses or the number afterwards; the counts returned are the rows that went; nothing else changed; calls
stay; a second run removes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

import dlt
import pytest

from pipelines.cli import main
from pipelines.erase import ErasureResult, erase, person_candidates
from sources.gong.catalog import resource_names
from sources.gong.pii import hash_value
from tests.conftest import GongFixture, Warehouse
from tests.test_pipeline import sync

pytestmark = pytest.mark.sim(days=4, calls_per_day=5, private_ratio=0.0)
PIPELINE = "test_gong"  # tests.test_pipeline.sync's pipeline
SALT = "erase-test-salt-7f3a9c"
Row = dict[str, Optional[str]]
Tables = dict[str, dict[Any, Row]]


def digits(value: Optional[str]) -> str:
    return re.sub(r"\D", "", value or "")


@contextlib.contextmanager
def reading(wh: Warehouse) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """One read-only connection to the warehouse for many queries (`{ds}`: the dataset)."""
    if wh.kind == "duckdb":
        import duckdb

        with duckdb.connect(str(wh.tmp_path / "warehouse.duckdb"), read_only=True) as con:
            yield lambda sql: con.execute(sql.replace("{ds}", wh.dataset)).fetchall()
        return
    import psycopg2

    with contextlib.closing(psycopg2.connect(wh.url)) as con, con.cursor() as cur:
        def query(sql: str) -> list[tuple[Any, ...]]:
            cur.execute(sql.replace("{ds}", wh.dataset))
            return cur.fetchall()

        yield query


def snapshot(wh: Warehouse) -> Tables:
    """Every row of every table of the dataset and of its staging copy (`schema.table`), every value as text,
    by `_dlt_id` (transcripts, which have none: by call_id and sentence_index)."""
    out: Tables = {}
    with reading(wh) as query:
        columns = query("SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE "
                        "table_schema IN ('{ds}', '{ds}_staging') AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' "
                        "ORDER BY table_schema, table_name, ordinal_position")
        by_table: dict[str, list[str]] = {}
        for schema, table, column in columns:
            by_table.setdefault(f"{schema}.{table}", []).append(column)
        for name, cols in by_table.items():
            schema, table = name.split(".")
            select = ", ".join(f'CAST("{c}" AS TEXT)' for c in cols)
            rows = [dict(zip(cols, r, strict=True)) for r in query(f'SELECT {select} FROM "{schema}"."{table}"')]
            out[name] = {(r["_dlt_id"] if "_dlt_id" in r else (r["call_id"], r["sentence_index"])): r for r in rows}
    return out


def write(wh: Warehouse, *statements: str) -> None:
    """Changes the warehouse directly (test data a sync cannot make)."""
    statements = tuple(s.replace("{ds}", wh.dataset) for s in statements)
    if wh.kind == "duckdb":
        import duckdb

        with duckdb.connect(str(wh.tmp_path / "warehouse.duckdb")) as con:
            for statement in statements:
                con.execute(statement)
        return
    import psycopg2

    with contextlib.closing(psycopg2.connect(wh.url)) as con, con.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
        con.commit()


class Person:
    """Who is erased, by the values asked for, and an independent reading of the rules (README "Erasing a
    person") over a snapshot: the rows of each table that must go."""

    def __init__(self, emails: Iterable[str], phones: Iterable[str]) -> None:
        self.emails = {e.lower() for e in emails}
        self.phones = {digits(p) for p in phones}

    def email(self, value: Optional[str]) -> bool:
        return value is not None and value.lower() in self.emails

    def phone(self, value: Optional[str]) -> bool:
        return value is not None and digits(value) in self.phones

    def value(self, value: Optional[str]) -> bool:
        return self.email(value) or (value is not None and re.fullmatch(r"[0-9 +().-]+", value) is not None
                                     and self.phone(value))

    def mentioned(self, value: Optional[str]) -> bool:
        return value is not None and any(e in value.lower() for e in self.emails)

    def keys(self, before: Tables) -> None:
        """The person's user ids, parties, speakers, CRM person objects and reviews, from every copy."""
        def rows(table: str) -> list[Row]:
            return [r for name, t in before.items() if name.split(".")[1] == table for r in t.values()]

        self.users = {u["id"] for u in rows("users") if self.email(u.get("email_address"))
                      or self.email(u.get("trusted_email_address")) or self.phone(u.get("phone_number"))}
        self.users |= {a["user_id"] for a in rows("users__email_aliases") if self.email(a["value"])}
        for table in ("activity_aggregate", "activity_by_period", "activity_day_by_day", "interaction_stats"):
            self.users |= {r["user_id"] for r in rows(table) if self.email(r.get("user_email_address"))}
        self.users |= {r["report_id"] for r in rows("coaching") if self.email(r.get("report_email_address"))}
        self.users |= {r["user_id"] for r in rows("permission_profile_users") if self.email(r.get("email_address"))}
        self.users |= {r["user_id"] for r in rows("audit_logs") if self.email(r.get("user_email_address"))}
        parties = [p for p in rows("calls__parties") if self.email(p.get("email_address"))
                   or self.phone(p.get("phone_number")) or p.get("user_id") in self.users]
        self.users |= {p["user_id"] for p in parties if p.get("user_id")}
        self.users.discard(None)
        self.parties = {(p["call_id"], p["party_id"]) for p in parties}
        self.speakers = {(p["call_id"], p["speaker_id"]) for p in parties if p.get("speaker_id")}
        self.speakers |= {(s["call_id"], s["speaker_id"]) for s in rows("calls__speakers")
                          if s["user_id"] in self.users}
        obj = ("call_id", "system", "object_type", "object_id")
        self.crm_objects = {tuple(f[c] for c in obj) for f in rows("calls__context__objects__fields")
                            if str(f["object_type"]).lower() in ("contact", "lead", "user") and self.value(f["value"])}
        self.reviews = {s["answered_scorecard_id"] for s in rows("answered_scorecards")
                        if s.get("reviewed_user_id") in self.users}

    def removes(self, table: str, r: Row) -> bool:
        """Whether the rules remove row `r` of `table`."""
        speaker = (r.get("call_id"), r.get("speaker_id"))
        party = (r.get("call_id"), r.get("party_id"))
        user = r.get("user_id") in self.users
        if table in ("transcripts", "calls__action_items", "calls__trackers__occurrences",
                     "calls__trackers__phrases__occurrences"):
            return speaker in self.speakers
        if table == "calls__speakers":
            return speaker in self.speakers or user
        if table == "calls__public_comments":
            return r["commenter_user_id"] in self.users
        if table == "calls__context__objects":
            return tuple(r[c] for c in ("call_id", "system", "object_type", "object_id")) in self.crm_objects
        if table == "calls__context__objects__fields":
            return (tuple(r[c] for c in ("call_id", "system", "object_type", "object_id")) in self.crm_objects
                    or self.value(r["value"]))
        if table.startswith("calls__parties__"):
            return party in self.parties or self.value(r.get("value"))
        if table == "calls__parties":
            return (party in self.parties or self.email(r.get("email_address")) or self.phone(r.get("phone_number"))
                    or user)
        if table.startswith("answered_scorecards"):
            return r.get("answered_scorecard_id") in self.reviews
        if table in ("activity_day_by_day", "activity_aggregate", "activity_by_period", "interaction_stats"):
            return user or self.email(r.get("user_email_address"))
        if table in ("activity_day_by_day__calls", "interaction_stats__person_interaction_stats",
                     "user_settings_history", "call_user_access", "permission_profiles__team_leads"):
            return user
        if table == "coaching":
            return r["report_id"] in self.users or self.email(r.get("report_email_address"))
        if table == "permission_profile_users":
            return user or self.email(r.get("email_address"))
        if table == "audit_logs":
            return (user or r.get("impersonator_user_id") in self.users or self.email(r.get("user_email_address"))
                    or self.email(r.get("impersonator_email_address")))
        if table.startswith("users__"):
            return user
        if table == "users":
            return r["id"] in self.users
        return False

    def leftovers(self, tables: Tables) -> list[str]:
        """Every value of every table that still holds one of the addresses, or the number."""
        return [f"{name}.{column}={value!r}" for name, rows in tables.items() for row in rows.values()
                for column, value in row.items()
                if value is not None and not column.startswith("_dlt")
                and (self.mentioned(value) or (digits(value) in self.phones and re.fullmatch(r"[0-9 +().-]+", value))
                     or any(p in value for p in self.phones))]


def judge(person: Person, before: Tables, after: Tables, result: ErasureResult, wh: Warehouse) -> None:
    """The erasure removed exactly the person's rows and cleared exactly the values naming them; the counts
    are those rows and values; nothing else changed."""
    person.keys(before)
    staging = f"{wh.dataset}_staging"
    assert set(after) == set(before)
    for name, rows in before.items():
        schema, table = name.split(".")
        removed = set(rows) - set(after[name])
        assert set(after[name]) <= set(rows), f"{name}: rows appeared"
        expected = {k for k, r in rows.items() if person.removes(table, r)}
        assert removed == expected, f"{name}: removed {len(removed)} rows, the rules say {len(expected)}"
        counts = result.removed if schema == wh.dataset else result.staging_removed
        assert counts.get(table, 0) == len(removed), f"{name}: counted {counts.get(table)} of {len(removed)}"
        changed = [(column, value, after[name][k][column]) for k, r in rows.items() if k in after[name]
                   for column, value in r.items() if after[name][k][column] != value]
        assert all(person.mentioned(old) and new is None for _, old, new in changed), f"{name}: {changed}"
        cleared = result.cleared if schema == wh.dataset else result.staging_cleared
        assert cleared.get(table, 0) == len(changed), f"{name}: {cleared.get(table)} cleared of {len(changed)}"
    assert result.staging_dataset == staging
    assert person.leftovers(after) == []


def pick_people(before: Tables, ds: str) -> tuple[Row, Row, Row]:
    """An internal user in calls, an external party who spoke (by e-mail), another one with a phone number."""
    parties = list(before[f"{ds}.calls__parties"].values())
    sentences: dict[tuple[Any, Any], int] = {}
    for t in before[f"{ds}.transcripts"].values():
        sentences[(t["call_id"], t["speaker_id"])] = sentences.get((t["call_id"], t["speaker_id"]), 0) + 1
    external = sorted((p for p in parties if p["affiliation"] == "External" and p["speaker_id"]),
                      key=lambda p: -sentences.get((p["call_id"], p["speaker_id"]), 0))
    by_email = external[0]
    by_phone = next(p for p in external if p["phone_number"] and p["email_address"] != by_email["email_address"])
    in_calls = {p["user_id"] for p in parties if p["user_id"]}
    users = sorted((u for u in before[f"{ds}.users"].values() if u["id"] in in_calls), key=lambda u: u["id"])
    logged = {r["user_id"] for r in before.get(f"{ds}.audit_logs", {}).values()}
    active = {r["user_id"] for r in before.get(f"{ds}.activity_aggregate", {}).values()}
    internal = next((u for u in users if u["id"] in logged and u["id"] in active), users[0])
    return internal, by_email, by_phone


def spelled_otherwise(phone: str) -> str:
    """+16937725485 -> +1 (693) 772-5485"""
    d = digits(phone)
    return f"+{d[:-10]} ({d[-10:-7]}) {d[-7:-4]}-{d[-4:]}"


def add_mentions(wh: Warehouse, before: Tables, address: str, phone: str, skip_calls: set[str]) -> None:
    """Puts the address where only the sweep or the CRM rules find it: in another call's title, as an Account's
    field (that field goes, the Account stays), and a Contact holding the number (the Contact goes whole)."""
    ds = wh.dataset
    other_call = sorted({r["id"] for r in before[f"{ds}.calls"].values()} - skip_calls)[0]
    fields = sorted(before[f"{ds}.calls__context__objects__fields"].values(), key=lambda f: f["_dlt_id"])
    website = next(f for f in fields if f["name"] == "Website" and f["call_id"] == other_call)
    deal = next(f for f in fields if f["object_type"] == "Opportunity" and f["call_id"] != other_call)
    where = f"call_id = '{deal['call_id']}' AND object_id = '{deal['object_id']}'"
    write(wh,
          f"UPDATE {{ds}}.calls SET title = title || ' (cc {address.upper()})' WHERE id = '{other_call}'",
          f"UPDATE {{ds}}.calls__context__objects__fields SET value = '{address.title()}' "
          f"WHERE _dlt_id = '{website['_dlt_id']}'",
          f"UPDATE {{ds}}.calls__context__objects SET object_type = 'Contact' WHERE {where}",
          f"UPDATE {{ds}}.calls__context__objects__fields SET object_type = 'Contact' WHERE {where}",
          f"UPDATE {{ds}}.calls__context__objects__fields SET value = '{phone}' WHERE {where} AND name = 'LeadSource'")


def loaded_packages(wh: Warehouse) -> list[str]:
    return list(dlt.attach(pipeline_name=PIPELINE, pipelines_dir=str(wh.tmp_path / "dlt"))
                .list_completed_load_packages())


def run_erase(wh: Warehouse, emails: list[str], phones: list[str], dry_run: bool = False) -> ErasureResult:
    return erase(wh.destination, wh.dataset, emails=emails, phones=phones, dry_run=dry_run, pipeline_name=PIPELINE,
                 pipelines_dir=str(wh.tmp_path / "dlt"))


def test_erase_removes_exactly_the_persons_rows_everywhere_and_a_second_run_removes_nothing(
        gong: GongFixture, warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gong_sync.erase")
    sync(gong, warehouse, resources=tuple(resource_names()))
    ds = warehouse.dataset
    synced = snapshot(warehouse)
    internal, external, by_phone = pick_people(synced, ds)
    phone = spelled_otherwise(by_phone["phone_number"])
    external_calls = {p["call_id"] for p in synced[f"{ds}.calls__parties"].values()
                      if p["email_address"] == external["email_address"]}
    add_mentions(warehouse, synced, external["email_address"], phone, external_calls)
    before = snapshot(warehouse)
    emails = [internal["email_address"].upper(), external["email_address"]]
    person = Person(emails, [phone])
    assert person.leftovers(before), "the person is in the warehouse before"
    packages = loaded_packages(warehouse)
    assert packages

    dry = run_erase(warehouse, emails, [phone], dry_run=True)
    assert snapshot(warehouse) == before, "a dry run changes nothing"
    assert loaded_packages(warehouse) == packages and dry.packages_deleted == len(packages)

    result = run_erase(warehouse, emails, [phone])
    after = snapshot(warehouse)
    judge(person, before, after, result, warehouse)
    assert (dry.removed, dry.cleared, dry.staging_removed) == (result.removed, result.cleared, result.staging_removed)
    # The rules met what this test put there, and the person is much of the dataset: none of it is vacuous.
    removed = result.removed
    assert removed["users"] == 1 and len(after[f"{ds}.users"]) == len(before[f"{ds}.users"]) - 1
    assert removed["calls__parties"] >= 3 and removed["transcripts"] >= 10
    assert removed["calls__parties__context__objects__fields"] >= 3 and removed["audit_logs"] >= 1
    assert removed["activity_aggregate"] >= 1 and removed["interaction_stats"] >= 1
    assert removed["calls__context__objects"] == 1 and removed["calls__context__objects__fields"] == 1 + 7
    assert result.cleared["calls"] == 1 and removed["calls"] == 0
    assert sum(result.staging_removed.values()) > 0
    assert set(after[f"{ds}.calls"]) == set(before[f"{ds}.calls"]), "calls stay"
    by_phone_party = (by_phone["call_id"], by_phone["party_id"])
    assert by_phone_party in person.parties and internal["id"] in person.users
    others = [u for u in before[f"{ds}.users"] if before[f"{ds}.users"][u]["id"] != internal["id"]]
    for table in ("activity_aggregate", "interaction_stats", "user_settings_history"):
        other = {k for k, r in before[f"{ds}.{table}"].items() if r["user_id"] != internal["id"]}
        assert other and other <= set(after[f"{ds}.{table}"]), f"{table}: other people's rows stay"
    assert len(others) == len(after[f"{ds}.users"])
    assert loaded_packages(warehouse) == [] and result.packages_deleted == len(packages)
    for value in (*emails, external["email_address"], phone, by_phone["phone_number"]):
        assert value not in caplog.text and value.lower() not in caplog.text.lower()

    caplog.clear()
    again = run_erase(warehouse, emails, [phone])
    assert again.total == 0 and again.packages_deleted == 0
    assert snapshot(warehouse) == after
    assert "nothing to erase" in caplog.text


def test_hashed_addresses_and_numbers_are_found_by_their_hashes(
        gong: GongFixture, duck: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    sync(gong, duck, resources=("users", "calls", "transcripts"),
         pii={"emails": "hash", "phones": "hash", "salt": SALT})
    assert gong.sim is not None
    raw = {}  # stored hash -> the simulator's raw address or number
    for call_id in gong.sim.call_ids():
        for p in gong.sim.data.call_body(gong.sim.data.by_id[call_id], 0)["parties"]:
            raw[hash_value(p["emailAddress"], SALT, "emails")] = p["emailAddress"]
            if p.get("phoneNumber"):
                raw[hash_value(p["phoneNumber"], SALT, "phones")] = p["phoneNumber"]
    parties = duck.query("SELECT p.email_address, p.phone_number FROM {ds}.calls__parties p JOIN {ds}.transcripts t "
                         "ON t.call_id = p.call_id AND t.speaker_id = p.speaker_id WHERE p.affiliation = 'External' "
                         "AND p.phone_number IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC, 1")
    assert parties and all(e in raw and p in raw for e, p in parties), "the warehouse holds hashes only"
    stored = {parties[0][0], next(p for e, p in parties if e != parties[0][0])}
    emails, phones = [raw[parties[0][0]].upper()], [spelled_otherwise(raw[sorted(stored - {parties[0][0]})[0]])]
    present = duck.count("calls__parties", f"WHERE email_address IN {tuple(stored)} OR phone_number IN {tuple(stored)}")
    assert present >= 2
    monkeypatch.delenv("SOURCES__GONG__PII__SALT", raising=False)
    assert run_erase(duck, emails, phones, dry_run=True).removed["calls__parties"] == 0, "raw values match no hash"

    monkeypatch.setenv("SOURCES__GONG__PII__SALT", SALT)
    assert stored <= set(person_candidates(emails, phones, lambda g, v: [hash_value(v, SALT, g)]).exact)
    before = duck.count("transcripts")
    result = run_erase(duck, emails, phones)
    assert result.removed["calls__parties"] == present
    assert result.removed["transcripts"] > 0 and duck.count("transcripts") == before - result.removed["transcripts"]
    cells = "\n".join(str(v) for (v,) in duck.query("SELECT CAST(email_address AS TEXT) || '|' || "
                                                    "COALESCE(phone_number, '') FROM {ds}.calls__parties"))
    assert not any(h in cells for h in stored)
    assert run_erase(duck, emails, phones).total == 0


@pytest.mark.parametrize("argv, said", [
    (["erase"], "Nothing to erase: give the person's --email ADDRESS and/or --phone NUMBER"),
    (["erase", "--email", "not-an-address"], "--email 'not-an-address' is not an e-mail address"),
    (["erase", "--phone", "12-34"], "--phone '12-34' is not a phone number"),
    (["erase", "--email", "a@b.example", "--force"], "Unrecognized arguments: --force: see gong-sync erase --help."),
])
def test_a_bad_erase_invocation_is_one_sentence_and_exit_2(argv: list[str], said: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("gong-sync: " + said) and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_erasing_from_a_dataset_that_does_not_exist_is_one_sentence_and_creates_nothing(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "none.duckdb"))
    code = main(["erase", "--email", "a@b.example", "--dataset", "gong_none", "--pipelines-dir", str(tmp_path / "dlt")])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == (f"gong-sync: The dataset 'gong_none' does not exist in the DuckDB file {tmp_path / 'none.duckdb'}: "
                   "nothing to erase (check --dataset, --destination and its credentials).\n")
    assert not (tmp_path / "none.duckdb").exists()


def test_the_command_counts_on_a_dry_run_then_erases_then_finds_nothing(
        gong: GongFixture, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    sync(gong, warehouse, resources=("users", "calls", "transcripts"))
    ds = warehouse.dataset
    before = snapshot(warehouse)
    _, external, _ = pick_people(before, ds)
    address = external["email_address"]
    parties = sum(1 for p in before[f"{ds}.calls__parties"].values() if p["email_address"] == address)
    if warehouse.kind == "duckdb":
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(warehouse.tmp_path / "warehouse.duckdb"))
    else:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", warehouse.url)
    argv = ["erase", "--email", address, "--destination", warehouse.kind, "--dataset", ds, "--pipeline-name", PIPELINE,
            "--pipelines-dir", str(warehouse.tmp_path / "dlt")]

    assert main([*argv, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and address not in out
    assert re.search(rf"^    calls__parties +{parties}$", out, re.MULTILINE), out
    assert re.search(r"^  total: \d+ rows? removed, \d+ values? cleared$", out, re.MULTILINE), out
    assert out.rstrip().endswith("would be erased.") and "Dry run: nothing was changed" in out
    assert snapshot(warehouse) == before

    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == "" and re.search(rf"^    calls__parties +{parties}$", out, re.MULTILINE), out
    assert out.rstrip().splitlines()[-1].startswith(f"Erased: no row of dataset {ds} holds these addresses")
    assert warehouse.count("calls__parties", f"WHERE email_address = '{address}'") == 0
    assert warehouse.count("calls") == len(before[f"{ds}.calls"])

    assert main([*argv, "-q"]) == 0
    out, _ = capsys.readouterr()
    assert "    (none)" in out and out.rstrip().splitlines()[-1].startswith("Nothing to erase")
