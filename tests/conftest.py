"""Shared fixtures: the in-process Gong simulator, warehouses, and a few recorded exchanges.

Every test that talks to Gong runs the real client (its threads included) against a live, seeded
simulator in this process. A handful of client-quirk tests (`@pytest.mark.cassette`) replay a small vcrpy
cassette from tests/cassettes instead, pinning an exchange as recorded; `make record-cassettes`
(GONG_SYNC_RECORD=1) records those again from the simulator. Cassettes store `http://gong.sim.test`
instead of the simulator's random port and never an Authorization header.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import dlt
import pytest
import requests
import vcr

from simulator import GongSimulator, SimConfig
from sources.gong.client import ClientSettings, GongClient

RECORD = os.environ.get("GONG_SYNC_RECORD") == "1"
# No request but Gong's may appear in a recording (dlt's telemetry is also off in .dlt/config.toml).
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
CASSETTES = Path(__file__).parent / "cassettes"
FAKE_BASE_URL = "http://gong.sim.test"
SIM_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ACCESS_KEY = "sim-access-key"
ACCESS_KEY_SECRET = "sim-access-key-secret"


class RecordingSession(requests.Session):
    """A requests session that remembers every request the client sent (method, path, query, body)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.sent: list[dict[str, Any]] = []
        # The requests that got an answer (a connection error leaves one in `sent` only).
        self.answered: list[dict[str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._lock:  # one request at a time: vcrpy un-patches HTTP globally while it records one
            return self._request(method, url, *args, **kwargs)

    def _request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        path = "/" + url.split("://", 1)[1].split("/", 1)[1] if "://" in url else url
        sent = {"method": method, "path": path, "params": kwargs.get("params"), "body": kwargs.get("json")}
        self.sent.append(sent)
        response = super().request(method, url, *args, **kwargs)
        self.answered.append(sent)
        return response

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """Returns the JSON bodies sent to `path`, in order."""
        return [r["body"] for r in self.sent if r["path"] == path]

    def count(self, path: str) -> int:
        """Returns how many requests went to `path`."""
        return sum(1 for r in self.sent if r["path"] == path)


@dataclass
class Sleeps:
    """Stands in for time.sleep: remembers each wait; against a live Gong, sleeps for real the short ones
    (a Retry-After of a second), which the server's own clock counts."""

    live: bool = True
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.live and seconds <= 2:
            time.sleep(seconds)


@dataclass
class GongFixture:
    """One test's Gong: the simulator (None when a cassette replays) and a way to make clients for it."""

    base_url: str
    sim: Optional[GongSimulator]
    session: RecordingSession
    sleeps: Sleeps

    def client(self, access_key: str = ACCESS_KEY, secret: str = ACCESS_KEY_SECRET,
               **settings: Any) -> GongClient:
        """Returns a GongClient on this test's Gong; the rate limit is off unless given."""
        settings.setdefault("rate_limit", None)
        return GongClient(self.base_url, access_key, secret, settings=ClientSettings(**settings),
                          session=self.session, sleep=self.sleeps)

    def edit_call(self, call_id: str, **parts: Any) -> None:
        """Edits a call in the simulator."""
        assert self.sim is not None, "a replayed cassette cannot change"
        self.sim.edit_call(call_id, **parts)


def sim_config(**overrides: Any) -> SimConfig:
    """The small, frozen-clock dataset every cassette is recorded from."""
    base: dict[str, Any] = dict(seed=7, users=6, calls_per_day=6, days=6, sentences_per_call=12,
                                rate_limit=None, daily_quota=None, now=SIM_NOW,
                                access_key=ACCESS_KEY, access_key_secret=ACCESS_KEY_SECRET)
    base.update(overrides)
    return SimConfig(**base)


@pytest.fixture
def gong(request: pytest.FixtureRequest) -> Iterator[GongFixture]:
    """This test's Gong: a live simulator, or, for a test marked `cassette`, its recorded exchange (which
    GONG_SYNC_RECORD=1 records again from a live simulator).

    Simulator settings come from `@pytest.mark.sim(**SimConfig fields)` on the test.
    """
    marker = request.node.get_closest_marker("sim")
    config = sim_config(**(marker.kwargs if marker else {}))
    replay = request.node.get_closest_marker("cassette") is not None and not RECORD
    if request.node.get_closest_marker("cassette") is None or RECORD:
        sim: Optional[GongSimulator] = GongSimulator(config)
        base_url = sim.start()
    else:
        sim, base_url = None, FAKE_BASE_URL
    if request.node.get_closest_marker("cassette") is None:
        fixture = GongFixture(base_url, sim, RecordingSession(), Sleeps())
        try:
            yield fixture
        finally:
            fixture.session.close()
            sim.stop()
        return

    def scrub_request(req: Any) -> Any:
        req.uri = req.uri.replace(base_url, FAKE_BASE_URL)
        return req

    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORD else "none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
        filter_headers=["authorization"],
        before_record_request=scrub_request,
        decode_compressed_response=True,
    )
    name = request.node.name.replace("[", "-").replace("]", "")
    try:
        with recorder.use_cassette(f"{name}.yaml"):
            fixture = GongFixture(base_url, sim, RecordingSession(), Sleeps(live=not replay))
            yield fixture
            # Pooled connections made under the cassette must not outlive it.
            fixture.session.close()
    finally:
        if sim is not None:
            sim.stop()


@pytest.fixture(autouse=True)
def gong_sync_logs_reach_caplog() -> None:
    """Each test starts with the project's loggers propagating to the root, where caplog listens: a test that
    ran the CLI in process left `gong_sync` with the CLI's own handler and propagation off
    (`configure_logging`), and a later test's caplog would see none of its records (its assertions that a
    value is absent from the logs would hold for nothing)."""
    root = logging.getLogger("gong_sync")
    root.handlers[:] = []
    root.propagate = True
    root.setLevel(logging.NOTSET)


@pytest.fixture(autouse=True)
def no_http_patch_outlives_its_test() -> Iterator[None]:
    """Puts the real HTTP connection classes back if a cassette's patch survived its test.

    vcrpy swaps http.client's and urllib3's connection classes while a cassette is in use; we have seen
    (rarely, in a fresh clone) one survive the cassette's exit, after which every later test's HTTP went to
    that old cassette. The tests that talk to a live simulator must never see a cassette.
    """
    yield
    import http.client

    import vcr.patch

    if http.client.HTTPConnection is not vcr.patch._HTTPConnection:
        for patcher in vcr.patch.reset_patchers():
            patcher.start()  # never stopped: the real classes stay in place


def _postgres_objects() -> Optional[set[tuple[str, str]]]:
    """Every schema and table of the Postgres test database (None when it is unreachable)."""
    import psycopg2

    try:
        with psycopg2.connect(postgres_url(), connect_timeout=3) as con, con.cursor() as cur:
            cur.execute("SELECT schema_name, '' FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg\\_%' "
                        "UNION SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
            objects = set(cur.fetchall())
        con.close()
        return objects
    except psycopg2.OperationalError:
        return None


@pytest.fixture(scope="session", autouse=True)
def postgres_is_left_as_found() -> Iterator[None]:
    """The suite leaves no schema or table behind in Postgres: every test drops what it created."""
    before = _postgres_objects()
    yield
    after = _postgres_objects()
    if before is not None and after is not None:
        left = sorted(f"{schema}.{table}" if table else f"schema {schema}" for schema, table in after - before)
        assert not left, f"the tests left these behind in Postgres: {', '.join(left)}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**fields): SimConfig fields for the test's simulator")
    config.addinivalue_line("markers", "cassette: replays the test's recorded exchange (a client quirk pinned)")
    config.addinivalue_line("markers", "postgres: needs the Postgres server (fails in CI when unreachable)")


def postgres_url() -> str:
    """The Postgres test database URL (GONG_SYNC_TEST_POSTGRES overrides).

    dlt requires a password in the URL; the trust-auth test server ignores it.
    """
    return os.environ.get("GONG_SYNC_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/test")


def require_postgres() -> str:
    """Returns the Postgres URL, skipping on a laptop without it, failing in CI (CI=true)."""
    import psycopg2

    url = postgres_url()
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        reason = f"Postgres at {url} is unreachable ({str(exc).strip().splitlines()[0]})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason + "; CI must run the Postgres tests.")
        pytest.skip(reason + "; start Postgres or set GONG_SYNC_TEST_POSTGRES to run these tests.")
    return url


def mariadb_url() -> str:
    """The MariaDB/MySQL test database URL (GONG_SYNC_TEST_MARIADB overrides)."""
    return os.environ.get("GONG_SYNC_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


def require_mariadb() -> str:
    """Returns the MariaDB URL, skipping on a laptop without it, failing in CI (CI=true)."""
    import sqlalchemy as sa

    url = mariadb_url()
    try:
        sa.create_engine(url, connect_args={"connect_timeout": 3}).connect().close()
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        reason = f"MariaDB at {url} is unreachable ({first[0] if first else type(exc).__name__})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason + "; CI must run the MariaDB tests.")
        pytest.skip(reason + "; start MariaDB or set GONG_SYNC_TEST_MARIADB to run these tests.")
    return url


class Warehouse:
    """A destination for one test (DuckDB file or a fresh Postgres schema) and SQL against it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.dataset = "gong_" + uuid.uuid4().hex[:10]
        if kind == "duckdb":
            self.destination: Any = dlt.destinations.duckdb(credentials=str(tmp_path / "warehouse.duckdb"))
        else:
            self.url = require_postgres()
            self.destination = dlt.destinations.postgres(credentials=self.url)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        sql = sql.replace("{ds}", self.dataset)
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(str(self.tmp_path / "warehouse.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchall()
        import psycopg2

        with psycopg2.connect(self.url) as con, con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    @classmethod
    def duckdb_in(cls, tmp_path: Path, name: str) -> Warehouse:
        """A DuckDB warehouse of its own in the folder `name` (for tests that compare several)."""
        (tmp_path / name).mkdir()
        return cls("duckdb", tmp_path / name)

    def count(self, table: str, where: str = "") -> int:
        return self.query(f"SELECT count(*) FROM {{ds}}.{table} {where}")[0][0]

    def table_rows(self, suffix: str = "") -> dict[str, int]:
        """Rows of every data table of the dataset (`suffix` "_staging": of dlt's staging dataset)."""
        names = [t for (t,) in self.query(f"SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                          f"'{{ds}}{suffix}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'")]
        return {name: self.query(f"SELECT count(*) FROM {{ds}}{suffix}.{name}")[0][0] for name in names}

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg2

            with psycopg2.connect(self.url) as con, con.cursor() as cur:
                cur.execute(f"DROP SCHEMA IF EXISTS {self.dataset} CASCADE; "
                            f"DROP SCHEMA IF EXISTS {self.dataset}_staging CASCADE")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(request.param, tmp_path)
    yield wh
    wh.drop()


@pytest.fixture
def duck(tmp_path: Path) -> Warehouse:
    return Warehouse("duckdb", tmp_path)


def synced(sim: GongSimulator, wh: Warehouse, rate_limit: Optional[float], days: int = 3,
           **settings: Any) -> dict[str, int]:
    """Syncs users, calls and transcripts of the last `days` of `sim` into `wh` (pipeline "limits": a second
    call resumes it); returns the sentences per call in the warehouse."""
    client = GongClient(sim.base_url, ACCESS_KEY, ACCESS_KEY_SECRET,
                        settings=ClientSettings(**{"rate_limit": rate_limit, "max_retries": 8, **settings}))
    from pipelines.gong_pipeline import run_sync

    try:
        run_sync(["users", "calls", "transcripts"], start=(SIM_NOW - timedelta(days=days)).isoformat(),
                 end=SIM_NOW.isoformat(), destination=wh.destination, dataset=wh.dataset, pipeline_name="limits",
                 pipelines_dir=str(wh.tmp_path / "dlt"), source_options={"client": client})
    finally:
        client.close()
    return dict(wh.query("SELECT c.id, count(t.sentence_index) FROM {ds}.calls c "
                         "LEFT JOIN {ds}.transcripts t ON t.call_id = c.id GROUP BY c.id"))
