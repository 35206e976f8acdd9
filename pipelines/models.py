"""`make models`: builds the dbt project (transform/) on the warehouse a sync loaded: staging views and marts.

`build_models(destination=..., dataset=...)` resolves the warehouse exactly as the sync does (the destination
name or a dlt destination, DESTINATION__*__CREDENTIALS from the environment or .dlt/secrets.toml, the default
DuckDB file), checks that a sync has loaded the dataset, runs `dbt build` in this process through dbt's
Python entry point (`dbtRunner`), and returns what it built (`ModelsResult`). Every failure is a `UserError`
with one sentence: an unsupported or unreachable warehouse, a dataset no sync has loaded, a model or a test
that failed. `python -m pipelines.models` is the command line; `--docs` writes docs/models.md from the
project's manifest (`make schema` does too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Optional

from pipelines.errors import UsageError, UserError, scrub

ROOT = Path(__file__).resolve().parents[1]
TRANSFORM_DIR = ROOT / "transform"
DEFAULT_PIPELINE_NAME = "gong"
DEFAULT_DATASET = "gong"
# The warehouses transform/profiles.yml has an output for (and whose dbt adapter is pinned).
SUPPORTED = ("duckdb", "postgres")
MARTS = ("fct_calls", "fct_call_speakers", "fct_tracker_mentions", "fct_scorecard_answers", "dim_users",
         "rep_activity_weekly", "transcript_documents")
# dbt reads the Postgres password from this variable (profiles.yml); dbt keeps DBT_ENV_SECRET_* out of its logs.
PASSWORD_VARIABLE = "DBT_ENV_SECRET_GONG_POSTGRES_PASSWORD"
POSTGRES_CONNECT_TIMEOUT_S = 5


@dataclass
class ModelsResult:
    """What one `dbt build` did: the models built and the tests passed, the rows of every mart, where they are.

    `warnings` names the tests that found rows at severity warn (relationships across Gong's endpoints,
    Gong's enums): the build succeeded, the data deserves a look.
    """

    destination: str
    dataset: str
    marts_schema: str
    models: list[str] = field(default_factory=list)
    tests_passed: int = 0
    warnings: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass
class _Warehouse:
    """A resolved warehouse: its dbt target, the vars and the secret the profile reads, where it is (for a
    sentence, without secrets)."""

    kind: str
    dataset: str
    where: str
    dbt_vars: dict[str, Any]
    password: Optional[str] = None
    connect_args: dict[str, Any] = field(default_factory=dict)


def build_models(destination: Any = "duckdb", dataset: str = DEFAULT_DATASET, full_refresh: bool = False,
                 select: Optional[Sequence[str]] = None, pipeline_name: str = DEFAULT_PIPELINE_NAME,
                 progress: bool = False, target_path: Optional[str] = None,
                 log_path: Optional[str] = None) -> ModelsResult:
    """Builds (and tests) the models on the warehouse a sync loaded; returns what was built, or raises UserError.

    `destination` is what `run_sync` takes: a destination name ("duckdb", "postgres") resolved as the sync does,
    or a dlt destination. `dataset` is the synced dataset; the models go to `<dataset>_stg` and
    `<dataset>_marts`. Incremental marts rebuild only the calls loaded since their last build, unless
    `full_refresh`. `select` narrows the build with dbt selectors (e.g. ["fct_calls+"]). `progress` prints dbt's
    lines on stdout (else nothing is printed). dbt's artifacts and log go to transform/target and transform/logs
    unless `target_path` / `log_path` (or dbt's own DBT_TARGET_PATH / DBT_LOG_PATH) say otherwise.
    """
    began = time.monotonic()
    warehouse = _resolve(destination, dataset, pipeline_name)
    tables = _existing_tables(warehouse)
    if "calls" not in tables:
        raise UserError(f"The dataset {dataset!r} in {warehouse.where} has no calls table: no sync has loaded it "
                        "yet; run `make sync` (or gong-sync) first, then `make models`.")
    target_dir = Path(target_path or os.environ.get("DBT_TARGET_PATH") or TRANSFORM_DIR / "target")
    log_dir = Path(log_path or os.environ.get("DBT_LOG_PATH") or TRANSFORM_DIR / "logs")
    args = ["build", *(_common_args(warehouse, target_dir, log_dir, progress))]
    if full_refresh:
        args.append("--full-refresh")
    for selector in select or ():
        args += ["--select", selector]
    outcome = run_dbt(args, warehouse)
    result = ModelsResult(destination=warehouse.kind, dataset=dataset, marts_schema=f"{dataset}_marts")
    _read_outcome(outcome, result, log_dir)
    result.row_counts = _row_counts(warehouse, [m for m in MARTS if m in result.models])
    result.elapsed_s = time.monotonic() - began
    return result


def _resolve(destination: Any, dataset: str, pipeline_name: str) -> _Warehouse:
    """The warehouse `destination` names, resolved by the sync's own rules (pipelines/destinations.py)."""
    import dlt

    from pipelines.destinations import check_destination, destination_type, make_destination

    resolved = make_destination(destination, dataset, pipeline_name)
    kind = destination_type(resolved)
    if kind not in SUPPORTED:
        raise UsageError(f"The models build on duckdb or postgres, not on {kind}: add an output for it to "
                         "transform/profiles.yml (and install its dbt adapter), or sync into duckdb or postgres.")
    with tempfile.TemporaryDirectory() as tmp:
        # A throwaway pipeline: it only resolves the destination's configuration (no connection, no state).
        pipeline = dlt.pipeline(pipeline_name=f"{pipeline_name}_models", destination=resolved, dataset_name=dataset,
                                pipelines_dir=tmp)
        check_destination(pipeline)
        credentials = pipeline.destination_client().config.credentials
    if kind == "duckdb":
        path = str(credentials.database)
        return _Warehouse("duckdb", dataset, f"the DuckDB file {path}", {"duckdb_path": path, "dataset": dataset},
                          connect_args={"database": path})
    query = dict(getattr(credentials, "query", None) or {})
    dbt_vars = {"dataset": dataset, "postgres_host": credentials.host, "postgres_port": int(credentials.port or 5432),
                "postgres_user": credentials.username, "postgres_database": credentials.database}
    if query.get("sslmode"):
        dbt_vars["postgres_sslmode"] = query["sslmode"]
    where = f"the postgres database {credentials.database} at {credentials.host}:{credentials.port or 5432}"
    connect = {"host": credentials.host, "port": int(credentials.port or 5432), "user": credentials.username,
               "password": credentials.password or "", "dbname": credentials.database,
               "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, **({"sslmode": query["sslmode"]} if query.get("sslmode")
                                                                 else {})}
    return _Warehouse("postgres", dataset, where, dbt_vars, password=credentials.password or "", connect_args=connect)


def _existing_tables(warehouse: _Warehouse) -> set[str]:
    """The tables of the dataset; raises UserError when the warehouse cannot be opened."""
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = "
    if warehouse.kind == "duckdb":
        import duckdb

        path = warehouse.connect_args["database"]
        if not Path(path).exists():
            raise UserError(f"There is no DuckDB warehouse at {path}: run `make sync` first, or point "
                            "DESTINATION__DUCKDB__CREDENTIALS at the warehouse file the sync wrote.")
        try:
            with duckdb.connect(path, read_only=True) as con:
                return {name for (name,) in con.execute(sql + "?", [warehouse.dataset]).fetchall()}
        except duckdb.IOException as exc:
            raise UserError(f"The DuckDB warehouse {path} cannot be opened ({str(exc).splitlines()[0][:200]}): if a "
                            "sync is still writing it, run `make models` once it is done.") from None
    import psycopg2

    try:
        with contextlib.closing(psycopg2.connect(**warehouse.connect_args)) as con, con.cursor() as cur:
            cur.execute(sql + "%s", (warehouse.dataset,))
            return {name for (name,) in cur.fetchall()}
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(scrub(f"Could not connect to {warehouse.where} ({first}): check that it is running and "
                              "DESTINATION__POSTGRES__CREDENTIALS.")) from None


def _common_args(warehouse: _Warehouse, target_dir: Path, log_dir: Path, progress: bool) -> list[str]:
    args = ["--project-dir", str(TRANSFORM_DIR), "--profiles-dir", str(TRANSFORM_DIR), "--target", warehouse.kind,
            "--vars", json.dumps(warehouse.dbt_vars), "--target-path", str(target_dir), "--log-path", str(log_dir)]
    # dbt's own log file keeps every step and statement (no secret: the password is a DBT_ENV_SECRET_ variable).
    args += ["--log-level-file", "debug"]
    if not progress:
        args += ["--log-level", "none"]
    if not sys.stdout.isatty():
        args.append("--no-use-colors")
    return args


@contextlib.contextmanager
def _password(warehouse: _Warehouse) -> Iterator[None]:
    """Hands the Postgres password to dbt's profile for one invocation (dbt reads it from the environment only)."""
    if warehouse.password is None:
        yield
        return
    before = os.environ.get(PASSWORD_VARIABLE)
    os.environ[PASSWORD_VARIABLE] = warehouse.password
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PASSWORD_VARIABLE, None)
        else:
            os.environ[PASSWORD_VARIABLE] = before


