"""The front door: what a newcomer meets first, from an empty folder, with nothing but the environment.

`gong-sync` is run as `make sync` runs it (the console script, no arguments), against the in-process
simulator, in a folder of its own with a home of its own: the default DuckDB destination must load, a
Postgres URL without a password must load with nothing on stderr, and every bad input ends in one
sentence and its exit code before anything is read or written.
"""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config_files import toml_problem
from pipelines.destinations import file_format, with_empty_password
from simulator import GongSimulator
from sources.gong.client import ClientSettings, GongApiError, GongClient, GongConnectionError
from tests.conftest import require_postgres, sim_config

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def gong_sync_command() -> list[str]:
    """The console script `make sync` runs (the venv's), or the same entry point through this Python."""
    script = Path(sys.executable).with_name("gong-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture(scope="module")
def sim() -> Iterator[GongSimulator]:
    with GongSimulator(sim_config(days=4, calls_per_day=3, users=4, sentences_per_call=5, now=None)) as simulator:
        yield simulator


def newcomer_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """A process environment with only what the README asks a newcomer to set (and a home of its own)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOURCES__", "DESTINATION__", "GONG_SYNC_", "DLT_", "PIPELINES__"))}
    # dlt keeps its state in ~/.dlt (/var/dlt for root): here, a folder of this test's own.
    env.update(HOME=str(home), DLT_DATA_DIR=str(home / ".dlt"), SOURCES__GONG__BASE_URL=base_url,
               SOURCES__GONG__ACCESS_KEY="sim-access-key",
               SOURCES__GONG__ACCESS_KEY_SECRET="sim-access-key-secret",
               # The simulator answers at any rate; Gong's 3/s would only make this test slower.
               SOURCES__GONG__RATE_LIMIT="0", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.update(extra)
    return env


def run_gong_sync(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*gong_sync_command(), *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_default_make_sync_loads_into_duckdb_from_an_empty_folder(sim: GongSimulator, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    proc = run_gong_sync(folder, newcomer_env(tmp_path / "home", sim.base_url))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(p.name for p in folder.iterdir()) == ["gong_warehouse.duckdb"]
    with duckdb.connect(str(folder / "gong_warehouse.duckdb"), read_only=True) as con:
        calls = con.execute("SELECT count(*), count(DISTINCT id) FROM gong.calls").fetchone()
        sentences = con.execute("SELECT count(*) FROM gong.transcripts").fetchone()[0]
        users = con.execute("SELECT count(*) FROM gong.users").fetchone()[0]
    visible = len(sim.call_ids(include_private=False))
    assert calls == (visible, visible) and visible > 0
    assert sentences > 0 and users == 4
    assert "rows loaded per table" in proc.stdout and "took " in proc.stdout
    assert (tmp_path / "home" / ".dlt" / "pipelines" / "gong").is_dir(), "the state lives where dlt keeps it"


def test_gong_sync_transform_builds_the_models_after_the_sync(sim: GongSimulator, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    env = newcomer_env(tmp_path / "home", sim.base_url, DBT_TARGET_PATH=str(tmp_path / "dbt_target"),
                       DBT_LOG_PATH=str(tmp_path / "dbt_logs"))
    proc = run_gong_sync(folder, env, "--transform", "--quiet")
    assert (proc.returncode, proc.stderr) == (0, "")
    visible = len(sim.call_ids(include_private=False))
    with duckdb.connect(str(folder / "gong_warehouse.duckdb"), read_only=True) as con:
        marts = con.execute("SELECT count(*), count(DISTINCT call_id) FROM gong_marts.fct_calls").fetchone()
        users = con.execute("SELECT count(*) FROM gong_marts.dim_users").fetchone()[0]
    assert marts == (visible, visible) and users == 4
    assert "Built " in proc.stdout and "Marts in gong_marts:" in proc.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["gong_warehouse.duckdb"], "dbt writes nothing here"
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("fct_calls "))
    assert int(line.split()[1].replace(",", "")) == visible


@pytest.mark.postgres
def test_a_postgres_url_without_a_password_loads_with_nothing_on_stderr(sim: GongSimulator, tmp_path: Path) -> None:
    import psycopg2

    url = require_postgres()
    host = url.split("@", 1)[1]
    dataset = f"gong_nopw_{os.getpid()}"
    env = newcomer_env(tmp_path / "home", sim.base_url,
                       DESTINATION__POSTGRES__CREDENTIALS=f"postgresql://postgres@{host}")
    try:
        proc = run_gong_sync(tmp_path / "work", env, "--destination", "postgres", "--dataset", dataset,
                             "--resources", "users,calls,transcripts")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", "a clean Postgres run prints nothing on stderr"
        with psycopg2.connect(url) as con, con.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {dataset}.calls")
            assert cur.fetchone()[0] == len(sim.call_ids(include_private=False))
            cur.execute(f"SELECT count(*) FROM {dataset}.transcripts")
            assert cur.fetchone()[0] > 0
        assert list((tmp_path / "work").iterdir()) == [], "nothing is written into the folder"
        # The same pipeline into DuckDB afterwards: one line of progress says so, nothing on stderr.
        again = run_gong_sync(tmp_path / "work", env, "--dataset", dataset, "--resources", "users,calls,transcripts")
        assert (again.returncode, again.stderr) == (0, "")
        assert "this pipeline loaded into postgres before and loads into duckdb now; give each warehouse its own " \
               "--pipeline-name to keep their states apart" in again.stdout
    finally:
        with psycopg2.connect(url) as con, con.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE; DROP SCHEMA IF EXISTS {dataset}_staging CASCADE")


def test_an_old_gong_duckdb_gets_a_rename_sentence_and_is_left_alone(sim: GongSimulator, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "gong.duckdb").write_bytes(b"old")
    proc = run_gong_sync(folder, newcomer_env(tmp_path / "home", sim.base_url))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "gong-sync: gong.duckdb was written by an earlier gong-sync and is named like the dataset 'gong', which "
        "DuckDB cannot tell apart: rename it (mv gong.duckdb gong_warehouse.duckdb, and its .wal file if there "
        "is one) and run again.")
    assert sorted(p.name for p in folder.iterdir()) == ["gong.duckdb"]
    assert (folder / "gong.duckdb").read_bytes() == b"old"


def test_postgres_url_gets_an_empty_password_only_when_it_has_none() -> None:
    assert with_empty_password("postgresql://postgres@127.0.0.1:5432/test") == "postgresql://postgres:@127.0.0.1:5432/test"
    assert with_empty_password("postgresql://u:pw@h/db") == "postgresql://u:pw@h/db"
    assert with_empty_password("postgresql://h/db") == "postgresql://h/db"
    assert with_empty_password("postgresql://u:p@ss@h/db") == "postgresql://u:p@ss@h/db"


def test_file_formats_per_destination() -> None:
    import dlt

    duck, pg = dlt.destinations.duckdb(credentials=":pipeline:"), dlt.destinations.postgres()
    assert (file_format(duck, arrow=False), file_format(duck, arrow=True)) == ("parquet", "parquet")
    # Postgres takes Parquet only through ADBC: Arrow tables go as CSV (native, no warning), rows as INSERTs.
    assert (file_format(pg, arrow=False), file_format(pg, arrow=True)) == ("preferred", "csv")


# ------------------------------------------------------------------------------------- bad input


@pytest.fixture
def unreachable_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A run whose Gong cannot be reached: a check that lets a bad value through would show as a connection
    error, not as the sentence expected; and nothing may be written."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__", "GONG_SYNC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", "k")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "s")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


BAD_INPUTS = [
    (["--resources", "calls,deals"], {}, "Unknown resource 'deals': choose from workspaces, users,"),
    (["--start", "2026-13-01"], {}, "The start date (--start) '2026-13-01' is not a date: use YYYY-MM-DD or an "
                                    "ISO-8601 date-time."),
    (["--start", "2026-11-02", "--end", "2026-11-01"], {},
     "The start 2026-11-02 is not before the end 2026-11-01: give --start earlier than --end."),
    (["--window-days", "-1"], {}, "--window-days -1 is negative: give 0 or more (see gong-sync --help)."),
    (["--window-days", "x"], {}, "Argument --window-days: invalid float value: 'x': see gong-sync --help."),
    (["--chunk-pages", "-2"], {}, "--chunk-pages -2 is negative: give 0 or more (see gong-sync --help)."),
    ([], {"SOURCES__GONG__RATE_LIMIT": "-1"},
     "SOURCES__GONG__RATE_LIMIT -1.0 is not a number of 0 or more: fix it in .dlt/config.toml or the environment."),
    ([], {"SOURCES__GONG__RATE_LIMIT": "fast"},
     "The setting rate_limit 'fast' is not a valid float: fix it in .dlt/config.toml or the environment."),
    ([], {"SOURCES__GONG__LOOKBACK_DAYS": "-2"}, "lookback_days -2 is negative: give 0 or more days."),
    ([], {"SOURCES__GONG__COMPANY_TIMEZONE": "Mars/Base"},
     "company_timezone 'Mars/Base' is not a time zone name like America/New_York."),
    ([], {"SOURCES__GONG__BASE_URL": "ftp://gong"},
     "SOURCES__GONG__BASE_URL must be an http(s) URL like https://us-12345.api.gong.io, not 'ftp://gong'."),
    (["--destination", "warehouse9"], {}, "Unknown destination 'warehouse9': choose duckdb, postgres, motherduck,"),
    (["--destination", "postgres"], {"DESTINATION__POSTGRES__CREDENTIALS": ""},
     "The postgres destination's credentials cannot be read: set DESTINATION__POSTGRES__CREDENTIALS to a connection "
     "URL, e.g. postgresql://user:password@host:5432/database (see README)."),
    (["--destination", "postgres"], {"DESTINATION__POSTGRES__CREDENTIALS": "not-a-url"},
     "The postgres destination's credentials cannot be read: set DESTINATION__POSTGRES__CREDENTIALS"),
    ([], {"DESTINATION__DUCKDB__CREDENTIALS": "gong.duckdb"},
     "The DuckDB file {work}/gong.duckdb is named like the dataset 'gong', which DuckDB cannot tell apart: choose "
     "another file (DESTINATION__DUCKDB__CREDENTIALS) or another --dataset."),
]


@pytest.mark.parametrize("args, env, sentence", BAD_INPUTS,
                         ids=[" ".join(a) or next(iter(e)) for a, e, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_sentence_before_anything_runs(
        args: list[str], env: dict[str, str], sentence: str, unreachable_env: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["-q", *args, "--pipelines-dir", str(tmp_path / "dlt")])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert (code, len(lines)) == (2, 1), err
    assert lines[0].startswith("gong-sync: " + sentence.replace("{work}", str(unreachable_env)))
    assert list(unreachable_env.iterdir()) == [], "nothing is written"
    assert out == ""


def test_missing_destination_credentials_name_the_variable(unreachable_env: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "--destination", "postgres", "--pipelines-dir", str(tmp_path / "dlt")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == ("gong-sync: The postgres destination has no credentials: set DESTINATION__POSTGRES__CREDENTIALS "
                   "(in the environment or .dlt/secrets.toml, see README).")


@pytest.mark.parametrize("text, sentence", [
    ("[sources.gong]\nlookback_days = 3\n\n[sources.gong]\nrate_limit = 2\n",
     "line 4: the section [sources.gong] is declared twice: merge the two sections into one and run again."),
    ("[sources.gong]\nlookback_days = 3\nlookback_days = 4\n",
     "line 3: the key 'lookback_days' in [sources.gong] is declared twice: keep one of them and run again."),
    ("[sources.gong\nlookback_days = 3\n",
     "line 1, column 13: this is not valid TOML (Unexpected character: '\\n'): fix that line and run again."),
])
def test_a_broken_config_toml_is_one_sentence_with_its_line(text: str, sentence: str, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    path = folder / ".dlt" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert toml_problem(path) == f"{path} {sentence}"
    # dlt reads its TOML files once per process: a process of its own, as a user's run is.
    proc = run_gong_sync(folder, newcomer_env(tmp_path / "home", "http://127.0.0.1:9"))
    assert (proc.returncode, proc.stderr) == (2, f"gong-sync: .dlt/config.toml {sentence}\n")
    assert sorted(p.name for p in folder.iterdir()) == [".dlt"]


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o600, False)])
def test_a_secrets_file_others_can_read_gets_a_warning(mode: int, warned: bool, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    secrets = folder / ".dlt" / "secrets.toml"
    secrets.parent.mkdir(parents=True)
    secrets.write_text('[sources.gong]\naccess_key_secret = "do-not-show-me"\n')
    secrets.chmod(mode)
    proc = run_gong_sync(folder, newcomer_env(tmp_path / "home", "http://127.0.0.1:9"), "--resources", "nope")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("gong-sync: Unknown resource 'nope'")
    expected = (["gong-sync: warning: .dlt/secrets.toml can be read by other users of this machine (mode 0644): it "
                 "holds your Gong credentials; run `chmod 600 .dlt/secrets.toml`."] if warned else [])
    assert lines[:-1] == expected
    assert "do-not-show-me" not in proc.stderr + proc.stdout


# ---------------------------------------------------------------------------- Gong out of reach


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


def test_an_unreachable_gong_is_said_at_the_first_failure_with_what_is_retried() -> None:
    waits: list[float] = []
    recorder = Recorder()
    logger = logging.getLogger("gong_sync.client")
    logger.addHandler(recorder)
    seen_at_first_wait: list[list[tuple[int, str]]] = []

    def sleep(seconds: float) -> None:
        seen_at_first_wait.append(list(recorder.lines))
        waits.append(seconds)

    try:
        client = GongClient("http://127.0.0.1:9", "k", "s", settings=ClientSettings(rate_limit=None, max_retries=3),
                            sleep=sleep)
        with pytest.raises(GongConnectionError) as error:
            client.request("GET", "/v2/users")
    finally:
        logger.removeHandler(recorder)
    assert waits == [1.0, 2.0, 4.0]
    # Before the first wait, a warning says what is unreachable, why, what is retried and for how long.
    assert seen_at_first_wait[0] == [(logging.WARNING, (
        "Gong at http://127.0.0.1:9 cannot be reached (Connection refused): retrying /v2/users 3 more times over "
        "about 7 s (check SOURCES__GONG__BASE_URL and the network)"))]
    assert str(error.value) == ("Gong at http://127.0.0.1:9 could not be reached (Connection refused) after 4 "
                                "attempts: check SOURCES__GONG__BASE_URL and the network.")


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain web server (not Gong): an HTML page for /, an HTML 404 page for everything else."""
    page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works</h1></body></html>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path.startswith("/v2/workspaces") else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_web_page_instead_of_gongs_json_is_one_sentence_without_the_page(web_server: str) -> None:
    client = GongClient(web_server, "k", "s", settings=ClientSettings(rate_limit=None))
    with pytest.raises(GongApiError) as not_found:
        client.request("GET", "/v2/users")
    assert str(not_found.value) == (
        f"The answer to GET /v2/users is HTTP 404 with a web page, not Gong's JSON: is SOURCES__GONG__BASE_URL "
        f"({web_server}) your company's Gong API address, e.g. https://us-12345.api.gong.io?")
    with pytest.raises(GongApiError) as ok_page:
        client.request("GET", "/v2/workspaces")
    assert str(ok_page.value) == (
        f"The answer to /v2/workspaces is a web page, not Gong's JSON: is SOURCES__GONG__BASE_URL ({web_server}) "
        "your company's Gong API address, e.g. https://us-12345.api.gong.io?")
    assert "<" not in str(not_found.value) and "<" not in str(ok_page.value)


def test_the_simulators_help_documents_every_flag_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.__main__ import build_parser

    monkeypatch.setenv("COLUMNS", "500")  # one line per option: no value cut by the wrapping
    parser = build_parser()
    lines = parser.format_help().splitlines()
    for action in parser._actions:
        if action.dest == "help":
            continue
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(action.option_strings[0] + " "))
        # argparse puts the help of a long option on the next line
        line = " ".join(lines[at].split()) if action.help in lines[at] else " ".join(" ".join(lines[at:at + 2]).split())
        assert action.help and action.help in line, action.option_strings[0]
        assert line.endswith(f"(default: {action.default})" if action.default is not None
                             else "(default: the real clock)"), line
