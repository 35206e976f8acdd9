"""CLI: ``python -m simulator --port N`` serves the Gong simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from simulator.clock import parse_iso
from simulator.server import GongSimulator, SimConfig


def _optional_float(text: str) -> float | None:
    value = float(text)
    return value if value > 0 else None


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "off", "") else int(text)


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where its help says what no value means."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help or "" if action.default is None else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser mirroring :class:`SimConfig`."""
    d = SimConfig()
    p = argparse.ArgumentParser(prog="python -m simulator", formatter_class=_Defaults,
                                description="A local stand-in for the Gong API v2 (deterministic from --seed), "
                                "serving until SIGTERM or Ctrl-C.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free port")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the generated company (same seed, same data)")
    p.add_argument("--users", type=int, default=d.users, help="users of the company")
    p.add_argument("--workspaces", type=int, default=d.workspaces, help="workspaces of the company")
    p.add_argument("--calls-per-day", type=int, default=d.calls_per_day, help="calls generated per day")
    p.add_argument("--days", type=int, default=d.days, help="days of history, ending now")
    p.add_argument("--sentences-per-call", type=int, default=d.sentences_per_call,
                   help="transcript sentences per call")
    p.add_argument("--page-size", type=int, default=d.page_size, help="records per page of a list endpoint")
    p.add_argument("--rate-limit", type=_optional_float, default=d.rate_limit,
                   help="requests per second before a 429 (0 = no limit)")
    p.add_argument("--daily-quota", type=_optional_int, default=d.daily_quota,
                   help="requests per UTC day before a long 429 ('none' = no quota)")
    p.add_argument("--access-key", default=d.access_key, help="the access key that Basic auth accepts")
    p.add_argument("--access-key-secret", default=d.access_key_secret, help="its secret")
    p.add_argument("--bearer-token", default=d.bearer_token, help="the token that Bearer auth accepts")
    p.add_argument("--now", type=parse_iso, default=None,
                   help="freeze the clock at this ISO time (default: the real clock)")
    p.add_argument("--private-ratio", type=float, default=d.private_ratio, help="share of calls marked isPrivate")
    p.add_argument("--error-rate", type=float, default=d.error_rate, help="share of requests answered with a 5xx")
    p.add_argument("--latency-ms", type=int, default=d.latency_ms, help="delay added to every answer, in ms")
    p.add_argument("--fault-rate", type=float, default=d.fault_rate,
                   help="share of requests answered with a random fault: 503 (with or without Retry-After), 429, "
                        "an HTML 502, a connection reset mid-body, no answer for 2.5 s, truncated JSON")
    p.add_argument("--latency-jitter-ms", type=int, default=d.latency_jitter_ms,
                   help="a random further delay of 0 to this many ms per answer (seeded)")
    p.add_argument("--company-timezone", default=d.company_timezone,
                   help="IANA time zone of the company's days (date-only filters)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until a termination signal arrives."""
    args = build_parser().parse_args(argv)
    cfg = SimConfig(
        seed=args.seed, users=args.users, workspaces=args.workspaces,
        calls_per_day=args.calls_per_day, days=args.days,
        sentences_per_call=args.sentences_per_call, page_size=args.page_size,
        rate_limit=args.rate_limit, daily_quota=args.daily_quota, access_key=args.access_key,
        access_key_secret=args.access_key_secret, bearer_token=args.bearer_token, now=args.now,
        private_ratio=args.private_ratio, error_rate=args.error_rate, latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms, fault_rate=args.fault_rate,
        company_timezone=args.company_timezone,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sim = GongSimulator(cfg)
    url = sim.start(host=args.host, port=args.port)
    print(f"Gong simulator listening on {url}", flush=True)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