def run_dbt(args: list[str], warehouse: Optional[_Warehouse] = None) -> Any:
    """Runs dbt with `args` in this process; returns dbt's result (dbtRunnerResult)."""
    try:
        from dbt.cli.main import dbtRunner
    except ImportError:
        raise UserError("dbt is not installed: install the pinned dependencies (make install, or .venv/bin/pip "
                        "install -r requirements.lock) and run again.") from None
    try:
        with _password(warehouse) if warehouse else contextlib.nullcontext():
            return dbtRunner().invoke(args)
    finally:
        _release_duckdb()


def _release_duckdb() -> None:
    """Closes the DuckDB database dbt-duckdb keeps open in the process after a run, so that the sync, a query or
    the next build can open the file (DuckDB refuses a second connection with another configuration)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import cleanup_connections
    except ImportError:
        return
    cleanup_connections()
    try:
        DuckDBConnectionManager.env().close()
    except Exception:  # no environment was created: nothing is open
        pass
    DuckDBConnectionManager.close_all_connections()


def _read_outcome(outcome: Any, result: ModelsResult, log_dir: Path) -> None:
    """Fills `result` from dbt's result, or raises UserError naming what failed."""
    log = log_dir / "dbt.log"
    if outcome.exception is not None and outcome.result is None:
        first = (str(outcome.exception).strip().splitlines() or [type(outcome.exception).__name__])[0][:300]
        raise UserError(scrub(f"dbt could not build the models ({first}); the details are in {log}."))
    failed: list[str] = []
    first_message = ""
    for node_result in outcome.result.results:
        node = node_result.node
        status = str(getattr(node_result.status, "value", node_result.status))
        if node.resource_type == "model" and status == "success":
            result.models.append(node.name)
        elif node.resource_type == "test" and status == "pass":
            result.tests_passed += 1
        elif node.resource_type == "test" and status == "warn":
            result.warnings.append(f"{node.name} ({node_result.failures} rows)")
        elif status not in ("success", "pass", "skipped", "no-op"):
            failed.append(node.name if node.resource_type != "test" else
                          f"{node.name} ({node_result.failures} rows)" if node_result.failures else node.name)
            first_message = first_message or _reason(str(node_result.message or ""))
    if failed or not outcome.success:
        shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        reason = f": {first_message}" if first_message else ""
        raise UserError(scrub(f"dbt build failed on {shown or 'the project'}{reason}; the details are in {log}."))


