"""Deterministic data behind the read endpoints (stats, scorecard answers, logs, library, ...).

Everything derives from the existing :class:`~simulator.data.Dataset` (same seed, users, calls,
workspaces, scorecards). Per-call facts are generated lazily from per-call RNGs and cached:

* *extras* (cheap, RNG only): listens, shares, feedback, answered scorecards, manual CRM
  associations, library placement, individual access grants, each with the instant it happens
  (always after the call became visible, so data keeps appearing as the clock moves);
* *facts* (built once from the call body): internal attendees, comments, interaction stats,
  title, account and opportunity ids.

Activity stats are computed from these events, so they are consistent with the calls endpoint
(e.g. ``callsAsHost`` counts the calls whose ``primaryUserId`` is the user).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from simulator.data import FIRST_NAMES, TRACKERS, CallMeta, iso, make_id, sentence, tracker_id

if TYPE_CHECKING:
    from simulator.server import GongSimulator

JSON = dict[str, Any]

STAT_FIELDS = (
    "callsAsHost", "callsGaveFeedback", "callsRequestedFeedback", "callsReceivedFeedback",
    "ownCallsListenedTo", "othersCallsListenedTo", "callsSharedInternally", "callsSharedExternally",
    "callsScorecardsFilled", "callsScorecardsReceived", "callsAttended", "callsCommentsGiven",
    "callsCommentsReceived", "callsMarkedAsFeedbackGiven", "callsMarkedAsFeedbackReceived",
)
LOG_TYPES = ("AccessLog", "UserActivityLog", "UserCallPlay", "ExternallySharedCallAccess",
             "ExternallySharedCallPlay")
INTERACTION_NAMES = ("Longest Monologue", "Longest Customer Story", "Interactivity", "Patience",
                     "Question Rate")
COACHING_METRICS = ("callsListenedTo", "callsAttended", "callsWithFeedback", "callsWithComments",
                    "callsScorecardsFilled")
# Every call-derived event happens within this time after the call started (used to bound scans).
HORIZON = timedelta(days=14)
SETTING_KEYS = {  # settings-history enum value -> key in the user's `settings` (None = `active`)
    "webConferencesRecorded": "webConferencesRecorded",
    "preventWebConferenceRecording": "preventWebConferenceRecording",
    "emailsImported": "emailsImported",
    "preventEmailImport": "preventEmailImport",
    "nonRecordedMeetingsImported": "nonRecordedMeetingsImported",
    "gongConnectEnabled": "gongConnectEnabled",
    "callsImported": "telephonyCallsImported",
    "active": None,
}
FOLDERS = [("Best Practices", None), ("Great Discovery Calls", 0), ("Great Demos", 0),
           ("Objection Handling", None), ("Onboarding", None), ("Week 1 Listening", 4)]
PROFILES = [("Administrator", "all"), ("Sales Manager", "managers-team"), ("Sales Rep", "own"),
            ("Read Only", "none")]
COMPANY_FLOWS = ["Inbound Lead Follow-up", "Webinar Attendees", "Closed Lost Re-engage", "Event Follow-up"]
PERSONAL_FLOWS = ["Cold Outreach", "Demo No-show", "Renewal Reminder", "Champion Change"]
USER_ACTIONS = [("ViewedCall", "Call"), ("SearchedCalls", ""), ("ViewedDeal", "Deal"),
                ("ExportedCallsToCsv", ""), ("UpdatedTracker", "Tracker"), ("ViewedAccount", "Account")]
AGENTS = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Chrome/126.0", "Mozilla/5.0 (Windows NT 10.0) Edge/125.0",
          "GongMobile/4.12 (iOS 17.5)"]
IMPERSONATOR = {"impersonatorUserId": "8888888888888888888", "impersonatorEmailAddress": "support@gong.io",
                "impersonatorFullName": "Gong Support", "impersonatorCompanyId": "1111111111111111111"}


@dataclass(frozen=True)
class Event:
    """Something a user did around a call, at an instant (stat and/or audit-log entry)."""

    time: datetime
    call_id: str
    user_id: str  # "" for people outside the company
    stat: str = ""  # STAT_FIELDS member, or "" for log-only events
    log_type: str = ""  # LOG_TYPES member, or "" when not logged
    log: tuple[tuple[str, Any], ...] = ()
    email: str = ""  # external person's address (externally shared calls)
    coaching: str = ""  # COACHING_METRICS member when a manager did it on a report's call


@dataclass
class CallExtras:
    """RNG-only per-call facts (cheap)."""

    events: list[Event] = field(default_factory=list)
    scorecards: list[tuple[datetime, JSON]] = field(default_factory=list)
    associations: list[tuple[datetime, str, int]] = field(default_factory=list)  # (time, user, account idx|-1)
    library: tuple[int, datetime, str, str, JSON | None] | None = None  # (folder slot, added, by, note, snippet)
    access: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass
class CallFacts:
    """Facts taken from the generated call body (built once per call)."""

    title: str
    internal_users: list[str]
    comments: list[tuple[datetime, str]]
    interaction: dict[str, float]
    account_id: str
    opportunity_id: str


def _at(rng: random.Random, base: datetime, lo_h: float, hi_h: float) -> datetime:
    """An instant between ``lo_h`` and ``hi_h`` hours after ``base``, whole seconds."""
    return base + timedelta(seconds=int(rng.uniform(lo_h, hi_h) * 3600))


class ReadData:
    """Lazily generated, cached data for the read endpoints of one simulator."""

    def __init__(self, sim: GongSimulator) -> None:
        self.sim = sim
        self.ds = sim.data
        self.seed = sim.config.seed
        self.tz = ZoneInfo(sim.config.company_timezone)
        self.origin = (sim.clock.now() - timedelta(days=max(sim.config.days, 0))).replace(microsecond=0)
        self.users = self.ds.users
        self.user_pos = {u["id"]: i for i, u in enumerate(self.users)}
        self.managers = [u["id"] for u in self.users if any(r.get("managerId") == u["id"] for r in self.users)]
        self.manager_of = {u["id"]: u.get("managerId", "") for u in self.users}
        self._extras: dict[int, CallExtras] = {}
        self._facts: dict[int, CallFacts] = {}
        self._day_logs: dict[tuple[str, date], list[Event]] = {}
        self._folders: list[JSON] | None = None
        self._profiles: list[JSON] | None = None
        self._flows: list[JSON] | None = None
        self._library: dict[tuple[str, int], list[tuple[datetime, CallMeta, tuple[Any, ...]]]] | None = None

    # ------------------------------------------------------------ helpers
    def full_name(self, user_id: str) -> str:
        """'First Last' of a user."""
        u = self.ds.user_by_id[user_id]
        return f"{u['firstName']} {u['lastName']}"

    def local_midnight(self, day: date) -> datetime:
        """Start of ``day`` in the company time zone, as aware UTC."""
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)

    def local_iso(self, dt: datetime) -> str:
        """ISO-8601 with the company's offset at that instant."""
        return dt.astimezone(self.tz).isoformat(timespec="seconds")

    def local_date(self, dt: datetime) -> date:
        """Calendar date of an instant in the company time zone."""
        return dt.astimezone(self.tz).date()

    def today(self) -> date:
        """Current date in the company time zone."""
        return self.local_date(self.sim.clock.now())

    def alive(self, meta: CallMeta, now: datetime) -> bool:
        """Visible through the API at ``now`` and not deleted."""
        return meta.visible_at <= now and not self.sim.is_deleted(meta.id)

    def calls_started(self, lo: datetime | None, hi: datetime | None) -> list[CallMeta]:
        """Calls (any visibility) whose start lies in [lo, hi)."""
        starts = self.sim._starts
        a = 0 if lo is None else bisect.bisect_left(starts, lo)
        b = len(starts) if hi is None else bisect.bisect_left(starts, hi)
        return self.ds.calls[a:b]

    def calls_with_events(self, lo: datetime | None, hi: datetime | None) -> list[CallMeta]:
        """Calls that may own an event in [lo, hi)."""
        return self.calls_started(None if lo is None else lo - HORIZON, hi)

    # ------------------------------------------------------------ per-call facts
    def facts(self, meta: CallMeta) -> CallFacts:
        """Body-derived facts of a call (cached)."""
        got = self._facts.get(meta.index)
        if got is not None:
            return got
        body = self.ds._build_call(meta.index, 1)  # bypass the body LRU so /calls stays warm
        internal = [p["userId"] for p in body["parties"] if p.get("userId")]
        comments = [(datetime.fromisoformat(c["posted"].replace("Z", "+00:00")), c["commenterUserId"])
                    for c in body["collaboration"]["publicComments"]]
        stats = {s["name"]: float(s["value"]) for s in body["interaction"]["interactionStats"]}
        objects = {o["objectType"]: o["objectId"] for o in body["context"][0]["objects"]}
        got = CallFacts(title=body["metaData"]["title"], internal_users=internal, comments=comments,
                        interaction=stats, account_id=objects.get("Account", ""),
                        opportunity_id=objects.get("Opportunity", ""))
        self._facts[meta.index] = got
        return got

    def title(self, meta: CallMeta) -> str:
        """Current title (honours ``edit_call``)."""
        return self.sim._overrides.get(meta.id, {}).get("title") or self.facts(meta).title

    def internal_users(self, meta: CallMeta) -> list[str]:
        """Company users on the call (honours edited parties)."""
        parties = self.sim._overrides.get(meta.id, {}).get("parties")
        if parties is not None:
            return [p["userId"] for p in parties if isinstance(p, dict) and p.get("userId")]
        return self.facts(meta).internal_users

    def extras(self, meta: CallMeta) -> CallExtras:
        """RNG-only facts of a call (cached). Private calls get none."""
        got = self._extras.get(meta.index)
        if got is None:
            got = self._build_extras(meta)
            self._extras[meta.index] = got
        return got

    def _build_extras(self, meta: CallMeta) -> CallExtras:
        out = CallExtras()
        if meta.is_private:
            return out
        rng = random.Random(f"{self.seed}:read:{meta.index}")
        host, cid, seen = meta.primary_user_id, meta.id, meta.visible_at
        manager = self.manager_of.get(host, "")
        others = [u["id"] for u in self.users if u["id"] != host] or [host]
        ev = out.events
        # listens
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            r = rng.random()
            who = host if r < 0.4 else (manager if manager and r < 0.7 else rng.choice(others))
            t = _at(rng, seen, 0.2, 72)
            start = rng.randrange(max(meta.duration - 60, 1))
            log = (("callId", cid), ("playbackStartSec", start),
                   ("playbackDurationSec", rng.randint(30, max(31, meta.duration - start))),
                   ("playbackSource", rng.choice(["CallPage", "Library", "Email"])))
            stat = "ownCallsListenedTo" if who == host else "othersCallsListenedTo"
            ev.append(Event(t, cid, who, stat, "UserCallPlay", log,
                            coaching="callsListenedTo" if who == manager else ""))
        # internal share
        if rng.random() < 0.15:
            t = _at(rng, seen, 1, 48)
            to = rng.choice(others)
            ev.append(Event(t, cid, host, "callsSharedInternally", "UserActivityLog",
                            (("action", "SharedCallInternally"), ("callId", cid), ("sharedWithUserId", to))))
        # external share, then the recipient opens (and maybe plays) it
        if rng.random() < 0.08:
            t = _at(rng, seen, 1, 48)
            acct = self.ds.accounts[rng.randrange(len(self.ds.accounts))]
            email = f"{rng.choice(FIRST_NAMES).lower()}@{acct['domain']}"
            ip = f"198.51.100.{rng.randrange(1, 255)}"
            ev.append(Event(t, cid, host, "callsSharedExternally", "UserActivityLog",
                            (("action", "SharedCallExternally"), ("callId", cid), ("recipient", email))))
            t2 = _at(rng, t, 0.1, 24)
            ev.append(Event(t2, cid, "", "", "ExternallySharedCallAccess",
                            (("callId", cid), ("sharedByUserId", host), ("ipAddress", ip)), email=email))
            if rng.random() < 0.7:
                ev.append(Event(t2 + timedelta(seconds=rng.randint(5, 300)), cid, "", "", "ExternallySharedCallPlay",
                                (("callId", cid), ("sharedByUserId", host), ("ipAddress", ip),
                                 ("playbackDurationSec", rng.randint(30, meta.duration))), email=email))
        # feedback loop with the host's manager
        if manager and manager != host and rng.random() < 0.12:
            t = _at(rng, seen, 1, 24)
            ev.append(Event(t, cid, host, "callsRequestedFeedback"))
            t2 = _at(rng, t, 1, 48)
            ev.append(Event(t2, cid, manager, "callsGaveFeedback", coaching="callsWithFeedback"))
            ev.append(Event(t2, cid, host, "callsReceivedFeedback"))
            if rng.random() < 0.5:
                t3 = t2 + timedelta(minutes=rng.randint(1, 30))
                ev.append(Event(t3, cid, manager, "callsMarkedAsFeedbackGiven"))
                ev.append(Event(t3, cid, host, "callsMarkedAsFeedbackReceived"))
        # answered scorecards
        cards = [c for c in self.ds.scorecards if str(c["workspaceId"]) == meta.workspace_id and c["enabled"]]
        if cards and rng.random() < 0.3:
            end = meta.started + timedelta(seconds=meta.duration)
            n = 2 if rng.random() < 0.15 else 1
            for k in range(n):
                reviewer = manager if (k == 0 and manager and manager != host) else rng.choice(others)
                t = _at(rng, end, 2, 96)
                card = rng.choice(cards)
                out.scorecards.append((t, self._answered(rng, meta, card, reviewer, t)))
                ev.append(Event(t, cid, reviewer, "callsScorecardsFilled",
                                coaching="callsScorecardsFilled" if reviewer == manager else ""))
                ev.append(Event(t, cid, host, "callsScorecardsReceived"))
        # manual CRM association (and sometimes a re-association)
        if rng.random() < 0.2:
            t = _at(rng, seen, 1, 120)
            out.associations.append((t, host, -1))
            if rng.random() < 0.4:
                out.associations.append((_at(rng, t, 1, 72), rng.choice([host, *others]),
                                         rng.randrange(len(self.ds.accounts))))
        # library placement
        if rng.random() < 0.12:
            slot = rng.randrange(len(FOLDERS))
            by = rng.choice(self.managers or [host])
            snippet = None
            if rng.random() < 0.5:
                a = rng.randrange(max(meta.duration - 120, 1))
                snippet = {"fromSec": a, "toSec": a + rng.randint(30, 120)}
            note = rng.choice(["", "Great objection handling", "Listen from minute 5", "Textbook discovery"])
            out.library = (slot, _at(rng, seen, 1, 240), by, note, snippet)
        # individual access granted through the API
        if rng.random() < 0.15:
            for who in rng.sample(others, min(len(others), rng.randint(1, 3))):
                out.access.append((_at(rng, seen, 0.5, 72), who))
        ev.sort(key=lambda e: e.time)
        return out

    def _answered(self, rng: random.Random, meta: CallMeta, card: JSON, reviewer: str,
                  reviewed: datetime) -> JSON:
        answers = []
        for q in card["questions"]:
            ans: JSON = {"questionId": q["questionId"], "questionRevisionId": q["questionRevisionId"],
                         "isOverall": q["isOverall"], "notApplicable": False}
            if not q["isOverall"] and rng.random() < 0.1:
                ans["notApplicable"] = True  # Gong leaves score/answerText/selectedOptions empty
            elif q["questionType"] == "SCALE":
                ans["score"] = rng.randint(q.get("minRange", 1), q.get("maxRange", 5))
            elif q["questionType"] == "MULTIPLE_CHOICE":
                opt = rng.choice(q["answerOptions"])
                ans["selectedOptions"] = [str(opt["id"])]
                ans["answerText"] = opt["text"]
            else:
                ans["answerText"] = sentence(rng)
            answers.append(ans)
        return {
            "answeredScorecardId": int(make_id(rng)),
            "scorecardId": card["scorecardId"],
            "scorecardName": card["scorecardName"],
            "callId": int(meta.id),
            "callStartTime": iso(meta.started, meta.tz_offset),
            "reviewedUserId": int(meta.primary_user_id),
            "reviewerUserId": int(reviewer),
            "reviewTime": iso(reviewed),
            "visibilityType": rng.choices(["PUBLIC", "PRIVATE", "OPT_IN_USERS"], [8, 1, 1])[0],
            "answers": answers,
        }

    # ------------------------------------------------------------ activity
    def call_events(self, meta: CallMeta, since: datetime | None = None) -> list[Event]:
        """Every activity event of a call: hosting, attending, comments, plus the RNG extras.

        Body-derived events all happen within a day of the start; they are skipped (and the body is
        not built) when the call started more than a day before ``since``.
        """
        if since is not None and meta.started < since - timedelta(days=1):
            return self.extras(meta).events
        cid, host = meta.id, meta.primary_user_id
        manager = self.manager_of.get(host, "")
        out = [Event(meta.started, cid, host, "callsAsHost")]
        for uid in dict.fromkeys(self.internal_users(meta)):
            if uid != host:
                out.append(Event(meta.started, cid, uid, "callsAttended",
                                 coaching="callsAttended" if uid == manager else ""))
        for posted, who in self.facts(meta).comments:
            out.append(Event(posted, cid, who, "callsCommentsGiven",
                             coaching="callsWithComments" if who == manager and who != host else ""))
            if who != host:
                out.append(Event(posted, cid, host, "callsCommentsReceived"))
        return out + self.extras(meta).events

    def activity(self, lo: datetime, hi: datetime, user_ids: set[str] | None
                 ) -> dict[str, dict[date, dict[str, set[str]]]]:
        """user -> local date -> stat field -> call ids, for stat events in [lo, hi) that happened by now."""
        now = self.sim.clock.now()
        out: dict[str, dict[date, dict[str, set[str]]]] = {}
        for meta in self.calls_with_events(lo, hi):
            if not self.alive(meta, now):
                continue
            for e in self.call_events(meta, lo):
                if not e.stat or not (lo <= e.time < hi) or e.time > now or e.user_id not in self.user_pos:
                    continue
                if user_ids is not None and e.user_id not in user_ids:
                    continue
                day = out.setdefault(e.user_id, {}).setdefault(self.local_date(e.time), {})
                day.setdefault(e.stat, set()).add(e.call_id)
        return out

    def interaction(self, lo: datetime, hi: datetime, user_ids: set[str] | None) -> dict[str, list[JSON]]:
        """user -> interaction stats over the visible calls they hosted that started in [lo, hi)."""
        now = self.sim.clock.now()
        per_user: dict[str, list[dict[str, float]]] = {}
        for meta in self.calls_started(lo, hi):
            if not self.alive(meta, now) or (user_ids is not None and meta.primary_user_id not in user_ids):
                continue
            per_user.setdefault(meta.primary_user_id, []).append(self.facts(meta).interaction)
        out: dict[str, list[JSON]] = {}
        for uid, rows in per_user.items():
            stats = []
            for name in INTERACTION_NAMES:
                values = [r[name] for r in rows if name in r]
                if not values:
                    continue
                value = max(values) if name.startswith("Longest") else sum(values) / len(values)
                stats.append({"name": name, "value": round(value, 2)})
            out[uid] = stats
        return out

    # ------------------------------------------------------------ answered scorecards
    def answered_scorecards(self, calls: list[CallMeta]) -> list[tuple[datetime, CallMeta, JSON]]:
        """Published answered scorecards of the given calls, by review time."""
        now = self.sim.clock.now()
        out = []
        for meta in calls:
            if not self.alive(meta, now):
                continue
            for reviewed, card in self.extras(meta).scorecards:
                if reviewed <= now:
                    out.append((reviewed, meta, card))
        out.sort(key=lambda r: (r[0], r[2]["answeredScorecardId"]))
        return out

    # ------------------------------------------------------------ logs
    def logs(self, log_type: str, lo: datetime, hi: datetime) -> list[Event]:
        """Audit-log events of one type in [lo, hi) that happened by now, ascending."""
        now = self.sim.clock.now()
        hi = min(hi, now + timedelta(microseconds=1))
        out: list[Event] = []
        if log_type in ("AccessLog", "UserActivityLog"):
            day = max(lo, self.origin).date()
            while datetime(day.year, day.month, day.day, tzinfo=UTC) < hi:
                out += [e for e in self._daily(log_type, day) if lo <= e.time < hi and e.time >= self.origin]
                day += timedelta(days=1)
        if log_type != "AccessLog":
            for meta in self.calls_with_events(lo, hi):
                if self.alive(meta, now):
                    out += [e for e in self.extras(meta).events if e.log_type == log_type and lo <= e.time < hi]
        out.sort(key=lambda e: (e.time, e.user_id, e.email, e.log))
        return out

    def _daily(self, log_type: str, day: date) -> list[Event]:
        """Logins / UI actions of every active user on one UTC day (cached)."""
        key = (log_type, day)
        got = self._day_logs.get(key)
        if got is not None:
            return got
        rng = random.Random(f"{self.seed}:log:{log_type}:{day.isoformat()}")
        base = datetime(day.year, day.month, day.day, tzinfo=UTC)
        got = []
        for pos, u in enumerate(self.users):
            if not u["active"]:
                continue
            if log_type == "AccessLog":
                for _ in range(rng.choice([0, 1, 1, 2, 3])):
                    t = base + timedelta(seconds=rng.randrange(86400))
                    ip = f"203.0.113.{(pos * 17 + rng.randrange(5)) % 254 + 1}"
                    login = (("action", "Login"), ("ipAddress", ip), ("userAgent", rng.choice(AGENTS)),
                             ("authenticationMethod", rng.choice(["SSO", "Password"])))
                    got.append(Event(t, "", u["id"], log_type=log_type, log=login))
            else:
                for _ in range(rng.choice([0, 1, 2, 3, 4])):
                    t = base + timedelta(seconds=rng.randrange(86400))
                    action, obj = rng.choice(USER_ACTIONS)
                    log: tuple[tuple[str, Any], ...] = (("action", action),)
                    if obj:
                        log += (("objectType", obj), ("objectId", make_id(rng)))
                    if pos == 0 and rng.random() < 0.2:
                        log += (("impersonated", True),)
                    got.append(Event(t, "", u["id"], log_type=log_type, log=log))
        got.sort(key=lambda e: e.time)
        self._day_logs[key] = got
        return got

    # ------------------------------------------------------------ settings objects
    def trackers(self) -> list[JSON]:
        """Keyword trackers of every workspace; ids match calls' content.trackers."""
        out = []
        admin = self.users[0]["id"] if self.users else "1000000000000000001"
        for pos, ws in enumerate(self.ds.workspaces):
            rng = random.Random(f"{self.seed}:trackers:{pos}")
            for k, (name, kind, phrases) in enumerate(TRACKERS):
                created = self.origin - timedelta(days=400 - 20 * k, seconds=rng.randrange(86400))
                updated = created + timedelta(days=rng.randrange(1, 200))
                langs = [{"language": "eng", "keywords": list(phrases), "includeRelatedForms": kind == "SMART"}]
                if rng.random() < 0.3:
                    langs.append({"language": "spa", "keywords": [p + " (es)" for p in phrases],
                                  "includeRelatedForms": False})
                updater = rng.choice(self.managers or [admin])
                out.append({
                    "trackerId": tracker_id(name, pos), "trackerName": name, "workspaceId": ws["id"],
                    "languageKeywords": langs,
                    "affiliation": rng.choice(["Anyone", "Company", "NonCompany"]),
                    "partOfQuestion": rng.random() < 0.2,
                    "saidAt": "Anytime" if k % 3 else "First",
                    "saidAtInterval": 0 if k % 3 else 5,
                    "saidAtUnit": "minutes",
                    "saidInTopics": [], "saidInCallParts": [],
                    "filterQuery": "" if k % 2 else
                    '{"type":"And","filters":[{"type":"CallDirection","terms":["OUTBOUND"]}]}',
                    "created": iso(created), "creatorUserId": admin,
                    "updated": iso(updated), "updaterUserId": updater,
                })
        return out

    def folders(self) -> list[JSON]:
        """Library folders of every workspace (static part; `updated` is computed per request)."""
        if self._folders is None:
            out = []
            for pos, ws in enumerate(self.ds.workspaces):
                rng = random.Random(f"{self.seed}:library:{pos}")
                ids = [make_id(rng) for _ in FOLDERS]
                for slot, (name, parent) in enumerate(FOLDERS):
                    folder: JSON = {"id": ids[slot], "name": name, "_workspaceId": ws["id"], "_slot": slot,
                                    "createdBy": rng.choice(self.managers or [u["id"] for u in self.users]),
                                    "_created": self.origin - timedelta(days=rng.randint(60, 300))}
                    if parent is not None:
                        folder["parentFolderId"] = ids[parent]
                    out.append(folder)
            self._folders = out
        return self._folders

    def folder_calls(self, folder: JSON) -> list[tuple[datetime, CallMeta, tuple[Any, ...]]]:
        """(added, call, placement) for the calls in a folder by now, oldest first."""
        if self._library is None:
            index: dict[tuple[str, int], list[tuple[datetime, CallMeta, tuple[Any, ...]]]] = {}
            for meta in self.ds.calls:
                place = self.extras(meta).library
                if place:
                    index.setdefault((meta.workspace_id, place[0]), []).append((place[1], meta, place))
            for rows in index.values():
                rows.sort(key=lambda r: (r[0], r[1].id))
            self._library = index
        now = self.sim.clock.now()
        return [r for r in self._library.get((folder["_workspaceId"], folder["_slot"]), [])
                if r[0] <= now and self.alive(r[1], now)]

    def profiles(self) -> list[JSON]:
        """Permission profiles of every workspace, each with its member user ids under `_users`."""
        if self._profiles is None:
            out = []
            managers = set(self.managers)
            for pos, ws in enumerate(self.ds.workspaces):
                rng = random.Random(f"{self.seed}:profiles:{pos}")
                members: dict[int, list[str]] = {0: [], 1: [], 2: [], 3: []}
                for i, u in enumerate(self.users):
                    k = 0 if i == 0 else 1 if u["id"] in managers else 3 if not u["active"] else 2
                    members[k].append(u["id"])
                for k, (name, level) in enumerate(PROFILES):
                    out.append(_profile(make_id(rng), name, level, self.managers, ws["id"], members[k]))
            self._profiles = out
        return self._profiles

    def settings_history(self, user: JSON) -> list[tuple[datetime, str, bool]]:
        """(time, setting, value) changes of a user; the last value of each setting is the current one."""
        rng = random.Random(f"{self.seed}:settings:{user['id']}")
        created = datetime.fromisoformat(user["created"].replace("Z", "+00:00"))
        span = max((self.origin + timedelta(days=self.sim.config.days) - created).total_seconds(), 3600)
        out = []
        for setting, key in SETTING_KEYS.items():
            current = bool(user["active"] if key is None else user["settings"].get(key, False))
            if key is None and not current:
                toggles = 1
            else:
                toggles = rng.choice([0, 0, 0, 2]) if key is None else rng.choice([0, 0, 1, 2])
            value = current if toggles % 2 == 0 else not current
            out.append((created, setting, value))
            times = sorted(created + timedelta(seconds=rng.randrange(60, int(span))) for _ in range(toggles))
            for t in times:
                value = not value
                out.append((t, setting, value))
        out.sort(key=lambda r: (r[0], r[1]))
        return out

    def flows(self) -> list[JSON]:
        """Engage flows: company flows per workspace, personal ones per user (some shared)."""
        if self._flows is None:
            out: list[JSON] = []
            n_ws = max(len(self.ds.workspaces), 1)
            for pos, ws in enumerate(self.ds.workspaces):
                rng = random.Random(f"{self.seed}:flows:{pos}")
                folder = make_id(rng)
                for k, name in enumerate(COMPANY_FLOWS):
                    out.append({"id": make_id(rng), "name": name, "folderId": folder, "folderName": "Company Flows",
                                "visibility": "Company", "exclusive": k % 2 == 0,
                                "creationDate": iso(self.origin - timedelta(days=rng.randint(30, 400))),
                                "_workspaceId": ws["id"], "_owner": "", "_sharedWith": []})
            for i, u in enumerate(self.users):
                if not self.ds.workspaces:
                    break
                rng = random.Random(f"{self.seed}:flows:user:{u['id']}")
                folder = make_id(rng)
                others = [o["id"] for o in self.users if o["id"] != u["id"]]
                for name in rng.sample(PERSONAL_FLOWS, rng.randint(0, 3)):
                    shared = rng.sample(others, min(len(others), rng.randint(1, 2))) if rng.random() < 0.3 else []
                    out.append({"id": make_id(rng), "name": f"{u['firstName']}'s {name}", "folderId": folder,
                                "folderName": "My Flows", "visibility": "Shared" if shared else "Personal",
                                "exclusive": rng.random() < 0.5,
                                "creationDate": iso(self.origin - timedelta(days=rng.randint(1, 200))),
                                "_workspaceId": self.ds.workspaces[i % n_ws]["id"], "_owner": u["id"],
                                "_sharedWith": shared})
            self._flows = out
        return self._flows

    def access_grants(self, meta: CallMeta) -> list[str]:
        """Users granted individual access to a call through the API, by now."""
        now = self.sim.clock.now()
        return list(dict.fromkeys(uid for t, uid in self.extras(meta).access if t <= now))

    def associations(self, lo: datetime | None) -> list[tuple[datetime, CallMeta, str, str, str]]:
        """(created, call, user, accountCrmId, dealCrmId) manual associations since ``lo``, ascending."""
        now = self.sim.clock.now()
        out = []
        for meta in self.calls_with_events(lo, None):
            if not self.alive(meta, now):
                continue
            for t, uid, acct in self.extras(meta).associations:
                if t > now or (lo is not None and t < lo):
                    continue
                if acct < 0:
                    facts = self.facts(meta)
                    account, deal = facts.account_id, facts.opportunity_id
                else:
                    rng = random.Random(f"{self.seed}:reassoc:{meta.index}")
                    account = self.ds.accounts[acct]["objectId"]
                    deal = f"006{rng.getrandbits(60):015X}"[:18]
                out.append((t, meta, uid, account, deal))
        out.sort(key=lambda r: (r[0], r[1].id))
        return out


