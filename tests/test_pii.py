"""Personal data under the company's control: keep, hash or drop per group, and no raw value anywhere."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pipelines.errors import UsageError
from sources.gong.pii import COLUMNS, PiiPolicy, hash_value
from tests.conftest import GongFixture, Warehouse
from tests.test_pipeline import sync

SALT = "a-long-random-salt-kept-in-secrets-0c4f"
RESOURCES = ("users", "calls", "transcripts", "workspaces", "permission_profiles", "permission_profile_users",
             "audit_logs", "activity_aggregate", "interaction_stats")
pytestmark = pytest.mark.sim(days=4, calls_per_day=5, private_ratio=0.0)


def personal_values(gong: GongFixture) -> dict[str, set[str]]:
    """The raw e-mail addresses, phone numbers, full names and sentences the simulated Gong holds."""
    assert gong.sim is not None
    data = gong.sim.data
    out: dict[str, set[str]] = {"emails": set(), "phones": set(), "names": set(), "transcript_text": set()}
    for user in data.users:
        out["emails"].update([user["emailAddress"], *user.get("emailAliases", [])])
        out["phones"].add(user["phoneNumber"])
        out["names"].add(f"{user['firstName']} {user['lastName']}")
    elsewhere = set()  # the simulator draws every text from one pool of sentences: keep those of other fields out
    for call_id in gong.sim.call_ids():
        meta = data.by_id[call_id]
        for revision in (0, 1, 2):
            elsewhere.update(_strings(data.call_body(meta, revision)))
        for party in data.call_body(meta, 0)["parties"]:
            out["emails"].update([party["emailAddress"]] if party.get("emailAddress") else [])
            out["phones"].update([party["phoneNumber"]] if party.get("phoneNumber") else [])
            out["names"].update([party["name"]] if party.get("name") else [])
        out["transcript_text"].update(s["text"] for m in data.transcript(meta) for s in m["sentences"]
                                      if len(s["text"]) > 25)
    out["transcript_text"] = {t for t in out["transcript_text"] if not any(t in e for e in elsewhere)}
    assert all(out.values()), out
    return out


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def text_cells(wh: Warehouse) -> str:
    """Every text and JSON value of every table of the dataset, joined."""
    columns = wh.query("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = '{ds}' "
                       "AND data_type IN ('VARCHAR', 'JSON')")
    assert len(columns) > 60
    parts = []
    for table, column in columns:
        parts += [str(v) for (v,) in wh.query(f'SELECT "{column}" FROM {{ds}}."{table}" WHERE "{column}" IS NOT NULL')]
    return "\n".join(parts)


def test_hashed_and_dropped_values_are_nowhere_and_joins_still_work(
        gong: GongFixture, duck: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    raw = personal_values(gong)
    pii = {"emails": "hash", "phones": "drop", "names": "hash", "transcript_text": "drop", "salt": SALT}
    result = sync(gong, duck, resources=RESOURCES, pii=pii)
    assert result.row_counts["calls__parties"] > 20 and result.row_counts["transcripts"] > 100
    cells = text_cells(duck)
    files = b"\n".join(f.read_bytes() for f in (duck.tmp_path / "dlt").rglob("*") if f.is_file())
    assert b"trace" in b"".join(f.name.encode() for f in (duck.tmp_path / "dlt").rglob("*"))
    for group, values in raw.items():
        for value in values:
            assert value not in cells, f"{group} value {value!r} is in the warehouse"
            assert value.encode() not in files, f"{group} value {value!r} is in dlt's pipeline folder"
            assert value not in caplog.text, f"{group} value {value!r} is in the logs"
    assert SALT not in cells and SALT.encode() not in files and SALT not in caplog.text
    # Hashed: the same person hashes the same in every table, so joins and counts still work.
    user_email, first = duck.query("SELECT email_address, first_name FROM {ds}.users ORDER BY id LIMIT 1")[0]
    assert gong.sim is not None
    emails = {hash_value(u["emailAddress"], SALT, "emails"): u for u in gong.sim.data.users}
    assert user_email in emails and first == hash_value(emails[user_email]["firstName"], SALT, "names")
    joined = duck.query("SELECT count(*) FROM {ds}.calls__parties p JOIN {ds}.users u "
                        "ON u.email_address = p.email_address")[0][0]
    assert joined == duck.count("calls__parties", "WHERE user_id IS NOT NULL")
    assert duck.count("activity_aggregate", "WHERE user_email_address LIKE 'sha256:%'") == \
        duck.count("activity_aggregate") > 0
    crm_emails = duck.query("SELECT value FROM {ds}.calls__parties__context__objects__fields WHERE name = 'Email'")
    assert crm_emails and all(v.startswith("sha256:") for (v,) in crm_emails)
    # Dropped: NULL, the rows themselves stay.
    assert duck.count("calls__parties", "WHERE phone_number IS NOT NULL") == 0
    assert duck.count("users", "WHERE phone_number IS NOT NULL") == 0
    assert duck.count("transcripts", "WHERE text IS NOT NULL") == 0
    assert duck.count("transcripts") == result.row_counts["transcripts"]


def test_keep_is_the_default_and_loads_every_value_as_gong_sent_it(gong: GongFixture, duck: Warehouse) -> None:
    sync(gong, duck, resources=("users",))
    assert gong.sim is not None
    assert {r[0] for r in duck.query("SELECT email_address FROM {ds}.users")} == \
        {u["emailAddress"] for u in gong.sim.data.users}


def test_the_policy_is_read_from_the_config_section(gong: GongFixture, duck: Warehouse,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__GONG__PII__EMAILS", "drop")
    monkeypatch.setenv("SOURCES__GONG__PII__NAMES", "hash")
    monkeypatch.setenv("SOURCES__GONG__PII__SALT", SALT)
    sync(gong, duck, resources=("users",))
    assert duck.count("users", "WHERE email_address IS NOT NULL OR trusted_email_address IS NOT NULL") == 0
    assert duck.count("users", "WHERE last_name LIKE 'sha256:%'") == duck.count("users") > 0


@pytest.mark.parametrize(("pii", "sentence"), [
    ({"emails": "scramble"}, "SOURCES__GONG__PII__EMAILS 'scramble' is not one of keep, hash, drop: fix it in "
                             ".dlt/config.toml or the environment."),
    ({"phones": "hash"}, "SOURCES__GONG__PII__PHONES is hash but no salt is set: add a long random `salt` under "
                         "[sources.gong.pii] in .dlt/secrets.toml (or SOURCES__GONG__PII__SALT), and keep it: "
                         "changing it changes every hash."),
])
def test_a_bad_policy_is_one_sentence_before_anything_is_read(gong: GongFixture, duck: Warehouse,
                                                               pii: dict[str, Any], sentence: str) -> None:
    with pytest.raises(UsageError) as caught:
        sync(gong, duck, resources=("users",), pii=pii)
    assert str(caught.value) == sentence
    assert gong.session.count("/v2/users") == 0


def test_hashes_are_canonical_salted_and_the_salt_never_shows() -> None:
    assert hash_value("Ann.Lee@Example.COM ", SALT, "emails") == hash_value("ann.lee@example.com", SALT, "emails")
    assert hash_value("+1 (555) 010-2000", SALT, "phones") == hash_value("+15550102000", SALT, "phones")
    assert hash_value("ann@example.com", SALT, "emails") != hash_value("ann@example.com", "other", "emails")
    policy = PiiPolicy.from_settings({"emails": "hash", "salt": SALT})
    assert SALT not in repr(policy) and "emails=hash" in repr(policy)
    for group, columns in COLUMNS.items():
        assert columns, group


def test_every_column_a_group_names_is_in_the_table_contract() -> None:
    import yaml

    from sources.gong import CONTRACT_PATH

    tables = yaml.safe_load(CONTRACT_PATH.read_text())["tables"]
    missing = [f"{t}.{c}" for cols in COLUMNS.values() for t, c, _ in cols if c not in tables.get(t, {}).get(
        "columns", {})]
    assert not missing
