"""Read endpoints beyond calls, transcripts, users, workspaces and scorecards.

Each handler takes ``(query, body)`` and returns the JSON payload (``requestId`` is added by the
server). Semantics follow Gong: GET pages with ``cursor`` in the query, POST with ``cursor`` in
the body; date-only filters are in the company time zone (``SimConfig.company_timezone``), from
inclusive and to exclusive; an empty filtered list is a 404 "No ... found" where the spec lists a
404 for the endpoint, else an empty 200.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from simulator.clock import parse_iso
from simulator.data import iso
from simulator.read_data import COACHING_METRICS, HORIZON, IMPERSONATOR, LOG_TYPES, STAT_FIELDS, ReadData
from simulator.server import ApiError, _filter_key

if TYPE_CHECKING:
    from simulator.server import GongSimulator

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
JSON = dict[str, Any]
PERIODS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def routes(sim: GongSimulator) -> dict[str, dict[str, Handler]]:
    """Returns this module's routes: {path: {method: handler(query, body) -> JSON payload}}."""
    ep = ReadEndpoints(sim)
    return {
        "/v2/settings/trackers": {"GET": ep.trackers},
        "/v2/stats/activity/scorecards": {"POST": ep.answered_scorecards},
        "/v2/stats/interaction": {"POST": ep.interaction},
        "/v2/stats/activity/day-by-day": {"POST": ep.day_by_day},
        "/v2/stats/activity/aggregate": {"POST": ep.aggregate},
        "/v2/stats/activity/aggregate-by-period": {"POST": ep.aggregate_by_period},
        "/v2/library/folders": {"GET": ep.library_folders},
        "/v2/library/folder-content": {"GET": ep.folder_content},
        "/v2/all-permission-profiles": {"GET": ep.permission_profiles},
        "/v2/permission-profile/users": {"GET": ep.profile_users},
        "/v2/logs": {"GET": ep.logs},
        "/v2/calls/manual-crm-associations": {"GET": ep.manual_associations},
        "/v2/users/{id}/settings-history": {"GET": ep.settings_history},
        "/v2/flows": {"GET": ep.flows},
        "/v2/coaching": {"GET": ep.coaching},
        "/v2/calls/users-access": {"POST": ep.users_access},
    }


# --------------------------------------------------------------------------- request parsing
def _filter(body: JSON, required: bool = True) -> JSON:
    flt = body.get("filter")
    if flt is None and not required:
        return {}
    if not isinstance(flt, dict):
        raise ApiError(400, "Missing required field 'filter' (a JSON object)")
    return flt


def _date(flt: JSON, name: str, required: bool = False) -> date | None:
    value = flt.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"filter.{name} is required (a date in YYYY-MM-DD format)")
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise ApiError(400, f"filter.{name} must be a date in YYYY-MM-DD format, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise ApiError(400, f"filter.{name} is not a valid date: {value!r}") from err


def _date_pair(flt: JSON, lo: str, hi: str, required: bool = False) -> tuple[date | None, date | None]:
    a, b = _date(flt, lo, required), _date(flt, hi, required)
    if a is not None and b is not None and a >= b:
        raise ApiError(400, f"filter.{lo} ({a}) must be before filter.{hi} ({b}): {hi} is exclusive, "
                            f"so one day D is {lo}=D and {hi}=D+1")
    return a, b


def _ids(flt: JSON, name: str) -> list[str] | None:
    value = flt.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"filter.{name} must be a list of id strings")
    return value


def _instant(query: JSON, name: str, required: bool = False) -> datetime | None:
    value = query.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(400, f"Missing required parameter '{name}' (ISO-8601 date-time)")
        return None
    try:
        return parse_iso(value)
    except (TypeError, ValueError) as err:
        raise ApiError(400, f"Parameter '{name}' must be an ISO-8601 date-time, got {value!r}") from err


def _required(query: JSON, name: str) -> str:
    value = query.get(name)
    if not value:
        raise ApiError(400, f"Missing required parameter '{name}'")
    return str(value)


def _get_key(path: str, query: JSON) -> str:
    return _filter_key(path, {k: v for k, v in query.items() if k not in ("cursor", "_path")})


def _post_key(path: str, body: JSON) -> str:
    return _filter_key(path, {k: v for k, v in body.items() if k != "cursor"})


