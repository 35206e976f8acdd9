"""HTTP server emulating the Gong API v2 (stdlib only)."""

from __future__ import annotations

import base64
import binascii
import bisect
import email.policy
import hashlib
import json
import math
import random
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.clock import Clock, parse_iso
from simulator.data import CallMeta, Dataset, build_dataset

JSON = dict[str, Any]

CONTENT_KEYS = ("structure", "topics", "pointsOfInterest", "brief", "outline", "highlights",
                "callOutcome", "keyPoints")
INTERACTION_KEYS = {"speakers": "speakers", "video": "video",
                    "personInteractionStats": "interactionStats", "questions": "questions"}


@dataclass
class SimConfig:
    """Simulator settings; every size and limit is configurable."""

    seed: int = 42
    users: int = 12
    workspaces: int = 1
    calls_per_day: int = 20
    days: int = 30
    sentences_per_call: int = 60
    page_size: int = 100
    rate_limit: float | None = 3.0
    daily_quota: int | None = 10000
    access_key: str = "sim-access-key"
    access_key_secret: str = "sim-access-key-secret"
    bearer_token: str = "sim-bearer-token"
    now: datetime | None = None
    private_ratio: float = 0.05
    error_rate: float = 0.0
    latency_ms: int = 0
    # A random delay of 0 to this many ms more per answer (seeded), as a real network and server add.
    latency_jitter_ms: int = 0
    # The share of requests answered with one of FAULT_KINDS instead (seeded): a soak of what real networks do.
    fault_rate: float = 0.0
    company_timezone: str = "America/New_York"


@dataclass(frozen=True)
class Injected:
    """An answer a test asked for (`GongSimulator.inject`)."""

    path: str | None
    status: int
    headers: dict[str, str]
    message: str
    fault: str | None
    paged: bool
    delay_s: float


# What `SimConfig.fault_rate` answers, chosen at random: a status (with or without Retry-After), or a fault.
FAULT_KINDS = (
    Injected(None, 503, {}, "Service temporarily unavailable, please retry", None, False, 0.0),
    Injected(None, 503, {"Retry-After": "1"}, "Service temporarily unavailable, please retry", None, False, 0.0),
    Injected(None, 429, {"Retry-After": "1"}, "Too many requests: rate limit exceeded", None, False, 0.0),
    Injected(None, 502, {}, "", "html", False, 0.0),
    Injected(None, 200, {}, "", "reset", False, 0.0),
    Injected(None, 200, {}, "", "hang", False, 2.5),
    Injected(None, 200, {}, "", "truncate", False, 0.0),
)


class ApiError(Exception):
    """An error answered as a Gong JSON error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Reply(dict):  # type: ignore[type-arg]
    """A handler's JSON payload answered with a status other than 200 (e.g. 201 Created)."""

    def __init__(self, status: int, payload: JSON) -> None:
        super().__init__(payload)
        self.status = status


