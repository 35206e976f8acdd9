"""The analytics layer (issue 18): the dbt project in transform/ built by `build_models` (dbt's dbtRunner) on a
warehouse the in-process simulator was synced into, on DuckDB and on Postgres, and its marts checked row by row
against the raw tables: keys unique, counts equal to the source's, values the same. Then an incremental build
after an incremental sync (only what the sync loaded is rebuilt; a reconciled call leaves every mart), a sync
that created only some tables, the sentences a user reads when the warehouse is wrong, `make models` from the
command line with a clean stderr, and the generated files (sources.yml, docs/models.md) up to date.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import pytest
import yaml

from pipelines.errors import UsageError, UserError
from pipelines.export_schema import CONTRACT, DBT_SOURCES, dbt_sources_yaml
from pipelines.gong_pipeline import SyncResult, run_sync
from pipelines.models import MARTS, ModelsResult, build_models, mart_questions
from pipelines.models_docs import (
    MODELS_DOC,
    models_markdown,
    project_manifest,
    readme_models_block,
    readme_with_models,
)
from simulator import GongSimulator
from sources.gong.catalog import resource_names
from sources.gong.client import ClientSettings, GongClient
from tests.conftest import ACCESS_KEY, ACCESS_KEY_SECRET, SIM_NOW, RecordingSession, Warehouse, sim_config

ROOT = Path(__file__).resolve().parents[1]
START = SIM_NOW - timedelta(days=10)
# Long enough transcripts for several chunks per call, and private calls the sync must leave out.
SIM = dict(users=8, calls_per_day=8, days=10, sentences_per_call=40, private_ratio=0.1)
CHUNK_CHARS = 2000


@dataclass
class Modeled:
    """A synced warehouse and what `build_models` built on it."""

    wh: Warehouse
    result: ModelsResult
    private_ids: set[str]  # the simulator's private calls in the synced range


def drop_models(wh: Warehouse) -> None:
    """Drops the schemas dbt built beside the dataset (the Warehouse drops the dataset and dlt's staging)."""
    if wh.kind == "postgres":
        import psycopg2

        with psycopg2.connect(wh.url) as con, con.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {wh.dataset}_stg CASCADE; DROP SCHEMA IF EXISTS {wh.dataset}_marts "
                        "CASCADE")
    wh.drop()


def sync(sim: GongSimulator, wh: Warehouse, resources: list[str], start: Any = START, **kwargs: Any) -> SyncResult:
    client = GongClient(sim.base_url, ACCESS_KEY, ACCESS_KEY_SECRET, settings=ClientSettings(rate_limit=None),
                        session=RecordingSession())
    try:
        return run_sync(resources, start=start.isoformat() if start else None,
                        end=SIM_NOW.isoformat() if start else None, destination=wh.destination, dataset=wh.dataset,
                        pipeline_name=f"models_{wh.kind}", pipelines_dir=str(wh.tmp_path / "dlt"),
                        source_options={"client": client, "company_timezone": "America/New_York",
                                        "start_date": START.isoformat(), "lookback_days": 2},
                        window_days=30, **kwargs)
    finally:
        client.close()


def build(wh: Warehouse, **kwargs: Any) -> ModelsResult:
    return build_models(destination=wh.destination, dataset=wh.dataset, target_path=str(wh.tmp_path / "target"),
                        log_path=str(wh.tmp_path / "logs"), **kwargs)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def modeled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Modeled]:
    """Every default resource synced once from a live simulator into a fresh warehouse, then `build_models`."""
    wh = Warehouse(request.param, tmp_path_factory.mktemp(f"models_{request.param}"))
    try:
        with GongSimulator(sim_config(**SIM)) as sim:
            assert sync(sim, wh, resource_names(default_only=True)).stop_reason is None
            private = {c for c in sim.private_call_ids() if START <= sim.call_meta(c).started < SIM_NOW}
        yield Modeled(wh, build(wh), private)
    finally:
        drop_models(wh)


@pytest.fixture(scope="module")
def manifest() -> Any:
    """The project's manifest (dbt parse, without a warehouse)."""
    return project_manifest()