def _profile(pid: str, name: str, level: str, managers: list[str], ws: str, users: list[str]) -> JSON:
    """A PermissionProfileDTO for an access level (all / managers-team / own / none)."""
    full = level == "all"
    some = level in ("all", "managers-team")
    lead_ids = list(managers) if level == "managers-team" else []

    def access(lvl: str = level) -> JSON:
        return {"permissionLevel": lvl, "teamLeadIds": lead_ids if lvl == "managers-team" else []}

    flags = {
        "scoreCalls": some, "downloadCallMedia": full, "shareCallsWithCustomers": level != "none",
        "manuallyScheduleAndUploadCalls": level != "none", "privateCalls": level != "none",
        "deleteCalls": full, "trimCalls": some, "listenInCalls": some, "deleteEmails": full,
        "callsAndSearch": True, "library": True, "deals": level != "none",
        "createEditAndDeleteDealsBoards": some, "dealsInlineEditing": some, "account": True,
        "coaching": some, "usage": some, "teamStats": some, "initiatives": full, "market": full,
        "activity": some, "forecast": level != "none", "forecastManage": full,
        "engageManageCompanyTemplates": full, "engageManageCompanySequences": full,
        "engageSnoozeFlowToDosForOthers": some, "manageGeneralBusinessSettings": full,
        "manageScorecards": full, "exportCallsAndCoachingDataToCSV": some, "crmDataInlineEditing": some,
        "crmDataImport": full, "viewRevenueAnalytics": some, "manageRevenueAnalytics": full,
    }
    return {
        "id": pid, "name": name, "description": f"{name} access ({level})",
        "callsAccess": access(),
        "libraryFolderAccess": {"permissionLevel": "all" if level != "none" else "none",
                                "libraryFolderIds": [], "managePublicFolder": full, "manageStreams": some,
                                "manageFolderCalls": some, "shareFoldersAndStreams": level != "none"},
        "dealsAccess": access(),
        "forecastPermissions": {"forecastAccess": access(), "forecastEditSubmissions": access(),
                                "forecastEditTargets": access("all" if full else "none")},
        "coachingAccess": access(), "insightsAccess": access(), "usageAccess": access(),
        "emailsAccess": access(),
        **flags,
        "_workspaceId": ws, "_users": users,
    }

