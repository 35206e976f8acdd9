"""The one place that knows HTTP and Gong's quirks.

`GongClient` authenticates (Basic or Bearer), shares one rate limiter between every thread that
uses it, keeps a daily request budget, retries 5xx and 429 with backoff while honouring
Retry-After, treats Gong's "No ... found" 404 as an empty result, pages with the cursor where Gong
expects it (query string on GET, JSON body on POST) and counts requests per endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

import requests

from .budget import BudgetLedger, SharedPace
from .limiter import SENDING, RateLimiter, stamping_session
from .settings import CALLS_CONTENT_SELECTOR, TRANSCRIPT_BATCH_SIZE

logger = logging.getLogger("gong_sync.client")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class GongError(Exception):
    """Base class of every error the Gong client raises; its message is meant for the user."""


class GongConfigError(GongError):
    """A setting or argument has a value no run can use (a malformed URL, a negative limit, a bad date)."""


class GongAuthError(GongError):
    """Gong refused the credentials (401) or the permission (403)."""


class GongApiError(GongError):
    """Gong answered in a way the client cannot continue from (unexpected 4xx, bad body, cursor loop)."""


class GongStopRun(GongError):
    """The run must stop early but cleanly: work already completed is kept.

    Raised when the daily request budget is spent or Gong asks to wait longer than the configured
    bound (typically because the company's daily quota is exhausted).
    """


class GongConnectionError(GongError):
    """Gong could not be reached after all retries."""


@dataclass
class ClientSettings:
    """Tunables of the client; defaults follow Gong's published limits."""

    rate_limit: Optional[float] = 3.0
    daily_budget: Optional[int] = 10_000
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0
    timeout_s: float = 60.0  # for Gong's answer once connected (a large page can take a while)
    connect_timeout_s: float = 10.0  # an address that never answers is reported soon, not after a minute


class GongClient:
    """A client for one Gong company: base URL, credentials, limits, and per-endpoint counters."""

    def __init__(
        self,
        base_url: str,
        access_key: Optional[str] = None,
        access_key_secret: Optional[str] = None,
        bearer_token: Optional[str] = None,
        settings: Optional[ClientSettings] = None,
        session: Optional[requests.Session] = None,
        limiter: Optional[RateLimiter] = None,
        sleep: Callable[[float], None] = time.sleep,
        ledger: Optional[BudgetLedger] = None,
    ) -> None:
        self.base_url = validate_base_url(base_url)
        self.settings = settings or ClientSettings()
        if bearer_token:
            self._auth_header = f"Bearer {bearer_token}"
        elif access_key and access_key_secret:
            token = base64.b64encode(f"{access_key}:{access_key_secret}".encode()).decode()
            self._auth_header = f"Basic {token}"
        else:
            raise GongAuthError(
                "No Gong credentials were given: set SOURCES__GONG__ACCESS_KEY and "
                "SOURCES__GONG__ACCESS_KEY_SECRET (or SOURCES__GONG__BEARER_TOKEN) in the environment "
                "or in .dlt/secrets.toml."
            )
        self._session = session or stamping_session()
        self._limiter = limiter or RateLimiter(self.settings.rate_limit)
        self._sleep = sleep
        # With a ledger the budget counts every request sent today, by earlier runs too.
        self.ledger = ledger
        # With a shared pace, the requests of every process of this company keep to the rate together.
        self.shared_pace: Optional[SharedPace] = None
        self._count_lock = threading.Lock()
        self.request_counts: Counter[str] = Counter()
        self.requests_used = 0
        self.stop_reason: Optional[str] = None
        # Set once a request got Gong's answer (or gave up); until then requests wait for `_first`.
        self._answered = threading.Event()
        self._first = threading.Lock()
        self._local = threading.local()  # per thread: whether its requests take the limiter's next turn
        self._refused: Optional[str] = None  # the 401 message: every later request fails the same way

    def __repr__(self) -> str:
        # Never show credentials, not even in a debugger or a traceback's locals.
        return f"GongClient(base_url={self.base_url!r})"

    @property
    def rate_limit(self) -> Optional[float]:
        """Requests per second the client's limiter allows, or None without a limit."""
        return self._limiter.rate

    @property
    def budget_left(self) -> Optional[int]:
        """Requests still allowed by the daily budget in this run, or None when unlimited."""
        if self.settings.daily_budget is None:
            return None
        used = self.ledger.used_today() if self.ledger else self.requests_used
        return max(0, self.settings.daily_budget - used)

    def request(self, method: str, path: str, params: Optional[dict[str, Any]] = None,
                body: Optional[dict[str, Any]] = None, label: Optional[str] = None) -> Optional[dict[str, Any]]:
        """Sends one logical request (with retries) and returns the JSON body, or None for "no records".

        Requests are counted under `label` (default: the path), e.g. a path template.
        """
        response = self.send(method, path, params=params, json_body=body, label=label)
        return self._answer(method, path, response.status_code, response.content, response.text)

    @contextlib.contextmanager
    def first_at_the_limiter(self, while_: Callable[[], bool]) -> Iterator[None]:
        """Within this block, this thread's requests take the limiter's next turn while `while_()` holds (the
        reader of pages of calls, while few of the reads that follow its pages wait)."""
        self._local.first = while_
        try:
            yield
        finally:
            self._local.first = None

    # ------------------------------------------------------------------------------ Gong's request bodies

    @staticmethod
    def calls_body(start: Any, end: Any, include_media: bool = False) -> dict[str, Any]:
        """The body of POST /v2/calls/extensive for the calls started in [start, end), with all their content
        (media only when asked: its presigned URLs expire within hours and change on every read)."""
        selector = copy.deepcopy(CALLS_CONTENT_SELECTOR)
        selector["exposedFields"]["media"] = bool(include_media)
        return {"filter": {"fromDateTime": _iso(start), "toDateTime": _iso(end)}, "contentSelector": selector}

    @staticmethod
    def call_ids_body(call_ids: list[str]) -> dict[str, Any]:
        """The body of the endpoints read per batch of calls (transcripts, access lists): up to 100 ids."""
        if len(call_ids) > TRANSCRIPT_BATCH_SIZE:
            raise ValueError(f"Gong takes at most {TRANSCRIPT_BATCH_SIZE} call ids a request, not {len(call_ids)}")
        return {"filter": {"callIds": list(call_ids)}}

    @staticmethod
    def is_private(call: dict[str, Any]) -> bool:
        """Whether Gong marks a call (an /v2/calls/extensive record) private: integrators must not sync it,
        nor send it to the transcript endpoint."""
        return bool((call.get("metaData") or {}).get("isPrivate"))

    def list_pages(self, method: str, path: str, data_key: str, filters: dict[str, Any],
                   body: Optional[dict[str, Any]] = None,
                   query: Optional[dict[str, Any]] = None) -> Iterator[list[Any]]:
        """The records of every page of a list endpoint: a GET takes `filters` (and `query`) in the query
        string, a POST in the body's `filter` (beside `body`); `{name}` in the path takes the filter of that
        name. Requests are counted under the path as written."""
        label, filters = path, dict(filters)
        for name in [k for k in filters if "{" + k + "}" in path]:
            path = path.replace("{" + name + "}", str(filters.pop(name)))
        if method == "GET":
            return self.paginate("GET", path, data_key, params={**(query or {}), **filters} or None, label=label)
        return self.paginate("POST", path, data_key, body={**copy.deepcopy(body or {}), "filter": filters},
                             label=label)

    def count_calls(self, start: Any, end: Any, include_media: bool = False) -> tuple[int, Optional[dict[str, Any]]]:
        """How many calls Gong has for [start, end) (it announces the total on every page), and the answer,
        which is the first page of a read of that range (to be given to it: `pages(first=...)`)."""
        payload = self.request("POST", "/v2/calls/extensive", body=self.calls_body(start, end, include_media))
        if payload is None:
            return 0, None
        paging = payload.get("records") or {}
        return int(paging.get("totalRecords") or len(payload.get("calls") or [])), payload

    def _answer(self, method: str, path: str, status: int, content: bytes,
                text: Optional[str] = None) -> Optional[dict[str, Any]]:
        if status == 200:
            return self._json(content, path)
        if status == 404 and _is_empty_result(content):
            return None
        if _is_html(content):
            raise GongApiError(f"The answer to {method} {path} is HTTP {status} with a web page, not Gong's JSON: is "
                               f"SOURCES__GONG__BASE_URL ({self.base_url}) your company's Gong API address, e.g. "
                               "https://us-12345.api.gong.io?")
        raise GongApiError(
            f"Gong answered HTTP {status} for {method} {path}: {_error_text(content, text)}"
            + (" (is SOURCES__GONG__BASE_URL right?)" if status == 404 else "")
        )

    def send(self, method: str, path: str, params: Optional[dict[str, Any]] = None, json_body: Any = None,
             files: Optional[dict[str, tuple[str, bytes, str]]] = None,
             label: Optional[str] = None) -> requests.Response:
        """Sends one logical request and returns Gong's final answer, whatever its status.

        Auth, the budget, the limiter and the retries (429 with Retry-After, 5xx, connection errors) apply
        as for `request`; 401/403 raise GongAuthError. For answers `request` does not take: a 201, a 409,
        a JSON array body, a multipart upload (`files`: {field: (file name, bytes, content type)}).
        """
        if not self._answered.is_set():
            # Until Gong answered once, requests go one at a time: with bad credentials a run sends one.
            with self._first:
                if not self._answered.is_set():
                    try:
                        return self._send(method, path, params, json_body, files, label)
                    finally:
                        self._answered.set()
        return self._send(method, path, params, json_body, files, label)

    def _send(self, method: str, path: str, params: Optional[dict[str, Any]], json_body: Any,
              files: Optional[dict[str, tuple[str, bytes, str]]], label: Optional[str]) -> requests.Response:
        url = self.base_url + path
        attempt = 0
        while True:
            if self._refused:
                raise GongAuthError(self._refused)
            self._spend(label or path)
            ahead = getattr(self._local, "first", None)
            stamp = self._limiter.acquire(first=bool(ahead is not None and ahead()))
            if self.shared_pace is not None and self._limiter.rate:
                self.shared_pace.take(self._limiter.window_s, self._limiter.burst, self._limiter.margin)
                self._limiter.sent(stamp)
            logger.debug("%s %s params=%s body=%s", method, path, params,
                         json_body if files is None else f"<multipart {sorted(files)}>")
            SENDING.mark = functools.partial(self._limiter.sent, stamp)
            try:
                response = self._session.request(
                    method, url, params=params, json=json_body, files=files,
                    timeout=(self.settings.connect_timeout_s, self.settings.timeout_s),
                    headers={"Authorization": self._auth_header, "Accept": "application/json"},
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # ChunkedEncodingError: the connection broke in the middle of the answer's body.
                attempt += 1
                reason = _connection_reason(exc)
                if attempt > self.settings.max_retries:
                    raise GongConnectionError(
                        f"Gong at {self.base_url} could not be reached ({reason}) after {attempt} attempts: check "
                        "SOURCES__GONG__BASE_URL and the network."
                    ) from None
                wait = self._backoff(attempt)
                if attempt == 1 and isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    logger.warning("Gong's answer for %s broke off in the middle: asking again (up to %d more times)",
                                   path, self.settings.max_retries)
                elif attempt == 1:  # said at once: the retries can take a minute
                    retries = self.settings.max_retries
                    total = sum(self._backoff(n) for n in range(1, retries + 1))
                    logger.warning("Gong at %s cannot be reached (%s): retrying %s %d more times over about %.0f s "
                                   "(check SOURCES__GONG__BASE_URL and the network)", self.base_url, reason, path,
                                   retries, total)
                else:
                    logger.info("Gong at %s still cannot be reached (%s): attempt %d of %d in %.0f s", self.base_url,
                                reason, attempt + 1, self.settings.max_retries + 1, wait)
                self._sleep(wait)
                continue
            finally:
                SENDING.mark = None
            status = response.status_code
            logger.debug("%s %s -> %s", method, path, status)
            if status in (401, 403):
                message = (
                    f"Gong refused the request to {path} with HTTP {status}: check "
                    "SOURCES__GONG__ACCESS_KEY / SOURCES__GONG__ACCESS_KEY_SECRET (or the bearer token) "
                    "and that the key has access to this endpoint."
                )
                if status == 401:  # the credentials themselves: no later request can succeed
                    self._refused = message
                raise GongAuthError(message)
            if status in RETRYABLE_STATUSES:
                attempt += 1
                wait = self._retry_wait(response, attempt)
                if attempt > self.settings.max_retries:
                    raise self._stop_run(
                        f"Gong kept answering HTTP {status} for {path} after {attempt} attempts; "
                        "the run stopped and kept the work it had completed: run it again later."
                    )
                if wait > self.settings.max_retry_after_s:
                    raise self._stop_run(
                        f"Gong asked to wait {wait:.0f} s before calling {path} again (the daily quota is "
                        "probably spent); the run stopped and kept the work it had completed: run it again later."
                    )
                if status == 429:
                    # Every thread (and process) waits the Retry-After out, then the limiter spaces them again.
                    self._limiter.hold(wait)
                    if self.shared_pace is not None:
                        self.shared_pace.hold(wait)
                    if wait <= self._limiter.window_s + 1:
                        self._limiter.widen()  # a rate 429 (not the daily quota): leave more room from now on
                logger.info("Gong answered %s for %s; retrying in %.1f s", status, path, wait)
                self._sleep(wait)
                continue
            return response

    def paginate(self, method: str, path: str, data_key: str, params: Optional[dict[str, Any]] = None,
                 body: Optional[dict[str, Any]] = None, label: Optional[str] = None) -> Iterator[list[Any]]:
        """Yields the `data_key` list of every page (see `pages`)."""
        for records, _ in self.pages(method, path, data_key, params=params, body=body, label=label):
            yield records

    def pages(self, method: str, path: str, data_key: str, params: Optional[dict[str, Any]] = None,
              body: Optional[dict[str, Any]] = None, label: Optional[str] = None,
              decode: Optional[Callable[[bytes], Optional[tuple[Any, dict[str, Any]]]]] = None,
              first: Optional[dict[str, Any]] = None) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Yields `(records, paging)` of every page that has records; the cursor goes in the query (GET) or
        in the JSON body (POST), as Gong expects, and a cursor seen twice stops the read with an error.

        An answer whose `data_key` holds one object (not a list) is one page of one record. `decode` may read
        a successful answer faster than JSON into Python objects (e.g. into an Arrow table): it returns the
        records and the answer's `records` part, or None to have the answer decoded as usual. `first` is the
        first page's answer when it was received already (it is not asked again).

        dlt's RESTClient and its JSONResponseCursorPaginator page the same way; this loop stays because it
        hands the raw answer to `decode` (RESTClient decodes every answer as JSON first: twice the work for
        the largest answers, the transcripts), and stops on a repeated cursor (dlt's paginator would loop).
        """
        seen: set[str] = set()
        cursor: Optional[str] = None
        while True:
            page_params = dict(params or {})
            page_body = dict(body) if body is not None else None
            if cursor:
                if method == "GET":
                    page_params["cursor"] = cursor
                else:
                    page_body = {**(page_body or {}), "cursor": cursor}
            decoded = None
            if first is not None:
                payload, first = first, None
            else:
                response = self.send(method, path, params=page_params or None, json_body=page_body, label=label)
                if decode is not None and response.status_code == 200:
                    decoded = decode(response.content)
                payload = None if decoded is not None else self._answer(
                    method, path, response.status_code, response.content, response.text)
            if decoded is not None:
                records, paging = decoded
            else:
                if payload is None:
                    return
                records = payload.get(data_key)
                if records is None:
                    records = []
                if isinstance(records, dict):
                    records = [records]
                if not isinstance(records, list):
                    raise GongApiError(f"Gong's answer to {path} has no list under '{data_key}'.")
                paging = payload.get("records") or {}
            cursor = paging.get("cursor")
            if len(records):
                yield records, paging
            if not cursor:
                return
            if cursor in seen:
                raise GongApiError(
                    f"Gong returned the same paging cursor twice for {path}; stopped paging to avoid a loop."
                )
            seen.add(cursor)

    def close(self) -> None:
        """Closes the HTTP connections this client opened."""
        self._session.close()

    def stop(self, reason: str) -> None:
        """Marks the run as stopping: every later request raises GongStopRun with `reason`."""
        with self._count_lock:
            if self.stop_reason is None:
                self.stop_reason = reason

    def _stop_run(self, reason: str) -> GongStopRun:
        self.stop(reason)
        return GongStopRun(self.stop_reason or reason)

    def _spend(self, path: str) -> None:
        with self._count_lock:
            if self.stop_reason is not None:
                raise GongStopRun(self.stop_reason)
            budget = self.settings.daily_budget
            if self.ledger:
                spent = self.ledger.spend(budget=budget) is None
            else:
                spent = budget is not None and self.requests_used >= budget
            if spent:
                self.stop_reason = (
                    f"The daily request budget of {budget} requests is spent; the run stopped and kept the "
                    "work it had completed: run it again after midnight UTC, or give it a larger share "
                    "(--max-requests-per-day, SOURCES__GONG__DAILY_BUDGET)."
                )
                raise GongStopRun(self.stop_reason)
            self.requests_used += 1
            self.request_counts[path] += 1

    def _backoff(self, attempt: int) -> float:
        return min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt - 1))

    def _retry_wait(self, response: requests.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                return max(0.0, float(header))
            except ValueError:
                pass
        return self._backoff(attempt)

    def _json(self, content: bytes, path: str) -> dict[str, Any]:
        try:
            payload = json.loads(content)
        except ValueError:
            if _is_html(content):
                raise GongApiError(f"The answer to {path} is a web page, not Gong's JSON: is SOURCES__GONG__BASE_URL "
                                   f"({self.base_url}) your company's Gong API address, e.g. "
                                   "https://us-12345.api.gong.io?") from None
            raise GongApiError(f"Gong's answer to {path} is not valid JSON ({len(content)} bytes, perhaps cut off on "
                               "the way): the work completed so far is kept; run again.") from None
        if not isinstance(payload, dict):
            raise GongApiError(f"Gong's answer to {path} is not a JSON object.")
        return payload


def validate_base_url(base_url: Optional[str]) -> str:
    """Returns the base URL without a trailing slash or `/v2`, or raises GongError naming the problem."""
    if not base_url or not str(base_url).strip():
        raise GongError(
            "No Gong base URL is configured: set SOURCES__GONG__BASE_URL (e.g. https://us-12345.api.gong.io)."
        )
    url = str(base_url).strip().rstrip("/")
    if url.endswith("/v2"):
        url = url[:-3]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise GongConfigError(
            f"SOURCES__GONG__BASE_URL must be an http(s) URL like https://us-12345.api.gong.io, not {url!r}."
        )
    return url


def _iso(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _is_html(content: bytes) -> bool:
    """True for an answer that is a web page (a proxy's or a web server's), not an API's JSON."""
    head = content.lstrip()[:200].lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html") or (head.startswith(b"<") and
                                                                                b"<body" in content[:2000].lower())


def _connection_reason(exc: Exception) -> str:
    """What went wrong with the connection, in a few words (requests' own message repeats the whole URL)."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke in the middle of the answer"
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    if found:
        return found[-1].strip().rstrip(".")
    for known in ("Connection refused", "Name or service not known", "Connection reset", "Remote end closed"):
        if known.lower() in str(exc).lower():
            return known
    return type(exc).__name__


def _is_empty_result(content: bytes) -> bool:
    """True for Gong's "No <things> found corresponding to the provided filters" 404 body."""
    try:
        payload = json.loads(content)
    except ValueError:
        return False
    errors = payload.get("errors") if isinstance(payload, dict) else None
    return bool(errors) and any(isinstance(e, str) and e.lower().startswith("no ") and "found" in e.lower()
                                for e in errors)


def _error_text(content: bytes, text: Optional[str] = None) -> str:
    try:
        payload = json.loads(content)
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            return "; ".join(str(e) for e in errors)[:300]
    except ValueError:
        pass
    if text is None:
        text = content.decode("utf-8", errors="replace")
    return (text or "").strip()[:200] or "no details"
