"""`make bench`: runs the real pipeline against the local Gong simulator and prints the figures of issue 6.

Every scenario runs `pipelines.gong_pipeline.run_sync` in a fresh worker process (so its peak RSS, taken
from the kernel with wait4, is its own), against a simulator in another process (so the simulator's CPU
and memory are not counted against the pipeline), with a frozen simulator clock and explicit windows,
so the request counts are deterministic. Figures, never assertions: no test asserts a time.

    make bench                         # the full run (about 6 minutes on 2 cores)
    make bench ARGS="--quick"          # a smoke run with a few hundred calls (about a minute)
    make bench ARGS="--only rate3,incremental"
    make bench ARGS="--env NORMALIZE__WORKERS=2 --dest-option preferred_loader_file_format=parquet"   # try a setting

Scenarios (resources calls,transcripts; ~200 sentences per call; window [now - days, now) of the frozen clock):
  rate3         simulator and pipeline at Gong's 3 requests/second, DuckDB: API efficiency and overhead
  rate3_10x     the same with the >= 10,000 calls of duckdb_10x: the overhead of a long backfill
  incremental   right after rate3, the same pipeline again with no --start/--end and nothing changed in
                Gong: once with the default 3-day lookback, once with lookback 0
  duckdb_1x     rate limit off, 1/10 of the calls of duckdb_10x, DuckDB: the memory baseline
  duckdb_10x    rate limit off, >= 10,000 calls, DuckDB: throughput and memory
  postgres_10x  rate limit off, the same calls into Postgres: throughput

The figures are printed and written to bench/results/last_run.{md,json}; bench/RESULTS.md keeps the
recorded ones.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The simulator's clock is frozen at the last UTC midnight: the pipeline's own clock (real time) is then a
# few hours later, as with the real Gong, so an open-ended incremental run reads [state - lookback, now).
SIM_NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
SEED = 7
DAYS = 20
PRIVATE_RATIO = 0.05
ACCESS_KEY, ACCESS_SECRET = "sim-access-key", "sim-access-key-secret"
PG_URL_DEFAULT = "postgresql://postgres:postgres@127.0.0.1:5432/test"
RESOURCES = "calls,transcripts"
GONG_RATE = 3.0
PAGE = 100  # calls per extensive page and call ids per transcript request (Gong's maximum)


# ----------------------------------------------------------------------------------------------- worker

def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb() -> int:
    """RSS of this process plus its children (dlt may normalize in a process pool)."""
    total = _rss_kb(os.getpid())
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                for child in f.read().split():
                    total += _rss_kb(int(child))
    except OSError:
        pass
    return total


class RssSampler(threading.Thread):
    """Samples the RSS of the process tree every `interval` seconds: (unix time, kB)."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.time(), _tree_rss_kb()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.samples.append((time.time(), _tree_rss_kb()))

    def peak_mb(self, start: float = 0.0, end: float = float("inf")) -> float:
        values = [kb for t, kb in self.samples if start <= t <= end]
        return round(max(values) / 1024, 1) if values else 0.0


