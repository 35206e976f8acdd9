"""Several Gong accounts: each into a dataset of its own, a failure in one does not stop the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from simulator import GongSimulator
from tests.conftest import sim_config
from tests.test_front_door import newcomer_env, run_gong_sync


@pytest.fixture(scope="module")
def two_gongs() -> Iterator[tuple[GongSimulator, GongSimulator]]:
    with GongSimulator(sim_config(seed=7, days=3, calls_per_day=4, users=3, sentences_per_call=3, now=None)) as a, \
            GongSimulator(sim_config(seed=8, days=3, calls_per_day=6, users=5, sentences_per_call=3, now=None)) as b:
        yield a, b


def accounts_env(home: Path, a: GongSimulator, b: GongSimulator, b_secret: str = "sim-access-key-secret") -> dict:
    accounts = {"emea": {"base_url": a.base_url, "access_key": "sim-access-key",
                         "access_key_secret": "sim-access-key-secret"},
                "us": {"base_url": b.base_url, "access_key": "sim-access-key", "access_key_secret": b_secret,
                       "dataset": "gong_us_region"}}
    return newcomer_env(home, "http://127.0.0.1:9", SOURCES__GONG__ACCOUNTS=json.dumps(accounts))


def test_every_account_syncs_into_its_own_dataset_with_its_own_state(two_gongs: tuple, tmp_path: Path) -> None:
    a, b = two_gongs
    proc = run_gong_sync(tmp_path / "w", accounts_env(tmp_path / "home", a, b), "--all-accounts",
                         "--resources", "users,calls,transcripts")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "2 of 2 accounts synced" in proc.stdout
    with duckdb.connect(str(tmp_path / "w" / "gong_warehouse.duckdb"), read_only=True) as con:
        for dataset, sim in (("gong_emea", a), ("gong_us_region", b)):
            ids = {r[0] for r in con.execute(f"SELECT id FROM {dataset}.calls").fetchall()}
            assert ids == set(sim.call_ids(include_private=False)), dataset
            users = con.execute(f"SELECT count(*) FROM {dataset}.users").fetchone()[0]
            assert users == len(sim.data.users)
    pipelines = tmp_path / "home" / ".dlt" / "pipelines"
    assert (pipelines / "gong_emea").is_dir() and (pipelines / "gong_us").is_dir()
    ledgers = [p for p in (pipelines / "gong_request_budget").glob("*.json") if not p.name.endswith(".pace.json")]
    assert len(ledgers) == 2, "each Gong company counts its own daily requests"


def test_a_failing_account_is_reported_and_the_others_still_sync(two_gongs: tuple, tmp_path: Path) -> None:
    a, b = two_gongs
    proc = run_gong_sync(tmp_path / "w", accounts_env(tmp_path / "home", a, b, b_secret="wrong"), "--all-accounts",
                         "--resources", "users,calls")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("gong-sync: account us: ") and "wrong" not in line
    assert "access_key / access_key_secret of [sources.gong.accounts.us]" in line
    assert "1 of 2 accounts synced" in proc.stdout and "  us    FAILED" in proc.stdout
    with duckdb.connect(str(tmp_path / "w" / "gong_warehouse.duckdb"), read_only=True) as con:
        visible = len(a.call_ids(include_private=False))
        assert con.execute("SELECT count(*) FROM gong_emea.calls").fetchone()[0] == visible


def test_no_accounts_configured_is_one_sentence(tmp_path: Path) -> None:
    proc = run_gong_sync(tmp_path / "w", newcomer_env(tmp_path / "home", "http://127.0.0.1:9"), "--all-accounts")
    assert proc.returncode == 2
    assert proc.stderr.startswith("gong-sync: --all-accounts found no accounts: list them as")