def _reason(message: str) -> str:
    """The line of a dbt error message that says why (dbt's first line only names the node)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    said = [line for line in lines if not (" Error in " in line and line.endswith(")")) and
            not line.startswith("compiled code at")]
    return (said or lines or [""])[0][:200]


def _row_counts(warehouse: _Warehouse, models: list[str]) -> dict[str, int]:
    """Rows of each of `models` in the marts schema."""
    if not models:
        return {}
    schema = f"{warehouse.dataset}_marts"
    queries = [f'SELECT count(*) FROM "{schema}"."{m}"' for m in models]
    if warehouse.kind == "duckdb":
        import duckdb

        with duckdb.connect(warehouse.connect_args["database"], read_only=True) as con:
            return {m: con.execute(q).fetchone()[0] for m, q in zip(models, queries, strict=True)}
    import psycopg2

    counts: dict[str, int] = {}
    with contextlib.closing(psycopg2.connect(**warehouse.connect_args)) as con, con.cursor() as cur:
        for m, q in zip(models, queries, strict=True):
            cur.execute(q)
            counts[m] = cur.fetchone()[0]
    return counts


def mart_questions(dataset: str = DEFAULT_DATASET, weeks: Optional[tuple[date, date]] = None
                   ) -> list[tuple[str, str]]:
    """The demo's questions answered from the marts of `dataset`: (title, SQL) pairs whose SQL runs on DuckDB
    and Postgres alike. `weeks` = (first Monday, end Monday) keeps the weekly answer to the whole weeks of
    [first, end); else every week with a call."""
    marts = f"{dataset}_marts"
    within = (f"WHERE week_start >= CAST('{weeks[0]}' AS date) AND week_start < CAST('{weeks[1]}' AS date) "
              if weeks else "")
    return [
        ("Calls per rep per week (Monday to Sunday, UTC" + (", whole weeks only)" if weeks else ")"),
         f"SELECT rep_name AS rep, week_start AS week, calls, round(cast(call_minutes AS numeric)) AS minutes "
         f"FROM {marts}.rep_activity_weekly {within}ORDER BY rep, week"),
        ("Talk ratio per rep (Gong's, mean over the calls the rep led)",
         f"SELECT u.full_name AS rep, count(*) AS calls, round(cast(100 * avg(c.talk_ratio) AS numeric), 1) "
         f"AS talk_ratio_pct FROM {marts}.fct_calls AS c JOIN {marts}.dim_users AS u ON u.user_id = c.primary_user_id "
         f"GROUP BY u.full_name ORDER BY talk_ratio_pct DESC, rep"),
        ("Trackers by mentions, by who said them",
         f"SELECT tracker_name AS tracker, sum(mentions) AS mentions, "
         f"sum(CASE WHEN speaker_side = 'Internal' THEN mentions ELSE 0 END) AS by_reps, "
         f"sum(CASE WHEN speaker_side = 'External' THEN mentions ELSE 0 END) AS by_customers, "
         f"count(DISTINCT call_id) AS calls FROM {marts}.fct_tracker_mentions GROUP BY tracker_name "
         f"ORDER BY mentions DESC, tracker"),
        ("Trackers customers bring up in calls of won deals",
         f"SELECT m.tracker_name AS tracker, sum(m.mentions) AS mentions, count(DISTINCT m.call_id) AS calls "
         f"FROM {marts}.fct_tracker_mentions AS m JOIN {marts}.fct_calls AS c ON c.call_id = m.call_id "
         f"WHERE m.speaker_side = 'External' AND c.deal_stage = 'Closed Won' GROUP BY m.tracker_name "
         f"ORDER BY mentions DESC, tracker"),
    ]


def models_summary(result: ModelsResult) -> str:
    """What a build did, as the lines `make models` prints after dbt's own."""
    lines = [f"Built {len(result.models)} models and passed {result.tests_passed} tests on {result.destination} "
             f"(dataset {result.dataset}) in {result.elapsed_s:.1f} s. Marts in {result.marts_schema}:"]
    lines += [f"  {name:<24} {rows:>10,} rows" for name, rows in result.row_counts.items()]
    if result.warnings:
        lines.append(f"Tests that warn (the build succeeded; the data deserves a look): {', '.join(result.warnings)}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line

def main(argv: Optional[Sequence[str]] = None) -> int:
    """`make models`: builds the models on the warehouse a sync loaded and prints the marts' rows; returns the
    exit code (1 for a failure the user can fix, 2 for a bad argument or setting)."""
    parser = argparse.ArgumentParser(prog="make models", description=__doc__.splitlines()[0])
    parser.add_argument("--destination", default=os.environ.get("GONG_SYNC_DESTINATION", "duckdb"),
                        help="the warehouse the sync loads: duckdb (default) or postgres (env GONG_SYNC_DESTINATION)")
    parser.add_argument("--dataset", default=os.environ.get("GONG_SYNC_DATASET", DEFAULT_DATASET),
                        help=f"the synced dataset (default: {DEFAULT_DATASET}); models go to <dataset>_stg, _marts")
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME,
                        help=f"the sync's pipeline name, which names the default DuckDB file (default: "
                             f"{DEFAULT_PIPELINE_NAME})")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild the incremental marts from scratch")
    parser.add_argument("--select", action="append", help="build only these dbt selectors (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary, not dbt's progress")
    parser.add_argument("--docs", action="store_true", help="write docs/models.md from the project and stop")
    args = parser.parse_args(argv)
    try:
        if args.docs:
            from pipelines.models_docs import write_models_doc

            print(f"wrote {write_models_doc().relative_to(ROOT)}")
            return 0
        result = build_models(destination=args.destination, dataset=args.dataset, full_refresh=args.full_refresh,
                              select=args.select, pipeline_name=args.pipeline_name, progress=not args.quiet)
    except UserError as exc:
        print(f"models: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    print("\n" + models_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