@dataclass
class FormPart:
    """One part of a multipart/form-data body."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Response:
    """A fully formed HTTP response."""

    status: int
    body: bytes
    headers: dict[str, str]
    # "reset": the connection is cut halfway through the body (the transport does it).
    fault: str | None = None


class GongSimulator:
    """In-process Gong API v2 simulator with test hooks."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.clock = Clock(cfg.now)
        self.data: Dataset = build_dataset(
            seed=cfg.seed, users=cfg.users, workspaces=cfg.workspaces,
            calls_per_day=cfg.calls_per_day, days=cfg.days,
            sentences_per_call=cfg.sentences_per_call, private_ratio=cfg.private_ratio,
            now=self.clock.now(),
        )
        self._starts = [c.started for c in self.data.calls]
        self._lock = threading.Lock()
        self.request_log: list[JSON] = []
        self._path_counts: Counter[str] = Counter()
        self._private_transcript_ids: list[str] = []
        self._overrides: dict[str, JSON] = {}
        self._stray_transcripts: list[str] = []
        self._deleted: set[str] = set()
        self._recent: deque[float] = deque()
        self._rate_limited = 0  # requests answered 429 because of the per-second rate
        # When each of the last requests let through arrived (monotonic seconds): how close a client came to the rate.
        self._admitted: deque[float] = deque(maxlen=10_000)
        self._quota_day: str = ""
        self._quota_used = 0
        self._error_rng = random.Random(f"{cfg.seed}:errors")
        self._latency_rng = random.Random(f"{cfg.seed}:latency")
        # Answers a test asked for (`inject`), in order.
        self._injected: deque[Injected] = deque()
        self.injected_served: list[str] = []  # what each injection answered: its fault, or its status
        # Every request as (arrived, answered, path, status), monotonic seconds: what a client's pace was.
        self.arrivals: list[tuple[float, float, str, int]] = []
        self._request_no = 0
        basic = base64.b64encode(f"{cfg.access_key}:{cfg.access_key_secret}".encode()).decode()
        self._auth_ok = {f"Basic {basic}", f"Bearer {cfg.bearer_token}"}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url: str = ""
        self._routes: dict[str, dict[str, Callable[[JSON, Any], JSON]]] = {
            "/v2/workspaces": {"GET": self._workspaces},
            "/v2/users": {"GET": self._users},
            "/v2/settings/scorecards": {"GET": self._scorecards},
            "/v2/calls/extensive": {"POST": self._calls_extensive},
            "/v2/calls/transcript": {"POST": self._transcripts},
        }
        # Further endpoint families live in their own modules; each returns {path: {method: handler}}.
        from simulator import crm_endpoints, read_endpoints

        self._routes.update(read_endpoints.routes(self))
        self._routes.update(crm_endpoints.routes(self))

    # ------------------------------------------------------------ lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; return the base URL."""
        if self._server is not None:
            return self.base_url
        handler = type("BoundHandler", (_Handler,), {"sim": self})
        server = _Server((host, port), handler)
        self._server = server
        real_port = server.server_address[1]
        self.base_url = f"http://{host}:{real_port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="gong-simulator", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GongSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ test hooks
    def set_now(self, dt: datetime) -> None:
        """Freeze the simulated clock at ``dt``."""
        self.clock.set_now(dt)

    def advance(self, delta: timedelta) -> None:
        """Move the simulated clock by ``delta``."""
        self.clock.advance(delta)

    def reset_request_log(self) -> None:
        """Forget logged requests."""
        with self._lock:
            self.request_log.clear()

    def inject(self, status: int = 200, path: str | None = None, retry_after: float | None = None, count: int = 1,
               message: str = "Injected by the test", fault: str | None = None, paged: bool = False,
               delay_s: float = 0.0) -> None:
        """Answers the next `count` authorized requests (to `path`, or any; with `paged`, only requests for a
        next page, i.e. carrying a cursor) otherwise than asked; they count against the rate and the quota.

        Without `fault`: `status` (and a Retry-After header) with a Gong error body. `fault` "html": `status`
        with a web page as body (a proxy's 502); "truncate": the real answer cut in half, complete as HTTP but
        not as JSON; "reset": the real answer, the connection cut halfway through its body; "hang": the real
        answer after `delay_s` seconds (a client gives up first)."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        with self._lock:
            self._injected.extend([Injected(path, status, headers, message, fault, paged, delay_s)] * count)

    def reset_quota(self) -> None:
        """Give back the full daily quota and clear the rate window."""
        with self._lock:
            self._quota_used = 0
            self._recent.clear()

    def edit_call(self, call_id: str, parties: list[JSON] | None = None,
                  trackers: list[JSON] | None = None, topics: list[JSON] | None = None,
                  title: str | None = None, meta_data: JSON | None = None,
                  null_lists: tuple[str, ...] = ()) -> None:
        """Replace parts of a call; later responses show the edit. `meta_data` fields replace the call's
        (a None value sends null, as a bad record would); `null_lists` ("parties", "trackers"...) sends
        those lists as null."""
        if call_id not in self.data.by_id:
            raise KeyError(call_id)
        edits = {k: v for k, v in {"parties": parties, "trackers": trackers, "topics": topics,
                                   "title": title, "metaData": meta_data}.items() if v is not None}
        edits.update({name: None for name in null_lists})
        with self._lock:
            self._overrides.setdefault(call_id, {}).update(edits)

    def add_stray_transcript(self, call_id: str) -> None:
        """The next transcript answer also holds a transcript of `call_id`, a call it was not asked for."""
        with self._lock:
            self._stray_transcripts.append(call_id)

    def delete_call(self, call_id: str) -> None:
        """Delete a call: it disappears from every endpoint from now on."""
        if call_id not in self.data.by_id:
            raise KeyError(call_id)
        with self._lock:
            self._deleted.add(call_id)

    def is_deleted(self, call_id: str) -> bool:
        """True once ``delete_call`` removed the call."""
        return call_id in self._deleted

    def set_quota(self, limit: int | None, used: int | None = None) -> None:
        """Set the daily quota (None = unlimited) and optionally today's used count."""
        with self._lock:
            self.config.daily_quota = limit
            if used is not None:
                self._quota_day = self.clock.now().strftime("%Y-%m-%d")
                self._quota_used = max(0, used)

    def call_ids(self, include_private: bool = True, visible_only: bool = True) -> list[str]:
        """Call ids ordered by start time (optionally only API-visible ones); deleted calls excluded."""
        now = self.clock.now()
        return [c.id for c in self.data.calls
                if (include_private or not c.is_private) and (not visible_only or c.visible_at <= now)
                and c.id not in self._deleted]

    def private_call_ids(self) -> list[str]:
        """Ids of all private calls (visible or not)."""
        return [c.id for c in self.data.calls if c.is_private]

    def call_meta(self, call_id: str) -> CallMeta:
        """Generation facts (started, visible_at, transcript_at, ...) for a call."""
        return self.data.by_id[call_id]

    def stats(self) -> JSON:
        """Request counts per path, private ids sent to the transcript endpoint, quota and rate facts (with
        when each of the last 10,000 requests let through arrived, on the monotonic clock)."""
        with self._lock:
            return {
                "requests": dict(self._path_counts),
                "totalRequests": sum(self._path_counts.values()),
                "privateTranscriptRequests": list(self._private_transcript_ids),
                "quotaUsedToday": self._quota_used,
                "rateLimited": self._rate_limited,
                "admittedAt": list(self._admitted),
                "dailyQuota": self.config.daily_quota,
                "deletedCalls": sorted(self._deleted),
                "now": _iso(self.clock.now()),
            }

    # ------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes,
               arrived: float | None = None) -> Response:
        """Answer one HTTP request (transport independent) that `arrived` at that monotonic time (default: now).

        Gong counts its rate limit where requests arrive; the time this process then takes to read and
        parse one (longer while another thread builds a large answer) is not the client's doing."""
        arrived = time.monotonic() if arrived is None else arrived
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Any = None
        body_error = False
        if headers.get("content-type", "").lower().startswith("multipart/form-data"):
            body = _parse_multipart(headers["content-type"], raw_body)
            body_error = body is None
        elif raw_body.strip():
            try:
                body = json.loads(raw_body)
            except (ValueError, UnicodeDecodeError):
                body_error = True
        with self._lock:
            self._request_no += 1
            rid = _request_id(self.config.seed, self._request_no)
            self._path_counts[path] += 1
            entry: JSON = {"method": method, "path": path, "query": query, "body": body, "status": 0}
            self.request_log.append(entry)
        try:
            resp = self._route(method, path, query, headers, body, body_error, rid, arrived)
        except ApiError as err:
            resp = _json(err.status, {"requestId": rid, "errors": [err.message]}, err.headers)
        except Exception as err:  # noqa: BLE001 - a simulator must answer, not die
            resp = _json(500, {"requestId": rid, "errors": [f"Internal error: {type(err).__name__}"]})
        entry["status"] = resp.status
        with self._lock:
            self.arrivals.append((arrived, time.monotonic(), path, resp.status))
        return resp

    def _route(self, method: str, path: str, query: JSON, headers: dict[str, str], body: Any,
               body_error: bool, rid: str, arrived: float) -> Response:
        if path.startswith("/_sim/"):
            if body_error:
                raise ApiError(400, "Malformed JSON body")
            return _json(200, {"requestId": rid, **self._sim_hook(method, path, body)})
        route = self._routes.get(path)
        if route is None:
            route, params = self._match_template(path)
            if route is not None:
                query = {**query, "_path": params}
        if route is None:
            html = b"<html><body><h1>404 Not Found</h1><p>No such resource.</p></body></html>"
            return Response(404, html, {"Content-Type": "text/html; charset=utf-8"})
        handler = route.get(method)
        if handler is None:
            raise ApiError(405, f"Method {method} is not allowed on {path}")
        if headers.get("authorization", "").strip() not in self._auth_ok:
            raise ApiError(401, "Unauthorized: missing or invalid credentials")
        paged = bool(query.get("cursor") or (isinstance(body, dict) and body.get("cursor")))
        fault = self._admit(arrived, path, paged)
        if fault is not None and fault.fault == "html":
            html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            return Response(fault.status, html, {"Content-Type": "text/html"})
        if fault is not None and fault.fault == "hang":
            time.sleep(fault.delay_s)
        if self.config.latency_ms or self.config.latency_jitter_ms:
            with self._lock:
                jitter = self._latency_rng.uniform(0, self.config.latency_jitter_ms)
            time.sleep((self.config.latency_ms + jitter) / 1000)
        if body_error:
            raise ApiError(400, "Malformed JSON in request body")
        # Handlers marked `any_body` (JSON arrays, multipart uploads) check their own bodies.
        if method == "POST" and not isinstance(body, dict) and not getattr(handler, "any_body", False):
            raise ApiError(400, "Request body must be a JSON object with a 'filter'")
        payload = handler(query, body)
        resp = _json(getattr(payload, "status", 200), {"requestId": rid, **payload})
        if fault is not None and fault.fault == "truncate":
            resp.body = resp.body[: len(resp.body) // 2]
        elif fault is not None and fault.fault == "reset":
            resp.fault = "reset"
        return resp

    def _match_template(self, path: str) -> tuple[dict[str, Callable[[JSON, Any], JSON]] | None, dict[str, str]]:
        """Match routes keyed by a template such as ``/v2/users/{id}/settings-history``."""
        parts = path.split("/")
        for template, route in self._routes.items():
            if "{" not in template:
                continue
            tparts = template.split("/")
            if len(tparts) != len(parts):
                continue
            params: dict[str, str] = {}
            for t, p in zip(tparts, parts, strict=True):
                if t.startswith("{") and t.endswith("}") and p:
                    params[t[1:-1]] = p
                elif t != p:
                    break
            else:
                return route, params
        return None, {}

    def _admit(self, arrived: float, path: str = "", paged: bool = False) -> Injected | None:
        """Apply rate limit (to the requests arrived in the second before `arrived`), daily quota and injected
        errors."""
        cfg = self.config
        with self._lock:
            mono = arrived
            if cfg.rate_limit:
                # Handled in about the order they arrived, not exactly: keep a little history, count the second.
                while self._recent and mono - self._recent[0] >= 2.0:
                    self._recent.popleft()
                if sum(1 for t in self._recent if mono - 1.0 < t <= mono) >= cfg.rate_limit:
                    self._rate_limited += 1
                    raise ApiError(429, "Too many requests: rate limit exceeded", {"Retry-After": "1"})
            now = self.clock.now()
            day = now.strftime("%Y-%m-%d")
            if day != self._quota_day:
                self._quota_day, self._quota_used = day, 0
            if cfg.daily_quota is not None and self._quota_used >= cfg.daily_quota:
                midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
                wait = max(1, math.ceil((midnight - now).total_seconds()))
                raise ApiError(429, "Daily API quota exceeded", {"Retry-After": str(wait)})
            self._recent.append(mono)
            self._admitted.append(mono)
            self._quota_used += 1
            injected = next((f for f in self._injected if f.path in (None, path) and (paged or not f.paged)), None)
            if injected is None and cfg.fault_rate > 0 and self._error_rng.random() < cfg.fault_rate:
                injected = self._error_rng.choice(FAULT_KINDS)
                self._injected.appendleft(injected)
            if injected is not None:
                self._injected.remove(injected)
                self.injected_served.append(injected.fault or f"{injected.status}"
                                            + (" Retry-After" if injected.headers else ""))
                if injected.fault is None:
                    raise ApiError(injected.status, injected.message, injected.headers)
            fail = cfg.error_rate > 0 and self._error_rng.random() < cfg.error_rate
        if fail:
            raise ApiError(503, "Service temporarily unavailable, please retry")
        return injected

    def _sim_hook(self, method: str, path: str, body: Any) -> JSON:
        body = body if isinstance(body, dict) else {}
        if path == "/_sim/stats" and method == "GET":
            return self.stats()
        if path == "/_sim/clock":
            if method == "POST":
                try:
                    if "now" in body:
                        self.set_now(parse_iso(body["now"]))
                    if "advance_seconds" in body:
                        self.advance(timedelta(seconds=float(body["advance_seconds"])))
                except (TypeError, ValueError) as err:
                    raise ApiError(400, f"Bad clock request: {err}") from err
            return {"now": _iso(self.clock.now())}
        if path == "/_sim/quota/reset" and method == "POST":
            self.reset_quota()
            return {"quotaUsedToday": 0}
        if path == "/_sim/quota" and method == "POST":
            limit, used = body.get("limit", self.config.daily_quota), body.get("used")
            if not (limit is None or isinstance(limit, int)) or not (used is None or isinstance(used, int)):
                raise ApiError(400, "quota 'limit' and 'used' must be integers (limit may be null)")
            self.set_quota(limit, used)
            return {"dailyQuota": limit, "quotaUsedToday": self._quota_used}
        if path.startswith("/_sim/calls/") and method == "DELETE":
            call_id = path.rsplit("/", 1)[1]
            try:
                self.delete_call(call_id)
            except KeyError as err:
                raise ApiError(404, f"Unknown call id {call_id}") from err
            return {"callId": call_id, "deleted": True}
        if path.startswith("/_sim/calls/") and method == "POST":
            call_id = path.rsplit("/", 1)[1]
            allowed = {"parties", "trackers", "topics", "title"}
            unknown = set(body) - allowed
            if unknown:
                raise ApiError(400, f"Unsupported edit fields: {sorted(unknown)}")
            try:
                self.edit_call(call_id, **body)
            except KeyError as err:
                raise ApiError(404, f"Unknown call id {call_id}") from err
            return {"callId": call_id, "edited": sorted(body)}
        raise ApiError(404, f"Unknown simulator hook {method} {path}")

    # ------------------------------------------------------------ paging
    def _page(self, items: list[Any], cursor: str | None, key: str) -> tuple[list[Any], JSON]:
        offset = 0
        if cursor:
            offset = _decode_cursor(cursor, key)
        size = max(1, self.config.page_size)
        chunk = items[offset:offset + size]
        records: JSON = {"totalRecords": len(items), "currentPageSize": len(chunk),
                         "currentPageNumber": offset // size}
        if offset + size < len(items):
            records["cursor"] = _encode_cursor(offset + size, key)
        return chunk, records

    # ------------------------------------------------------------ endpoints
    def _workspaces(self, query: JSON, body: Any) -> JSON:
        return {"workspaces": [dict(w) for w in self.data.workspaces]}

    def _users(self, query: JSON, body: Any) -> JSON:
        key = _filter_key("/v2/users", {})
        if not self.data.users:
            raise ApiError(404, "No users found corresponding to the provided filters")
        users, records = self._page(self.data.users, query.get("cursor") or None, key)
        return {"records": records, "users": users}

    def _scorecards(self, query: JSON, body: Any) -> JSON:
        ws = query.get("workspaceId")
        cards = [c for c in self.data.scorecards if not ws or str(c["workspaceId"]) == ws]
        if not cards:
            raise ApiError(404, "No scorecards found corresponding to the provided filters")
        return {"scorecards": cards}

    def _select_calls(self, flt: JSON, with_owners: bool) -> list[CallMeta]:
        """Visible calls matching a Gong calls filter, ordered by started then id."""
        if not isinstance(flt, dict):
            raise ApiError(400, "'filter' must be a JSON object")
        now = self.clock.now()
        lo, hi = 0, len(self.data.calls)
        try:
            if flt.get("fromDateTime") is not None:
                lo = bisect.bisect_left(self._starts, parse_iso(flt["fromDateTime"]))
            if flt.get("toDateTime") is not None:
                hi = bisect.bisect_left(self._starts, parse_iso(flt["toDateTime"]))
        except (TypeError, ValueError) as err:
            raise ApiError(400, f"Invalid date-time in filter: {err}") from err
        ws = flt.get("workspaceId")
        if ws is not None and not isinstance(ws, str):
            raise ApiError(400, "filter.workspaceId must be a string")
        ids = _id_list(flt, "callIds")
        owners = _id_list(flt, "primaryUserIds") if with_owners else None
        candidates = self.data.calls[lo:hi]
        if ids is not None:
            wanted = set(ids)
            candidates = [c for c in candidates if c.id in wanted]
        out = []
        deleted = self._deleted
        for c in candidates:
            if c.visible_at > now or c.id in deleted:
                continue
            if ws and c.workspace_id != ws:
                continue
            if owners is not None and c.primary_user_id not in owners:
                continue
            out.append(c)
        return out

    def _calls_extensive(self, query: JSON, body: JSON) -> JSON:
        flt = body.get("filter")
        if flt is None:
            raise ApiError(400, "Missing required field 'filter'")
        selector = body.get("contentSelector") or {}
        if not isinstance(selector, dict):
            raise ApiError(400, "'contentSelector' must be a JSON object")
        if selector.get("context", "None") not in ("None", "Basic", "Extended"):
            raise ApiError(400, "contentSelector.context must be one of None, Basic, Extended")
        calls = self._select_calls(flt, with_owners=True)
        if not calls:
            raise ApiError(404, "No calls found corresponding to the provided filters")
        key = _filter_key("/v2/calls/extensive", {"filter": flt, "contentSelector": selector})
        page, records = self._page(calls, body.get("cursor"), key)
        now = self.clock.now()
        return {"records": records, "calls": [self._render_call(c, selector, now) for c in page]}

    def _transcripts(self, query: JSON, body: JSON) -> JSON:
        flt = body.get("filter")
        if flt is None:
            raise ApiError(400, "Missing required field 'filter'")
        ids = _id_list(flt, "callIds") if isinstance(flt, dict) else None
        if ids is not None:
            if len(ids) > 100:
                raise ApiError(400, f"filter.callIds accepts at most 100 call ids, got {len(ids)}")
            with self._lock:
                for cid in ids:
                    meta = self.data.by_id.get(cid)
                    if meta is not None and meta.is_private and cid not in self._private_transcript_ids:
                        self._private_transcript_ids.append(cid)
        now = self.clock.now()
        calls = [c for c in self._select_calls(flt, with_owners=False) if c.transcript_at <= now]
        if not calls:
            raise ApiError(404, "No calls found corresponding to the provided filters")
        key = _filter_key("/v2/calls/transcript", {"filter": flt})
        page, records = self._page(calls, body.get("cursor"), key)
        answer = [{"callId": c.id, "transcript": self.data.transcript(c)} for c in page]
        with self._lock:
            strays, self._stray_transcripts = self._stray_transcripts, []
        answer += [{"callId": cid, "transcript": [{"speakerId": "1", "topic": None, "sentences": [
            {"start": 0, "end": 900, "text": "A sentence of a call nobody asked for."}]}]} for cid in strays]
        return {"records": records, "callTranscripts": answer}

    # ------------------------------------------------------------ rendering
    def _render_call(self, meta: CallMeta, selector: JSON, now: datetime) -> JSON:
        """Project a call document through a Gong contentSelector."""
        body = self.data.call_body(meta, self.data.revision(meta, now))
        edits = self._overrides.get(meta.id, {})
        meta_data = dict(body["metaData"])
        if "title" in edits:
            meta_data["title"] = edits["title"]
        meta_data.update(edits.get("metaData") or {})
        out: JSON = {"metaData": meta_data}
        ctx = selector.get("context") or "None"
        if ctx == "Extended":
            out["context"] = body["context"]
        elif ctx == "Basic":
            out["context"] = [{"system": c["system"], "objects": [
                {k: v for k, v in o.items() if k != "fields"} for o in c["objects"]]}
                for c in body["context"]]
        exposed = selector.get("exposedFields") or {}
        if exposed.get("parties"):
            out["parties"] = edits.get("parties", body["parties"])
        want = exposed.get("content") or {}
        content: JSON = {}
        for key in CONTENT_KEYS:
            if want.get(key):
                content[key] = edits.get(key, body["content"][key])
        if want.get("trackers"):
            trackers = edits.get("trackers", body["content"]["trackers"])
            if not want.get("trackerOccurrences"):
                trackers = [_strip_occurrences(t) for t in trackers]
            content["trackers"] = trackers
        if content:
            out["content"] = content
        want = exposed.get("interaction") or {}
        interaction = {dst: body["interaction"][dst] for src, dst in INTERACTION_KEYS.items() if want.get(src)}
        if interaction:
            out["interaction"] = interaction
        if (exposed.get("collaboration") or {}).get("publicComments"):
            out["collaboration"] = {"publicComments": body["collaboration"]["publicComments"]}
        if exposed.get("media"):
            out["media"] = _media_urls(meta.id, body["_video"], now)
        return out


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, FormPart] | None:
    """The parts of a multipart/form-data body by field name, or None when it is malformed."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart():
        return None
    parts: dict[str, FormPart] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            return None
        data = part.get_payload(decode=True)
        parts[name] = FormPart(part.get_filename(), part.get_content_type(), data if isinstance(data, bytes) else b"")
    return parts


def _strip_occurrences(tracker: JSON) -> JSON:
    out = {k: v for k, v in tracker.items() if k != "occurrences"}
    if "phrases" in out:
        out["phrases"] = [{k: v for k, v in p.items() if k != "occurrences"} for p in out["phrases"]]
    return out


def _media_urls(call_id: str, video: bool, now: datetime) -> JSON:
    """Presigned-looking media links; a fresh signature on every request."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")

    def url(name: str) -> str:
        return (f"https://gong-sim-media.s3.amazonaws.com/calls/{call_id}/{name}"
                f"?X-Amz-Date={stamp}&X-Amz-Expires=28800&X-Amz-Signature={secrets.token_hex(32)}")

    media = {"audioUrl": url("audio.mp3")}
    if video:
        media["videoUrl"] = url("video.mp4")
    return media