def _time_pipeline_steps() -> list[tuple[str, float, float]]:
    """Wraps dlt's Pipeline.extract/normalize/load so that every call is timed: [(step, start, end)]."""
    from dlt.pipeline.pipeline import Pipeline

    spans: list[tuple[str, float, float]] = []

    def timed(name: str, method: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return method(self, *args, **kwargs)
            finally:
                spans.append((name, start, time.time()))

        return wrapper

    for name in ("extract", "normalize", "load"):
        setattr(Pipeline, name, timed(name, getattr(Pipeline, name)))
    return spans


def _time_requests() -> list[tuple[str, float, float]]:
    """Wraps the Gong client's sending of one request (limiter wait, retries and answer included):
    [(path, start, end)]: when the run sent its first request and had its last answer."""
    from sources.gong.client import GongClient

    spans: list[tuple[str, float, float]] = []
    send = GongClient._send

    def timed(self: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return send(self, method, path, *args, **kwargs)
        finally:
            spans.append((path, start, time.time()))

    GongClient._send = timed  # type: ignore[method-assign]
    return spans


def worker(spec_path: str) -> int:
    """Runs one sync as the spec says and writes what it measured next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    os.environ.update({
        "SOURCES__GONG__BASE_URL": spec["base_url"],
        "SOURCES__GONG__ACCESS_KEY": ACCESS_KEY,
        "SOURCES__GONG__ACCESS_KEY_SECRET": ACCESS_SECRET,
        "SOURCES__GONG__RATE_LIMIT": str(spec["rate_limit"] or 0),
        "SOURCES__GONG__DAILY_BUDGET": "0",
        "RUNTIME__LOG_LEVEL": "WARNING",
    })
    os.environ.update(spec.get("env") or {})
    sampler = RssSampler()
    sampler.start()
    t_import = time.perf_counter()
    import dlt

    from pipelines.cli import configure_logging, limit_malloc_arenas
    from pipelines.gong_pipeline import run_sync

    configure_logging(verbose=False, quiet=True)
    limit_malloc_arenas()  # as the CLI does
    dest_options = dict(spec.get("dest_options") or {})
    if spec["destination"] == "postgres":
        destination = dlt.destinations.postgres(credentials=spec["credentials"], **dest_options)
    elif spec.get("duckdb_config"):
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        credentials = DuckDbCredentials(spec["credentials"], global_config=spec["duckdb_config"])
        destination = dlt.destinations.duckdb(credentials=credentials, **dest_options)
    else:
        destination = dlt.destinations.duckdb(credentials=spec["credentials"], **dest_options)
    spans = _time_pipeline_steps()
    sends = _time_requests()
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    t0, t0_wall = time.perf_counter(), time.time()
    if profiler is not None:
        profiler.enable()
    result = run_sync(spec["resources"].split(","), start=spec.get("start"), end=spec.get("end"),
                      full_refresh=spec.get("full_refresh", False), destination=destination,
                      dataset=spec["dataset"], pipeline_name=spec["pipeline_name"],
                      pipelines_dir=spec["pipelines_dir"], **(spec.get("sync_options") or {}))
    t1 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    sampler.stop()
    # run_sync loads a long range window after window (one pipeline.run each): sum the steps of all.
    steps: dict[str, dict[str, float]] = {}
    for name, start, end in spans:
        step = steps.setdefault(name, {"s": 0.0, "peak_rss_mb": 0.0, "runs": 0})
        step["s"] = round(step["s"] + end - start, 2)
        step["peak_rss_mb"] = max(step["peak_rss_mb"], sampler.peak_mb(start, end))
        step["runs"] += 1
    out = {
        "run_s": round(t1 - t0, 2),
        "import_s": round(t0 - t_import, 2),
        "steps": steps,
        "windows": getattr(result, "windows", 1),
        "requests": result.requests_used,
        "request_counts": dict(result.request_counts),
        "rows": result.row_counts,
        "stop_reason": result.stop_reason,
        "window": result.window,
        "peak_rss_sampled_mb": sampler.peak_mb(),
        # every step run: (step, start s after the run began, seconds, peak RSS MB)
        "step_runs": [(name, round(start - t0_wall, 2), round(end - start, 2),
                       sampler.peak_mb(start, end)) for name, start, end in spans],
        # every request: (path, asked for at s after the run began, answered at s)
        "request_runs": [(path, round(start - t0_wall, 3), round(end - t0_wall, 3)) for path, start, end in sends],
    }
    Path(spec["out"]).write_text(json.dumps(out, indent=1, default=str))
    return 0


# ----------------------------------------------------------------------------------------- orchestrator

class Simulator:
    """`python -m simulator` in its own process, with a frozen clock; stopped by its own pid."""

    def __init__(self, workdir: Path, name: str, calls_per_day: int, days: int, sentences: int,
                 rate_limit: Optional[float]) -> None:
        self.args = [sys.executable, "-m", "simulator", "--port", "0", "--seed", str(SEED),
                     "--now", SIM_NOW.isoformat(), "--calls-per-day", str(calls_per_day), "--days", str(days),
                     "--sentences-per-call", str(sentences), "--rate-limit", str(rate_limit or 0),
                     "--daily-quota", "none", "--private-ratio", str(PRIVATE_RATIO)]
        self.log = workdir / f"sim_{name}.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.url = ""

    def __enter__(self) -> Simulator:
        log = open(self.log, "wb")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "listening on" in text:
                self.url = text.split("listening on", 1)[1].split()[0]
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"the simulator did not start: {self.log.read_text(errors='replace')[-500:]}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_sim/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def api_requests(self) -> int:
        """Requests the simulator answered on /v2 paths (a cross-check of the client's own count)."""
        return sum(n for path, n in self.stats()["requests"].items() if path.startswith("/v2/"))

    def rate_limited(self) -> int:
        """Requests the simulator refused with a 429 for exceeding the per-second rate."""
        return int(self.stats().get("rateLimited", 0))

    def admitted(self) -> list[float]:
        """When the simulator let each of its last requests through (its monotonic clock)."""
        return [float(t) for t in self.stats().get("admittedAt", [])]

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the simulator process has used so far (0 where /proc is missing)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, AttributeError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One measured worker run."""

    name: str
    destination: str
    rate_limit: Optional[float]
    calls: int = 0
    sentences: int = 0
    requests: int = 0
    server_requests: int = 0
    floor: int = 0
    run_s: float = 0.0
    process_s: float = 0.0
    steps: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    sim_cpu_s: float = 0.0
    rate_limited: int = 0
    # The shortest span of rate + 1 consecutive requests the simulator let through (under 1 s is a 429):
    # how close the limiter came to Gong's limit, where a count of 429s only says whether it crossed it.
    tightest_s: Optional[float] = None
    detail: dict[str, Any] = field(default_factory=dict)


def dataset_counts(calls_per_day: int, days: int, sentences: int, start: datetime, end: datetime) -> tuple[int, int]:
    """(calls the extensive endpoint returns for [start, end), of which not private) at the frozen clock."""
    from simulator.data import build_dataset

    ds = build_dataset(seed=SEED, users=12, workspaces=1, calls_per_day=calls_per_day, days=days,
                       sentences_per_call=sentences, private_ratio=PRIVATE_RATIO, now=SIM_NOW)
    seen = [c for c in ds.calls if start <= c.started < end and c.visible_at <= SIM_NOW]
    return len(seen), sum(1 for c in seen if not c.is_private)


def tightest_span(times: list[float], rate: Optional[float]) -> Optional[float]:
    """The shortest time from one admitted request to the `rate`-th after it (None without a limit)."""
    step = int(rate or 0)
    if step < 1 or len(times) <= step:
        return None
    times = sorted(times)
    return min(later - first for first, later in zip(times, times[step:], strict=False))


def floor_requests(all_calls: int, synced_calls: int) -> int:
    """The fewest requests that can read the calls with content and transcripts: full pages of both."""
    return math.ceil(all_calls / PAGE) + math.ceil(synced_calls / PAGE)


def run_worker(workdir: Path, name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], float, float, float]:
    """Runs one worker; returns (its measurements, process wall s, peak RSS MB of its tree, CPU s)."""
    spec_path = workdir / f"{name}.spec.json"
    spec["out"] = str(workdir / f"{name}.out.json")
    spec_path.write_text(json.dumps(spec))
    with open(workdir / f"{name}.log", "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bench.run_bench", "--worker", str(spec_path)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not Path(spec["out"]).exists():
        raise RuntimeError(f"scenario {name} failed (exit {proc.returncode}); log: {workdir / (name + '.log')}\n"
                           + (workdir / f"{name}.log").read_text(errors="replace")[-3000:])
    out = json.loads(Path(spec["out"]).read_text())
    return out, wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def drop_postgres_dataset(url: str, dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(url) as con, con.cursor() as cur:
        for schema in (dataset, f"{dataset}_staging"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def scenario(workdir: Path, name: str, sim: Simulator, destination: str, rate: Optional[float],
             counts: Optional[tuple[int, int]], args: argparse.Namespace, start: Optional[str], end: Optional[str],
             full_refresh: bool = True, env: Optional[dict[str, str]] = None, pipeline: Optional[str] = None) -> Run:
    pipeline = pipeline or name
    if destination == "postgres":
        credentials, dataset = args.postgres, "gong_bench"
        if full_refresh:
            drop_postgres_dataset(credentials, dataset)
    else:
        db = workdir / f"{pipeline}.duckdb"
        if full_refresh and db.exists():
            db.unlink()
        credentials, dataset = str(db), "gong"
    before, limited_before, sim_cpu_before = sim.api_requests(), sim.rate_limited(), sim.cpu_s()
    admitted_before = len(sim.admitted())
    spec = {
        "base_url": sim.url, "rate_limit": rate, "destination": destination, "credentials": credentials,
        "dataset": dataset, "pipeline_name": pipeline, "pipelines_dir": str(workdir / "pipelines"),
        "resources": RESOURCES, "start": start, "end": end, "full_refresh": full_refresh,
        "env": {**args.env, **(env or {})}, "dest_options": args.dest_options, "duckdb_config": args.duckdb_config,
        "sync_options": {k: _option_value(v) for k, v in args.sync_options.items()},
        "profile": str(workdir / f"{name}.prof") if args.profile else None,
    }
    print(f"  {name}: running ({destination}, rate limit {rate or 'off'})...", flush=True)
    out, wall, rss, cpu = run_worker(workdir, name, spec)
    rows = out["rows"]
    run = Run(name=name, destination=destination, rate_limit=rate, calls=rows.get("calls", 0),
              sentences=rows.get("transcripts", 0), requests=out["requests"],
              server_requests=sim.api_requests() - before, run_s=out["run_s"], process_s=round(wall, 2),
              steps=out["steps"], peak_rss_mb=round(rss, 1), cpu_s=round(cpu, 1), detail=out,
              rate_limited=sim.rate_limited() - limited_before, sim_cpu_s=round(sim.cpu_s() - sim_cpu_before, 1),
              tightest_s=tightest_span(sim.admitted()[admitted_before:], rate))
    if counts is not None:
        run.floor = floor_requests(*counts)
    if out.get("stop_reason"):
        print(f"    WARNING: the run stopped early: {out['stop_reason']}")
    print(f"    {run.calls:,} calls, {run.sentences:,} sentences, {run.requests} requests in {run.run_s:.1f} s "
          f"({_steps_text(run)}), peak RSS {run.peak_rss_mb:.0f} MB", flush=True)
    return run


def _steps_text(run: Run) -> str:
    return ", ".join(f"{k} {v['s']:.1f} s" for k, v in run.steps.items())


def window(days: int) -> tuple[str, str]:
    return (SIM_NOW - timedelta(days=days)).isoformat(), SIM_NOW.isoformat()


def machine() -> dict[str, Any]:
    import dlt
    import duckdb
    import pyarrow

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        mem_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    pg = "unreachable"
    try:
        import psycopg2

        with psycopg2.connect(os.environ.get("GONG_SYNC_BENCH_POSTGRES", PG_URL_DEFAULT), connect_timeout=3) as c, \
                c.cursor() as cur:
            cur.execute("SHOW server_version")
            pg = cur.fetchone()[0]
    except Exception:  # noqa: BLE001 - only a label
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "os": platform.platform(),
            "python": platform.python_version(), "dlt": dlt.__version__, "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__, "postgres": pg}


def parse_kv(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: a few hundred calls per scenario")
    parser.add_argument("--only", default="rate3,incremental,rate3_10x,duckdb_1x,duckdb_10x,postgres_10x",
                        help="comma-separated scenarios (default: all)")
    parser.add_argument("--calls", type=int, default=None,
                        help="calls generated for the 10x scenarios (default 10,800, --quick 1,000)")
    parser.add_argument("--rate3-calls", type=int, default=None,
                        help="calls generated for the rate3 scenario (default 3,000, --quick 300)")
    parser.add_argument("--sentences", type=int, default=200, help="transcript sentences per call (default 200)")
    parser.add_argument("--postgres", default=os.environ.get("GONG_SYNC_BENCH_POSTGRES", PG_URL_DEFAULT),
                        help="Postgres URL for postgres_10x (default: the test database on 127.0.0.1)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for every pipeline run (e.g. NORMALIZE__WORKERS=2)")
    parser.add_argument("--dest-option", dest="dest_option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra argument of the dlt destination factory, "
                        "e.g. preferred_loader_file_format=parquet")
    parser.add_argument("--duckdb-config", dest="duckdb_config", action="append", default=[], metavar="KEY=VALUE",
                        help="DuckDB setting for the DuckDB scenarios, e.g. memory_limit=512MB")
    parser.add_argument("--sync-option", dest="sync_option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra argument of run_sync, e.g. chunk_pages=5 or window_requests=50")
    parser.add_argument("--profile", action="store_true",
                        help="write a cProfile of each worker's main thread to <scratch>/<scenario>.prof")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new one under /tmp)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "last_run"), help="results file stem (.md and .json)")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    args.env = parse_kv(args.env)
    args.dest_options = parse_kv(args.dest_option)
    args.duckdb_config = parse_kv(args.duckdb_config)
    args.sync_options = parse_kv(args.sync_option)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    big = args.calls or (1_000 if args.quick else 10_800)
    rate_calls = args.rate3_calls or (300 if args.quick else 3_000)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gong-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"gong-sync benchmark: scratch folder {workdir}", flush=True)
    runs: dict[str, Run] = {}
    t_all = time.perf_counter()

    if only & {"rate3", "incremental"}:
        per_day = max(1, math.ceil(rate_calls / DAYS))
        start, end = window(DAYS)
        counts = dataset_counts(per_day, DAYS, args.sentences, SIM_NOW - timedelta(days=DAYS), SIM_NOW)
        with Simulator(workdir, "rate3", per_day, DAYS, args.sentences, GONG_RATE) as sim:
            runs["rate3"] = scenario(workdir, "rate3", sim, "duckdb", GONG_RATE, counts, args, start, end)
            if "incremental" in only:
                runs["incremental"] = scenario(workdir, "incremental", sim, "duckdb", GONG_RATE, None, args,
                                               None, None, full_refresh=False, pipeline="rate3")
                runs["incremental_lb0"] = scenario(workdir, "incremental_lb0", sim, "duckdb", GONG_RATE, None,
                                                   args, None, None, full_refresh=False, pipeline="rate3",
                                                   env={"SOURCES__GONG__LOOKBACK_DAYS": "0"})
    if "rate3_10x" in only:
        per_day = max(1, math.ceil(big / DAYS))
        start, end = window(DAYS)
        counts = dataset_counts(per_day, DAYS, args.sentences, SIM_NOW - timedelta(days=DAYS), SIM_NOW)
        with Simulator(workdir, "rate3_10x", per_day, DAYS, args.sentences, GONG_RATE) as sim:
            runs["rate3_10x"] = scenario(workdir, "rate3_10x", sim, "duckdb", GONG_RATE, counts, args, start, end)
    for name, calls, destination in (("duckdb_1x", big // 10, "duckdb"), ("duckdb_10x", big, "duckdb"),
                                     ("postgres_10x", big, "postgres")):
        if name not in only:
            continue
        per_day = max(1, math.ceil(calls / DAYS))
        start, end = window(DAYS)
        counts = dataset_counts(per_day, DAYS, args.sentences, SIM_NOW - timedelta(days=DAYS), SIM_NOW)
        with Simulator(workdir, name, per_day, DAYS, args.sentences, None) as sim:
            runs[name] = scenario(workdir, name, sim, destination, None, counts, args, start, end)

    report = render(runs, machine(), args, time.perf_counter() - t_all)
    print("\n" + report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(report + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "worker"},
         "runs": {k: asdict(v) for k, v in runs.items()}}, indent=1, default=str))
    print(f"\nWritten: {out.with_suffix('.md')} and {out.with_suffix('.json')} (scratch: {workdir})")
    return 0


def _timeline_text(run: Run) -> str:
    """Where the time beside the requests went: before the first one, and after the last answer."""
    requests = run.detail.get("request_runs") or []
    if not requests:
        return "no request times recorded"
    first, last = min(r[1] for r in requests), max(r[2] for r in requests)
    text = f"first request at {first:.2f} s, last answer at {last:.1f} s, then {run.run_s - last:.2f} s"
    after = [(name, start, seconds) for name, start, seconds, _ in run.detail.get("step_runs") or []
             if start + seconds > last]
    if after:
        parts = [f"{name} {min(seconds, start + seconds - last):.2f} s" for name, start, seconds in after]
        text += " (" + ", ".join(parts) + ")"
    return text


def _pct(value: float, base: float) -> str:
    return f"{100 * (value / base - 1):+.1f} %" if base else "n/a"


def _option_value(text: str) -> Any:
    """A --sync-option value as run_sync takes it: a whole number, true/false, or the text."""
    if text.lstrip("-").isdigit():
        return int(text)
    return {"true": True, "false": False}.get(text.lower(), text)


def render(runs: dict[str, Run], mach: dict[str, Any], args: argparse.Namespace, total_s: float) -> str:
    from sources.gong.limiter import RateLimiter  # its margin, for the overhead figure

    lines: list[str] = []
    w = lines.append
    w(f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB; {mach['os']}")
    w(f"Software: Python {mach['python']}, dlt {mach['dlt']}, DuckDB {mach['duckdb']}, pyarrow {mach['pyarrow']}, "
      f"Postgres {mach['postgres']}")
    extra = " ".join([f"--env {k}={v}" for k, v in args.env.items()]
                     + [f"--dest-option {k}={v}" for k, v in args.dest_options.items()]
                     + [f"--duckdb-config {k}={v}" for k, v in args.duckdb_config.items()]
                     + [f"--sync-option {k}={v}" for k, v in args.sync_options.items()])
    cli = " ".join(x for x in ("--quick" if args.quick else "", extra) if x)
    w("Command: make bench" + (f' ARGS="{cli}"' if cli else ""))
    w(f"Resources calls,transcripts; ~{args.sentences} sentences per call; {int(PRIVATE_RATIO * 100)} % private "
      f"calls; total bench time {total_s / 60:.1f} min")
    w("")
    w("| scenario | dest | rate limit | windows | calls | sentences | requests | floor | run s | extract s "
      "| normalize s | load s | calls/s | sentences/s | peak RSS MB |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs.values():
        st = {k: r.steps.get(k, {}).get("s", 0.0) for k in ("extract", "normalize", "load")}
        w(f"| {r.name} | {r.destination} | {r.rate_limit or 'off'} | {r.detail.get('windows', 1)} | {r.calls:,} "
          f"| {r.sentences:,} | {r.requests} "
          f"| {r.floor or '-'} | {r.run_s:.1f} | {st['extract']:.1f} | {st['normalize']:.1f} | {st['load']:.1f} "
          f"| {r.calls / r.run_s:,.0f} | {r.sentences / r.run_s:,.0f} | {r.peak_rss_mb:,.0f} |")
    w("")
    w("| # | figure | measured | target |")
    w("|---|---|---|---|")
    eff = [r for r in runs.values() if r.floor and r.calls]
    for r in eff:
        per_k, floor_k = 1000 * r.requests / r.calls, 1000 * r.floor / r.calls
        w(f"| 1 | API efficiency ({r.name}): requests per 1,000 calls synced | {per_k:.1f} vs floor {floor_k:.1f} "
          f"({_pct(r.requests, r.floor)}) | within 5 % of the floor |")
    for name in ("rate3", "rate3_10x"):
        if name in runs:
            r = runs[name]
            ideal = r.requests / GONG_RATE
            # The limiter's own schedule: requests (1 s + its margin) / 3 apart, before any other work.
            paced = r.requests * (1 + RateLimiter.BASE_MARGIN) / GONG_RATE
            w(f"| 2 | Overhead at 3 req/s ({r.calls:,} calls): run wall / (requests / 3) | {r.run_s / ideal:.2f} "
              f"({r.run_s:.1f} s / {ideal:.1f} s; whole process {r.process_s / ideal:.2f}; CPU {r.cpu_s:.0f} s; "
              f"the limiter's {RateLimiter.BASE_MARGIN:.2f} s margin alone paces the requests over {paced:.1f} s "
              f"= {paced / ideal:.2f}; {_timeline_text(r)}) | <= 1.10 |")
    for name in ("duckdb_10x", "postgres_10x"):
        if name in runs:
            r = runs[name]
            w(f"| 3 | Throughput, rate limit off, into {r.destination} ({r.calls:,} calls) | "
              f"{r.calls / r.run_s:,.0f} calls/s, {r.sentences / r.run_s:,.0f} sentences/s | report |")
    if "duckdb_1x" in runs and "duckdb_10x" in runs:
        a, b = runs["duckdb_1x"], runs["duckdb_10x"]
        w(f"| 4 | Peak RSS, {a.calls:,} vs {b.calls:,} calls (DuckDB) | {a.peak_rss_mb:,.0f} MB vs "
          f"{b.peak_rss_mb:,.0f} MB = {b.peak_rss_mb / a.peak_rss_mb:.2f}x | <= 1.5x |")
    for name, label in (("incremental", "default 3-day lookback"), ("incremental_lb0", "lookback 0")):
        if name in runs:
            r = runs[name]
            w(f"| 5 | No-change incremental run ({label}, 3 req/s) | {r.requests} requests, {r.run_s:.1f} s "
              f"({r.calls:,} calls re-read) | report |")
    w("")
    w("Peak RSS is the worker process tree's (wait4 ru_maxrss); per step (sampled every 50 ms) it is:")
    for r in runs.values():
        per = ", ".join(f"{k} {v['peak_rss_mb']:,.0f} MB" for k, v in r.steps.items())
        w(f"- {r.name}: {per}; {r.detail.get('windows', 1)} window(s); CPU (user+sys) {r.cpu_s:.0f} s; "
          f"the simulator saw {r.server_requests} requests ({r.rate_limited} answered 429 for the rate"
          + (f"; its tightest {int(r.rate_limit or 0) + 1} consecutive requests spanned {r.tightest_s:.3f} s"
             if r.tightest_s is not None else "") + f") and used {r.sim_cpu_s:.0f} s CPU")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