def marts(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql`, where {m} is the marts schema and {ds} the dataset."""
    return wh.query(sql.replace("{m}", "{ds}_marts"))


def test_dbt_build_runs_every_model_and_passes_every_test(modeled: Modeled, manifest: Any) -> None:
    models = {n.name for n in manifest.nodes.values() if n.resource_type == "model"}
    tests = [n for n in manifest.nodes.values() if n.resource_type == "test"]
    assert set(MARTS) < models and len(models) == 34
    assert sorted(modeled.result.models) == sorted(models)
    assert modeled.result.warnings == [] and modeled.result.tests_passed == len(tests) > 100
    # Every mart has rows, and the counts reported are the warehouse's.
    for mart in MARTS:
        rows = marts(modeled.wh, f"SELECT count(*) FROM {{m}}.{mart}")[0][0]
        assert rows == modeled.result.row_counts[mart] > 0, mart


def test_fct_calls_is_every_non_private_call_with_its_context(modeled: Modeled) -> None:
    wh = modeled.wh
    raw = {r[0]: r[1:] for r in wh.query("SELECT id, duration_s, direction, scope, system, primary_user_id, "
                                         "questions__company_count FROM {ds}.calls")}
    rows = {r[0]: r[1:] for r in marts(wh, "SELECT call_id, duration_s, direction, scope, system, primary_user_id, "
                                       "questions_by_company FROM {m}.fct_calls")}
    assert len(rows) == marts(wh, "SELECT count(*) FROM {m}.fct_calls")[0][0], "one row per call"
    assert rows == raw and len(rows) > 50
    assert modeled.private_ids and not modeled.private_ids & set(rows), "no private call is modeled"
    # The account and the deal are the call's CRM context objects, their names and stage its fields.
    context = wh.query(
        "SELECT o.call_id, o.object_type, o.object_id, f.value FROM {ds}.calls__context__objects o "
        "JOIN {ds}.calls__context__objects__fields f ON f.call_id = o.call_id AND f.system = o.system "
        "AND f.object_type = o.object_type AND f.object_id = o.object_id WHERE f.name = 'Name'")
    names = {(c, t): (i, v) for c, t, i, v in context}
    got = marts(wh, "SELECT call_id, account_id, account_name, deal_id, deal_name, deal_stage, deal_amount "
                    "FROM {m}.fct_calls")
    assert len(names) == 2 * len(got)
    for call_id, account_id, account_name, deal_id, deal_name, stage, amount in got:
        assert (account_id, account_name) == names[(call_id, "Account")]
        assert (deal_id, deal_name) == names[(call_id, "Opportunity")]
        assert stage and amount is not None and amount > 0
    stages = dict(wh.query("SELECT call_id, value FROM {ds}.calls__context__objects__fields "
                           "WHERE object_type = 'Opportunity' AND name = 'StageName'"))
    assert {c: s for c, *_, s, _ in got} == stages
    # Participants by side, Gong's interaction stats, the transcript.
    parties = wh.query("SELECT call_id, count(*), sum(CASE WHEN affiliation = 'Internal' THEN 1 ELSE 0 END), "
                       "sum(CASE WHEN affiliation = 'External' THEN 1 ELSE 0 END) FROM {ds}.calls__parties "
                       "GROUP BY call_id")
    modeled_parties = marts(wh, "SELECT call_id, participants, internal_participants, external_participants "
                                "FROM {m}.fct_calls WHERE participants > 0")
    assert sorted(map(tuple, parties)) == sorted(map(tuple, modeled_parties)) and len(parties) == len(rows)
    stats = dict(wh.query("SELECT call_id, value FROM {ds}.calls__interaction_stats WHERE name = 'Talk Ratio'"))
    patience = dict(wh.query("SELECT call_id, value FROM {ds}.calls__interaction_stats WHERE name = 'Patience'"))
    for call_id, talk_ratio, patience_s in marts(wh, "SELECT call_id, talk_ratio, patience_s FROM {m}.fct_calls"):
        assert (talk_ratio, patience_s) == (stats[call_id], patience[call_id])
    sentences = dict(wh.query("SELECT call_id, count(*) FROM {ds}.transcripts GROUP BY call_id"))
    modeled_sentences = marts(wh, "SELECT call_id, has_transcript, transcript_sentences FROM {m}.fct_calls")
    assert {c: n for c, has, n in modeled_sentences if has} == sentences
    assert all(n == 0 for c, has, n in modeled_sentences if not has)


def test_fct_call_speakers_sums_talk_time_from_the_sentences(modeled: Modeled) -> None:
    wh = modeled.wh
    raw = {(c, s): (n, ms) for c, s, n, ms in wh.query(
        "SELECT call_id, speaker_id, count(*), sum(end_ms - start_ms) FROM {ds}.transcripts GROUP BY call_id, "
        "speaker_id")}
    rows = marts(wh, "SELECT call_id, speaker_id, sentences, talk_time_s, share_of_call, share_of_talk, is_internal, "
                     "side, speaker_name FROM {m}.fct_call_speakers")
    assert len(rows) == len(raw) > 100 and len({(r[0], r[1]) for r in rows}) == len(rows)
    parties = {(c, s): (a, n) for c, s, a, n in wh.query(
        "SELECT call_id, speaker_id, affiliation, name FROM {ds}.calls__parties WHERE speaker_id IS NOT NULL")}
    for call_id, speaker_id, sentences, talk_s, share_call, share_talk, internal, side, name in rows:
        assert (sentences, round(talk_s * 1000)) == raw[(call_id, speaker_id)]
        assert (side, name) == parties[(call_id, speaker_id)] and internal == (side == "Internal")
        assert 0 < share_talk <= 1 and 0 < share_call <= 1
    per_call: dict[str, list[float]] = {}
    for row in rows:
        per_call.setdefault(row[0], []).append(row[5])
    assert all(abs(sum(shares) - 1) < 1e-9 for shares in per_call.values())


def test_fct_tracker_mentions_split_gongs_counts_by_side(modeled: Modeled) -> None:
    wh = modeled.wh
    counts = dict(((c, t), n) for c, t, n in wh.query("SELECT call_id, tracker_id, count FROM {ds}.calls__trackers "
                                                      "WHERE count > 0"))
    rows = marts(wh, "SELECT call_id, tracker_id, speaker_side, mentions FROM {m}.fct_tracker_mentions")
    assert len({r[:3] for r in rows}) == len(rows) > 100
    totals: dict[tuple[str, str], int] = {}
    for call_id, tracker_id, _, mentions in rows:
        totals[(call_id, tracker_id)] = totals.get((call_id, tracker_id), 0) + mentions
    assert totals == counts
    by_side = wh.query(
        "SELECT o.call_id, o.tracker_id, p.affiliation, count(*) FROM {ds}.calls__trackers__occurrences o "
        "JOIN {ds}.calls__parties p ON p.call_id = o.call_id AND p.speaker_id = o.speaker_id GROUP BY 1, 2, 3")
    assert sorted(map(tuple, by_side)) == sorted(r for r in map(tuple, rows) if r[2] != "Unknown")


def test_fct_scorecard_answers_and_dim_users_hold_every_row(modeled: Modeled) -> None:
    wh = modeled.wh
    answers = wh.query("SELECT a.answered_scorecard_id, a.question_id, a.score, s.call_id, s.reviewed_user_id "
                       "FROM {ds}.answered_scorecards__answers a JOIN {ds}.answered_scorecards s "
                       "ON s.answered_scorecard_id = a.answered_scorecard_id")
    rows = marts(wh, "SELECT answered_scorecard_id, question_id, score, call_id, reviewed_user_id "
                     "FROM {m}.fct_scorecard_answers")
    assert sorted(map(tuple, rows), key=str) == sorted(map(tuple, answers), key=str) and len(rows) > 20
    assert marts(wh, "SELECT count(*) FROM {m}.fct_scorecard_answers WHERE question_text IS NULL")[0][0] == 0
    scaled = marts(wh, "SELECT min(score_scaled), max(score_scaled) FROM {m}.fct_scorecard_answers")[0]
    assert 0 <= scaled[0] <= scaled[1] <= 1
    users = wh.query("SELECT u.id, u.first_name || ' ' || u.last_name, m.first_name || ' ' || m.last_name "
                     "FROM {ds}.users u LEFT JOIN {ds}.users m ON m.id = u.manager_id")
    dims = marts(wh, "SELECT user_id, full_name, manager_name FROM {m}.dim_users")
    assert sorted(map(tuple, dims), key=str) == sorted(map(tuple, users), key=str)
    assert any(manager for _, _, manager in dims), "managers are named"
    led = dict(wh.query("SELECT primary_user_id, count(*) FROM {ds}.calls GROUP BY 1"))
    assert {u: n for u, n in marts(wh, "SELECT user_id, calls_led FROM {m}.dim_users WHERE calls_led > 0")} == led


def test_rep_activity_weekly_counts_each_reps_calls_in_their_week(modeled: Modeled) -> None:
    wh = modeled.wh
    expected = wh.query("SELECT primary_user_id, CAST(date_trunc('week', started AT TIME ZONE 'UTC') AS DATE), "
                        "count(*), sum(duration_s) FROM {ds}.calls GROUP BY 1, 2")
    rows = marts(wh, "SELECT user_id, week_start, calls, call_minutes, mean_talk_ratio FROM {m}.rep_activity_weekly")
    assert len({(r[0], r[1]) for r in rows}) == len(rows)
    got = {(u, w): (n, minutes) for u, w, n, minutes, _ in rows if n}
    assert {(u, w): (n, pytest.approx(float(s) / 60)) for u, w, n, s in expected} == got
    weeks = {w for _, w, *_ in rows}
    reps = {u for u, *_ in rows}
    assert len(rows) == len(weeks) * len(reps) and all(w.weekday() == 0 for w in weeks), "every rep, every week"
    ratios = wh.query("SELECT c.primary_user_id, CAST(date_trunc('week', c.started AT TIME ZONE 'UTC') AS DATE), "
                      "avg(i.value) FROM {ds}.calls c JOIN {ds}.calls__interaction_stats i ON i.call_id = c.id "
                      "AND i.name = 'Talk Ratio' GROUP BY 1, 2")
    assert {(u, w): pytest.approx(r) for u, w, r in ratios} == {(u, w): r for u, w, n, _, r in rows if n}


def test_transcript_documents_hold_every_sentence_in_bounded_chunks(modeled: Modeled) -> None:
    wh = modeled.wh
    chunks = marts(wh, "SELECT call_id, chunk_index, chunks_in_call, text, characters, sentences, speakers, "
                       "account_name FROM {m}.transcript_documents ORDER BY call_id, chunk_index")
    sentences = wh.query("SELECT t.call_id, t.text, p.name, p.affiliation FROM {ds}.transcripts t "
                         "JOIN {ds}.calls__parties p ON p.call_id = t.call_id AND p.speaker_id = t.speaker_id "
                         "ORDER BY t.call_id, t.sentence_index")
    assert len(chunks) > 2 * len({c for c, *_ in chunks}), "calls of 40 sentences make several chunks"
    assert max(c[4] for c in chunks) <= CHUNK_CHARS and max(c[4] for c in chunks) > CHUNK_CHARS * 0.6
    assert all(len(text) == characters for _, _, _, text, characters, *_ in chunks)
    by_call: dict[str, list[tuple[Any, ...]]] = {}
    for chunk in chunks:
        by_call.setdefault(chunk[0], []).append(chunk)
    for parts in by_call.values():
        assert [p[1] for p in parts] == list(range(len(parts))) and {p[2] for p in parts} == {len(parts)}
    # Reading a call's chunks in order gives its sentences in order, each under its speaker's name and side.
    said: dict[str, list[tuple[str, str]]] = {}
    for call_id, text, name, side in sentences:
        said.setdefault(call_id, []).append((f"{name} ({side}): ", text))
    assert set(said) == set(by_call)
    for call_id, parts in by_call.items():
        document = "\n".join(p[3] for p in parts)
        position = 0
        for header, text in said[call_id]:
            found = document.find(text, position)
            assert found >= 0, f"{call_id}: a sentence is missing or out of order"
            line_start = document.rfind("\n", 0, found) + 1
            assert document[line_start:].startswith(header), f"{call_id}: {text!r} is attributed to {header!r}"
            position = found + len(text)
        assert sum(p[5] for p in parts) == len(said[call_id])
        assert all(p[7] for p in parts), "every chunk carries its call's account"


def test_the_example_queries_of_the_docs_answer(modeled: Modeled, manifest: Any) -> None:
    for node in (n for n in manifest.nodes.values() if n.resource_type == "model" and n.name in MARTS):
        sql = node.config.meta["example"].replace("gong_marts.", "{ds}_marts.")
        rows = modeled.wh.query(sql)
        assert rows and all(len(row) >= 2 for row in rows), node.name


def test_the_demo_questions_are_answered_from_the_marts(modeled: Modeled) -> None:
    wh = modeled.wh
    (weekly, _), (talk, _), (trackers, _), (won, _) = answers = [
        (wh.query(sql), title) for title, sql in mart_questions(wh.dataset)]
    assert all(rows for rows, _ in answers)
    assert sum(row[2] for row in weekly) == wh.count("calls") and all(row[1].weekday() == 0 for row in weekly)
    assert len(talk) == len({r[0] for r in wh.query("SELECT DISTINCT primary_user_id FROM {ds}.calls")})
    assert sum(row[1] for row in talk) == wh.count("calls")
    assert sum(row[1] for row in trackers) == wh.query("SELECT sum(count) FROM {ds}.calls__trackers")[0][0]
    assert all(row[1] == row[2] + row[3] for row in trackers), "every mention was said by a rep or a customer"
    expected = wh.query("SELECT count(DISTINCT o.call_id) FROM {ds}.calls__trackers__occurrences o "
                        "JOIN {ds}.calls__parties p ON p.call_id = o.call_id AND p.speaker_id = o.speaker_id "
                        "JOIN {ds}.calls__context__objects__fields f ON f.call_id = o.call_id "
                        "WHERE p.affiliation = 'External' AND f.name = 'StageName' AND f.value = 'Closed Won'")[0][0]
    assert max(row[2] for row in won) <= expected and expected > 0
    # The demo keeps the weekly answer to whole weeks [first, end): the last (partial) week left out here.
    mondays = sorted({row[1] for row in weekly})
    first, end = mondays[0], mondays[-1]
    whole = wh.query(mart_questions(wh.dataset, weeks=(first, end))[0][1])
    assert {row[1] for row in whole} == set(mondays[:-1]) and len(mondays) >= 2
    assert sum(row[2] for row in whole) == sum(row[2] for row in weekly if first <= row[1] < end) > 0


def test_a_build_after_an_incremental_sync_rebuilds_what_it_loaded(warehouse: Warehouse) -> None:
    resources = ["calls", "transcripts", "users"]
    try:
        with GongSimulator(sim_config(**{**SIM, "sentences_per_call": 12})) as sim:
            sync(sim, warehouse, resources)
            build(warehouse)
            first_loads = {load for (load,) in warehouse.query("SELECT load_id FROM {ds}._dlt_loads")}
            before = dict(marts(warehouse, "SELECT call_id, _load_id FROM {m}.fct_calls"))
            chunks_before = dict(marts(warehouse, "SELECT chunk_id, _load_id FROM {m}.transcript_documents"))
            ids = [r[0] for r in warehouse.query("SELECT id FROM {ds}.calls ORDER BY started DESC")]
            sim.edit_call(ids[0], title="Renamed in Gong")
            # Resumes from the state: re-reads the lookback (2 days), as a schedule does.
            sync(sim, warehouse, resources, start=None)
            assert build(warehouse).warnings == []
            after = dict(marts(warehouse, "SELECT call_id, _load_id FROM {m}.fct_calls"))
            assert set(after) == set(before) == {c for (c,) in warehouse.query("SELECT id FROM {ds}.calls")}
            assert marts(warehouse, f"SELECT title FROM {{m}}.fct_calls WHERE call_id = '{ids[0]}'") == [
                ("Renamed in Gong",)]
            # Only the calls the sync loaded were rebuilt: the others keep the load they were built from.
            loads = warehouse.query("SELECT id, _dlt_load_id FROM {ds}.calls")
            reloaded = {c for c, load in loads if load not in first_loads}
            rebuilt = {c for c in after if after[c] != before[c]}
            assert rebuilt == reloaded and ids[0] in rebuilt and 0 < len(rebuilt) < len(after) / 2
            chunks_after = dict(marts(warehouse, "SELECT chunk_id, _load_id FROM {m}.transcript_documents"))
            kept = {c for c in chunks_after if chunks_after[c] == chunks_before.get(c)}
            transcribed = {c.rsplit("-", 1)[0] for c in chunks_before}
            assert {c.rsplit("-", 1)[0] for c in kept} == transcribed - reloaded
            # A reconcile deletes a call Gong no longer returns: the next build removes it from every mart.
            gone = ids[1]
            sim.delete_call(gone)
            since_start = (datetime.now(UTC) - START).days + 1
            assert sync(sim, warehouse, resources, start=None, reconcile=True,
                        reconcile_days=since_start).deleted_calls == 1
        assert build(warehouse).warnings == []
        for mart in ("fct_calls", "fct_call_speakers", "fct_tracker_mentions", "transcript_documents"):
            assert marts(warehouse, f"SELECT count(*) FROM {{m}}.{mart} WHERE call_id = '{gone}'") == [(0,)], mart
        assert marts(warehouse, "SELECT count(*) FROM {m}.fct_calls")[0][0] == warehouse.count("calls") == len(ids) - 1
        # The same rows as a build from scratch.
        incremental = {m: rows_of(warehouse, m) for m in MARTS}
        build(warehouse, full_refresh=True)
        for mart in MARTS:
            assert rows_of(warehouse, mart) == incremental[mart], mart
    finally:
        drop_models(warehouse)


def rows_of(wh: Warehouse, mart: str) -> list[tuple[Any, ...]]:
    """Every row of a mart, in a stable order, numbers rounded (a sum's last bits may depend on its order)."""
    rows = [tuple(round(v, 9) if isinstance(v, float) else v for v in row)
            for row in marts(wh, f"SELECT * FROM {{m}}.{mart}")]
    return sorted(rows, key=str)


def test_tables_a_sync_never_created_read_as_empty(duck: Warehouse) -> None:
    with GongSimulator(sim_config(users=4, calls_per_day=4, days=3, sentences_per_call=6)) as sim:
        sync(sim, duck, ["calls", "transcripts"], start=SIM_NOW - timedelta(days=3))
    result = build(duck)
    assert len(result.models) == 34
    assert result.row_counts["fct_calls"] == duck.count("calls") > 0
    assert result.row_counts["dim_users"] == result.row_counts["fct_scorecard_answers"] == 0
    # Without users no rep is known: the relationships to dim_users warn, and the build goes on.
    assert sorted(w.split(" (")[0] for w in result.warnings) == [
        "relationships_fct_call_speakers_user_id__user_id__ref_dim_users_",
        "relationships_fct_calls_primary_user_id__user_id__ref_dim_users_",
        "relationships_rep_activity_weekly_user_id__user_id__ref_dim_users_"]


def test_a_warehouse_no_sync_loaded_is_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    with pytest.raises(UserError, match=r"^There is no DuckDB warehouse at .*nowhere\.duckdb: run `make sync` "):
        build_models(destination=dlt.destinations.duckdb(credentials=str(missing)))
    assert not missing.exists(), "looking wrote no file"
    import duckdb

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(UserError, match=r"^The dataset 'gong' in the DuckDB file .*empty\.duckdb has no calls table: "
                                        r"no sync has loaded it yet; run `make sync`"):
        build_models(destination=dlt.destinations.duckdb(credentials=str(empty)))
    with pytest.raises(UsageError, match=r"^The models build on duckdb or postgres, not on bigquery"):
        build_models(destination="bigquery")


def test_an_unreachable_postgres_is_one_sentence_without_its_password() -> None:
    destination = dlt.destinations.postgres(credentials="postgresql://postgres:hunter2@127.0.0.1:1/test")
    with pytest.raises(UserError) as caught:
        build_models(destination=destination)
    message = str(caught.value)
    assert message.startswith("Could not connect to the postgres database test at 127.0.0.1:1 (")
    assert message.endswith("check that it is running and DESTINATION__POSTGRES__CREDENTIALS.")
    assert "hunter2" not in message and "\n" not in message


def test_make_models_builds_from_the_sync_settings_with_a_clean_stderr(tmp_path: Path) -> None:
    wh = Warehouse("duckdb", tmp_path)
    wh.dataset = "gong"
    with GongSimulator(sim_config(users=4, calls_per_day=4, days=3, sentences_per_call=6)) as sim:
        sync(sim, wh, resource_names(default_only=True), start=SIM_NOW - timedelta(days=3))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION__", "GONG_SYNC_"))}
    env.update(DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "warehouse.duckdb"), DBT_TARGET_PATH=str(tmp_path / "t"),
               DBT_LOG_PATH=str(tmp_path / "logs"))
    done = subprocess.run([sys.executable, "-m", "pipelines.models", "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    assert "Built 34 models and passed" in done.stdout and "on duckdb (dataset gong)" in done.stdout
    counted = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.endswith(" rows")}
    assert set(counted) == set(MARTS) and counted["fct_calls"] == f"{wh.count('calls'):,}"
    assert (tmp_path / "logs" / "dbt.log").exists() and not (ROOT / "logs").exists()
    # Run where no sync ran: one sentence, exit 1.
    env["DESTINATION__DUCKDB__CREDENTIALS"] = str(tmp_path / "absent.duckdb")
    failed = subprocess.run([sys.executable, "-m", "pipelines.models"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == (f"models: There is no DuckDB warehouse at {tmp_path / 'absent.duckdb'}: run `make sync` "
                             "first, or point DESTINATION__DUCKDB__CREDENTIALS at the warehouse file the sync wrote.\n")


def test_the_dbt_sources_are_the_contracts_tables() -> None:
    contract = yaml.safe_load(CONTRACT.read_text())
    assert DBT_SOURCES.read_text() == dbt_sources_yaml(contract), "run make schema (or python -m " \
                                                                  "pipelines.export_schema --dbt-only)"
    (source,) = yaml.safe_load(DBT_SOURCES.read_text())["sources"]
    tables = {t["name"]: t for t in source["tables"]}
    assert set(tables) == set(contract["tables"]) | {"_dlt_loads"}
    for name, table in contract["tables"].items():
        declared = {c["name"]: c["data_type"] for c in tables[name]["columns"]}
        assert {c: s["data_type"] for c, s in table["columns"].items() if c in declared} == declared
        assert set(declared) >= {c for c in table["columns"] if not c.startswith("_dlt")}, name
    fresh = {name for name, t in tables.items() if "freshness" in t.get("config", {})}
    assert {"calls", "transcripts", "answered_scorecards", "audit_logs"} <= fresh
    assert not fresh & {"users", "calls__parties", "coaching", "workspaces"}
    assert "a non-private call" in tables["calls"]["description"]


def test_docs_models_md_is_generated_from_the_project(manifest: Any) -> None:
    doc = MODELS_DOC.read_text()
    assert doc == models_markdown(manifest), "run make schema (or python -m pipelines.models --docs)"
    assert "```mermaid\nflowchart LR" in doc
    for edge in ("raw_calls --> stg_gong__calls", "stg_gong__calls --> fct_calls",
                 "raw_transcripts --> stg_gong__transcript_sentences", "fct_calls --> transcript_documents"):
        assert f"    {edge}\n" in doc
    for mart in MARTS:
        assert f"### {mart}\n" in doc
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_models(readme, manifest), "run make schema: the README's modeled tables are stale"
    block = readme_models_block(manifest)
    assert "    raw_transcripts --> fct_call_speakers\n" in block and "    fct_calls --> rep_activity_weekly\n" in block
    assert all(f"| [`{mart}`](docs/models.md#{mart}) |" in block for mart in MARTS)