def _id_list(flt: JSON, name: str) -> list[str] | None:
    value = flt.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"filter.{name} must be a list of id strings")
    return value


def _filter_key(path: str, request: JSON) -> str:
    canon = json.dumps([path, request], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _encode_cursor(offset: int, key: str) -> str:
    raw = json.dumps({"o": offset, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: Any, key: str) -> int:
    try:
        if not isinstance(cursor, str):
            raise ValueError("cursor must be a string")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        if data["k"] != key or offset < 0:
            raise ValueError("cursor does not match this request")
        return offset
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as err:
        raise ApiError(400, "Invalid or expired cursor") from err


def _request_id(seed: int, n: int) -> str:
    digest = int(hashlib.sha1(f"{seed}:req:{n}".encode()).hexdigest(), 16)
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(19):
        digest, r = divmod(digest, 36)
        out.append(chars[r])
    return "".join(out)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(status: int, payload: JSON, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet on client disconnects."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GongSimulator/1.0"
    sim: GongSimulator

    def parse_request(self) -> bool:
        self.arrived = time.monotonic()  # the request line was just read: the request is here
        return super().parse_request()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        resp = self.sim.handle(self.command, self.path, headers, raw, getattr(self, "arrived", None))
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.fault == "reset":
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence access logs."""
