"""The `gong-sync` command line: user mistakes end in one sentence and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.conftest import ACCESS_KEY, GongFixture

GONG_ENV = ("SOURCES__GONG__BASE_URL", "SOURCES__GONG__ACCESS_KEY", "SOURCES__GONG__ACCESS_KEY_SECRET",
            "SOURCES__GONG__BEARER_TOKEN", "DESTINATION__POSTGRES__CREDENTIALS", "DESTINATION__DUCKDB__CREDENTIALS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in GONG_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/ here: only the environment configures the run


def run_main(args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, str, str]:
    code = main([*args, "--pipelines-dir", str(tmp_path / "dlt")])
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_lists_the_options() -> None:
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True,
                          text=True, check=True)
    for option in ("--resources", "--start", "--end", "--full-refresh", "--destination"):
        assert option in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize("preset, expected", [(None, [(-8, 2)]), ("4", [])])
def test_the_cli_caps_mallocs_arenas_unless_the_environment_does(preset: str | None, expected: list[tuple[int, int]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    import pipelines.gong_pipeline as gp

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, option: ctypes.c_int, value: ctypes.c_int) -> int:
            calls.append((option.value, value.value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    if preset is None:
        monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    else:
        monkeypatch.setenv("MALLOC_ARENA_MAX", preset)
    monkeypatch.setattr(gp, "run_sync", lambda resources, **kwargs: gp.SyncResult(dataset="gong", destination="duckdb"))
    assert main(["--quiet", "--resources", "calls"]) == 0
    assert calls == expected


def test_unknown_resource_names_the_valid_ones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from sources.gong.catalog import resource_names

    code, _, err = run_main(["--resources", "calls,deals"], capsys, tmp_path)
    line = one_sentence(err)
    assert code == 2 and "'deals'" in line
    assert ", ".join(resource_names()) in line and "coaching" in line and "audit_logs" in line


def test_bad_date_is_one_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://gong.sim.test")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", "k")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "s")
    code, _, err = run_main(["--start", "2026-13-01"], capsys, tmp_path)
    assert code == 2 and "'2026-13-01' is not a date" in one_sentence(err)
    code, _, err = run_main(["--start", "2026-11-02", "--end", "2026-11-01"], capsys, tmp_path)
    assert code == 2 and "is not before the end" in one_sentence(err)


def test_missing_base_url_and_credentials_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_main([], capsys, tmp_path)
    assert code == 1 and "SOURCES__GONG__BASE_URL" in one_sentence(err)
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://gong.sim.test")
    code, _, err = run_main([], capsys, tmp_path)
    assert code == 1 and "SOURCES__GONG__ACCESS_KEY" in one_sentence(err)


def test_unreachable_database_is_one_sentence_without_the_password(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", "http://gong.sim.test")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", "k")
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "s")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgresql://postgres:hunter2pw@127.0.0.1:1/test")
    code, _, err = run_main(["--destination", "postgres"], capsys, tmp_path)
    line = one_sentence(err)
    assert code == 1 and "Could not connect to the postgres destination" in line
    assert "DESTINATION__POSTGRES__CREDENTIALS" in line and "hunter2pw" not in line


def test_bad_credentials_stop_after_one_request(gong: GongFixture, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__GONG__BASE_URL", gong.base_url)
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("SOURCES__GONG__ACCESS_KEY_SECRET", "not-the-secret")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "w.duckdb"))
    # Fixed dates: the calls are read ahead from the first request on, with the window in the body.
    code, _, err = run_main(["--resources", "users,calls", "--start", "2026-10-25", "--end", "2026-11-01"],
                            capsys, tmp_path)
    line = one_sentence(err)
    assert code == 1 and "HTTP 401" in line and "not-the-secret" not in line
    assert gong.sim is not None and gong.sim.stats()["totalRequests"] == 1