def _period_start(d: date, period: str) -> date:
    if period == "WEEK":
        return d - timedelta(days=d.weekday())
    if period == "MONTH":
        return d.replace(day=1)
    if period == "QUARTER":
        return d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    if period == "YEAR":
        return d.replace(month=1, day=1)
    return d


def _period_next(d: date, period: str) -> date:
    if period == "DAY":
        return d + timedelta(days=1)
    if period == "WEEK":
        return d + timedelta(days=7)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[period]
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


class ReadEndpoints:
    """Handlers for the read endpoints; data comes from :class:`ReadData`."""

    def __init__(self, sim: GongSimulator) -> None:
        self.sim = sim
        self.rd = ReadData(sim)

    # ------------------------------------------------------------ shared
    def _user_ref(self, user_id: str) -> JSON:
        u = self.sim.data.user_by_id[user_id]
        return {"userId": user_id, "userEmailAddress": u["emailAddress"]}

    def _workspace(self, ws: str | None, param: str = "workspaceId") -> None:
        if ws and ws not in {w["id"] for w in self.sim.data.workspaces}:
            raise ApiError(400, f"Unknown {param} {ws!r}")

    def _stats_request(self, body: JSON) -> tuple[date, date, datetime, datetime, set[str] | None]:
        """Validate a MultipleUsersWithDates filter; return local dates and the UTC window."""
        flt = _filter(body)
        frm, to = _date_pair(flt, "fromDate", "toDate", required=True)
        assert frm is not None and to is not None
        today = self.rd.today()
        if to > today:
            raise ApiError(400, f"filter.toDate ({to}) must not exceed the current day ({today}, "
                                f"{self.sim.config.company_timezone}); toDate is exclusive")
        for name in ("createdFromDateTime", "createdToDateTime"):
            if flt.get(name) is not None:
                _instant(flt, name)
        ids = _ids(flt, "userIds")
        return frm, to, self.rd.local_midnight(frm), self.rd.local_midnight(to), None if ids is None else set(ids)

    def _page(self, path: str, key_src: JSON, items: list[Any], cursor: Any, post: bool) -> tuple[list[Any], JSON]:
        key = _post_key(path, key_src) if post else _get_key(path, key_src)
        return self.sim._page(items, cursor or None, key)

    # ------------------------------------------------------------ settings
    def trackers(self, query: JSON, body: Any) -> JSON:
        """GET /v2/settings/trackers?workspaceId= : keyword trackers (all workspaces when omitted)."""
        ws = query.get("workspaceId") or None
        rows = [t for t in self.rd.trackers() if ws is None or t["workspaceId"] == ws]
        if not rows:
            raise ApiError(404, "No trackers found corresponding to the provided filters")
        return {"keywordTrackers": rows}

    # ------------------------------------------------------------ answered scorecards
    def answered_scorecards(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/stats/activity/scorecards: answered scorecards by review/call date, card, reviewee."""
        flt = _filter(body)
        call_from, call_to = _date_pair(flt, "callFromDate", "callToDate")
        rev_from, rev_to = _date_pair(flt, "reviewFromDate", "reviewToDate")
        cards = _ids(flt, "scorecardIds")
        reviewed = _ids(flt, "reviewedUserIds")
        rd = self.rd
        c_lo = rd.local_midnight(call_from) if call_from else None
        c_hi = rd.local_midnight(call_to) if call_to else None
        r_lo = rd.local_midnight(rev_from) if rev_from else None
        r_hi = rd.local_midnight(rev_to) if rev_to else None
        scan_lo = max([t for t in (c_lo, r_lo - HORIZON if r_lo else None) if t is not None], default=None)
        scan_hi = min([t for t in (c_hi, r_hi) if t is not None], default=None)
        card_set = set(cards) if cards is not None else None
        user_set = set(reviewed) if reviewed is not None else None
        rows = []
        for when, meta, card in rd.answered_scorecards(rd.calls_started(scan_lo, scan_hi)):
            if (c_lo and meta.started < c_lo) or (c_hi and meta.started >= c_hi):
                continue
            if (r_lo and when < r_lo) or (r_hi and when >= r_hi):
                continue
            if card_set is not None and str(card["scorecardId"]) not in card_set:
                continue
            if user_set is not None and meta.primary_user_id not in user_set:
                continue
            rows.append(card)
        if not rows:
            raise ApiError(404, "No answered scorecards found corresponding to the provided filters")
        page, records = self._page("/v2/stats/activity/scorecards", body, rows, body.get("cursor"), True)
        return {"records": records, "answeredScorecards": page}

    # ------------------------------------------------------------ stats
    def interaction(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/stats/interaction: per-user interaction stats over the calls they hosted."""
        _, _, lo, hi, users = self._stats_request(body)
        stats = self.rd.interaction(lo, hi, users)
        rows = [{**self._user_ref(u["id"]), "personInteractionStats": stats[u["id"]]}
                for u in self.rd.users if u["id"] in stats]
        if not rows:
            raise ApiError(404, "No interaction stats found corresponding to the provided filters")
        page, records = self._page("/v2/stats/interaction", body, rows, body.get("cursor"), True)
        return {"records": records, "peopleInteractionStats": page, **self._window(lo, hi)}

    def _window(self, lo: datetime, hi: datetime) -> JSON:
        return {"timeZone": self.sim.config.company_timezone, "fromDateTime": self.rd.local_iso(lo),
                "toDateTime": self.rd.local_iso(hi)}

    def _active(self, body: JSON) -> tuple[date, date, datetime, datetime, list[tuple[str, Any]]]:
        frm, to, lo, hi, users = self._stats_request(body)
        act = self.rd.activity(lo, hi, users)
        active = [(u["id"], act[u["id"]]) for u in self.rd.users if u["id"] in act]
        if not active:
            raise ApiError(404, "No activity found corresponding to the provided filters")
        return frm, to, lo, hi, active

    def day_by_day(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/stats/activity/day-by-day: per user, one entry of call-id lists per day."""
        frm, to, _, _, active = self._active(body)
        days = [frm + timedelta(days=i) for i in range((to - frm).days)]
        rows = []
        for uid, per_day in active:
            stats = []
            for d in days:
                cell = per_day.get(d, {})
                stats.append({**{f: sorted(cell.get(f, ())) for f in STAT_FIELDS},
                              "fromDate": self.rd.local_iso(self.rd.local_midnight(d)),
                              "toDate": self.rd.local_iso(self.rd.local_midnight(d + timedelta(days=1)))})
            rows.append({**self._user_ref(uid), "userDailyActivityStats": stats})
        page, records = self._page("/v2/stats/activity/day-by-day", body, rows, body.get("cursor"), True)
        return {"records": records, "usersDetailedActivities": page}

    def aggregate(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/stats/activity/aggregate: per user, distinct-call counts over the whole range."""
        _, _, lo, hi, active = self._active(body)
        rows = [{**self._user_ref(uid), "userAggregateActivityStats": _counts(per_day.values())}
                for uid, per_day in active]
        page, records = self._page("/v2/stats/activity/aggregate", body, rows, body.get("cursor"), True)
        return {"records": records, "usersAggregateActivityStats": page, **self._window(lo, hi)}

    def aggregate_by_period(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/stats/activity/aggregate-by-period: counts per calendar period (weeks start Monday)."""
        period = body.get("aggregationPeriod")
        if period not in PERIODS:
            raise ApiError(400, f"aggregationPeriod must be one of {', '.join(PERIODS)}, got {period!r}")
        frm, to, _, _, active = self._active(body)
        spans = []
        start = frm
        while start < to:
            end = min(_period_next(_period_start(start, period), period), to)
            spans.append((start, end))
            start = end
        rows = []
        for uid, per_day in active:
            items = []
            for a, b in spans:
                counts = _counts(v for d, v in per_day.items() if a <= d < b)
                items.append({**counts, "fromDate": self.rd.local_iso(self.rd.local_midnight(a)),
                              "toDate": self.rd.local_iso(self.rd.local_midnight(b))})
            rows.append({**self._user_ref(uid), "userAggregateActivity": items})
        page, records = self._page("/v2/stats/activity/aggregate-by-period", body, rows, body.get("cursor"), True)
        return {"records": records, "usersAggregateActivity": page}

    # ------------------------------------------------------------ library
    def _folder_out(self, folder: JSON) -> JSON:
        calls = self.rd.folder_calls(folder)
        updated = max([folder["_created"], *(added for added, _, _ in calls)])
        return {k: v for k, v in folder.items() if not k.startswith("_")} | {"updated": iso(updated)}

    def library_folders(self, query: JSON, body: Any) -> JSON:
        """GET /v2/library/folders?workspaceId= : the folder tree (all workspaces when omitted)."""
        ws = query.get("workspaceId") or None
        rows = [self._folder_out(f) for f in self.rd.folders() if ws is None or f["_workspaceId"] == ws]
        if not rows:
            raise ApiError(404, "No folders found corresponding to the provided filters")
        return {"folders": rows}

    def folder_content(self, query: JSON, body: Any) -> JSON:
        """GET /v2/library/folder-content?folderId= : the calls in a folder, oldest addition first."""
        fid = _required(query, "folderId")
        folder = next((f for f in self.rd.folders() if f["id"] == fid), None)
        if folder is None:
            raise ApiError(404, f"No folder found with id {fid}")
        calls = []
        for added, meta, (_, _, by, note, snippet) in self.rd.folder_calls(folder):
            row: JSON = {"id": meta.id, "title": self.rd.title(meta), "note": note, "addedBy": by,
                         "created": iso(added), "url": f"https://app.gong.io/call?id={meta.id}"}
            if snippet:
                row["snippet"] = dict(snippet)
            calls.append(row)
        out = self._folder_out(folder)
        out.pop("parentFolderId", None)
        return {**out, "calls": calls}

    # ------------------------------------------------------------ permission profiles
    def permission_profiles(self, query: JSON, body: Any) -> JSON:
        """GET /v2/all-permission-profiles?workspaceId= (required)."""
        ws = _required(query, "workspaceId")
        self._workspace(ws)
        return {"profiles": [{k: v for k, v in p.items() if not k.startswith("_")}
                             for p in self.rd.profiles() if p["_workspaceId"] == ws]}

    def profile_users(self, query: JSON, body: Any) -> JSON:
        """GET /v2/permission-profile/users?profileId= (required)."""
        pid = _required(query, "profileId")
        profile = next((p for p in self.rd.profiles() if p["id"] == pid), None)
        if profile is None:
            raise ApiError(400, f"Unknown profileId {pid!r}")
        users = self.sim.data.user_by_id
        return {"users": [{"id": uid, "fullName": self.rd.full_name(uid), "emailAddress": users[uid]["emailAddress"]}
                          for uid in profile["_users"]]}

    # ------------------------------------------------------------ logs
    def logs(self, query: JSON, body: Any) -> JSON:
        """GET /v2/logs?logType=&fromDateTime=&toDateTime=&cursor= (from inclusive, to exclusive)."""
        log_type = query.get("logType")
        if not log_type:
            raise ApiError(400, f"Missing required parameter 'logType' (one of {', '.join(LOG_TYPES)})")
        if log_type not in LOG_TYPES:
            raise ApiError(400, f"logType must be one of {', '.join(LOG_TYPES)}, got {log_type!r}")
        lo = _instant(query, "fromDateTime", required=True)
        hi = _instant(query, "toDateTime") or datetime.max.replace(tzinfo=UTC)
        assert lo is not None
        if lo >= hi:
            raise ApiError(400, "fromDateTime must be before toDateTime (toDateTime is exclusive)")
        events = self.rd.logs(log_type, lo, hi)
        if not events:
            raise ApiError(404, "No logs found corresponding to the provided filters")
        page, records = self._page("/v2/logs", query, events, query.get("cursor"), False)
        users = self.sim.data.user_by_id
        out = []
        for e in page:
            entry: JSON = {}
            if e.user_id:
                entry.update({"userId": e.user_id, "userEmailAddress": users[e.user_id]["emailAddress"],
                              "userFullName": self.rd.full_name(e.user_id)})
            elif e.email:
                entry["userEmailAddress"] = e.email
            record = dict(e.log)
            if record.pop("impersonated", False):
                entry.update(IMPERSONATOR)
            entry["eventTime"] = self.rd.local_iso(e.time)
            entry["logRecord"] = record
            out.append(entry)
        return {"records": records, "logEntries": out}

    # ------------------------------------------------------------ manual CRM associations
    def manual_associations(self, query: JSON, body: Any) -> JSON:
        """GET /v2/calls/manual-crm-associations?fromDateTime=&cursor= : ascending; empty is a 200."""
        lo = _instant(query, "fromDateTime")
        rows = [{"callId": meta.id, "userId": uid, "created": iso(t),
                 "associatedCrmObjects": [{"accountCrmId": account, "dealCrmId": deal}]}
                for t, meta, uid, account, deal in self.rd.associations(lo)]
        page, records = self._page("/v2/calls/manual-crm-associations", query, rows, query.get("cursor"), False)
        return {"records": records, "associations": page}

    # ------------------------------------------------------------ opt-in, per entity
    def settings_history(self, query: JSON, body: Any) -> JSON:
        """GET /v2/users/{id}/settings-history : changes up to now, oldest first."""
        uid = (query.get("_path") or {}).get("id", "")
        user = self.sim.data.user_by_id.get(uid)
        if user is None:
            raise ApiError(404, f"No user found with id {uid}")
        now = self.sim.clock.now()
        return {"userSettingsHistory": [{"setting": s, "value": v, "time": iso(t)}
                                        for t, s, v in self.rd.settings_history(user) if t <= now]}

    def flows(self, query: JSON, body: Any) -> JSON:
        """GET /v2/flows?flowOwnerEmail=&workspaceId=&cursor= : company + the user's own/shared flows."""
        email = _required(query, "flowOwnerEmail").lower()
        user = next((u for u in self.rd.users if u["emailAddress"].lower() == email), None)
        if user is None:
            raise ApiError(400, f"No Gong user with email {email!r}")
        ws = query.get("workspaceId") or None
        self._workspace(ws)
        rows = [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.rd.flows()
                if (ws is None or f["_workspaceId"] == ws)
                and (f["visibility"] == "Company" or f["_owner"] == user["id"] or user["id"] in f["_sharedWith"])]
        page, records = self._page("/v2/flows", query, rows, query.get("cursor"), False)
        return {"records": records, "flows": page}

    def coaching(self, query: JSON, body: Any) -> JSON:
        """GET /v2/coaching?workspace-id=&manager-id=&from=&to= : what a manager did on each report's calls."""
        ws = _required(query, "workspace-id")
        mid = _required(query, "manager-id")
        if not ws.isdigit() or not mid.isdigit():
            raise ApiError(400, "'workspace-id' and 'manager-id' must be numeric ids")
        self._workspace(ws, "workspace-id")
        lo, hi = _instant(query, "from", required=True), _instant(query, "to", required=True)
        assert lo is not None and hi is not None
        if lo >= hi:
            raise ApiError(400, "'from' must be before 'to' ('to' is exclusive)")
        users = self.sim.data.user_by_id
        if mid not in users:
            raise ApiError(400, f"Unknown manager-id {mid}")
        reports = [u["id"] for u in self.rd.users if u.get("managerId") == mid and u["id"] != mid]
        if not reports:
            return {"coachingData": []}
        now = self.sim.clock.now()
        metrics: dict[str, dict[str, set[str]]] = {r: {m: set() for m in COACHING_METRICS} for r in reports}
        for meta in self.rd.calls_with_events(lo, hi):
            host = meta.primary_user_id
            if host not in metrics or meta.workspace_id != ws or not self.rd.alive(meta, now):
                continue
            for e in self.rd.call_events(meta, lo):
                if e.coaching and e.user_id == mid and lo <= e.time < hi and e.time <= now:
                    metrics[host][e.coaching].add(e.call_id)

        def person(uid: str) -> JSON:
            u = users[uid]
            return {"id": uid, "emailAddress": u["emailAddress"], "firstName": u["firstName"],
                    "lastName": u["lastName"], "title": u["title"]}

        return {"coachingData": [{"manager": person(mid), "directReportsMetrics": [
            {"report": person(r), "metrics": {k: sorted(v) for k, v in metrics[r].items()}} for r in reports]}]}

    def users_access(self, query: JSON, body: JSON) -> JSON:
        """POST /v2/calls/users-access {filter: {callIds}} : users given individual access to each call."""
        flt = _filter(body)
        ids = _ids(flt, "callIds")
        if ids is None:
            raise ApiError(400, "filter.callIds is required (a list of call id strings)")
        now = self.sim.clock.now()
        out = []
        for cid in dict.fromkeys(ids):
            meta = self.sim.data.by_id.get(cid)
            if meta is None or not self.rd.alive(meta, now):
                continue
            out.append({"callId": cid, "users": [{"userId": u} for u in self.rd.access_grants(meta)]})
        return {"callAccessList": out}


def _counts(cells: Any) -> JSON:
    """Distinct-call counts per stat field over several day cells."""
    merged: dict[str, set[str]] = {f: set() for f in STAT_FIELDS}
    for cell in cells:
        for f, ids in cell.items():
            merged[f] |= ids
    return {f: len(merged[f]) for f in STAT_FIELDS}
