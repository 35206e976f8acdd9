"""Deterministic synthetic Gong data: users, workspaces, scorecards and calls.

Call metadata is generated eagerly (small); call content and transcripts are
generated on demand from a per-call RNG, so memory stays bounded and the same
call always yields the same body for the same revision.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

FIRST_NAMES = [
    "Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Lena", "Omar", "Priya", "Jonas",
    "Sofia", "Mateo", "Hana", "Felix", "Nora", "Ravi", "Chloe", "Diego", "Ines", "Kai",
]
LAST_NAMES = [
    "Smith", "Garcia", "Chen", "Müller", "Okafor", "Rossi", "Kowalski", "Nakamura",
    "Dubois", "Patel", "Silva", "Johansson", "O'Brien", "Haddad", "Novak", "Kim",
]
TITLES = ["Account Executive", "SDR", "Sales Manager", "Solutions Engineer", "CSM", "VP Sales"]
EXT_TITLES = ["CTO", "Head of Data", "Procurement Lead", "VP Engineering", "Analyst", "CFO"]
COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
    "Tyrell", "Cyberdyne", "Soylent", "Wonka", "Gringotts", "Oscorp", "Nakatomi", "Pied Piper",
]
INDUSTRIES = ["Software", "Finance", "Retail", "Healthcare", "Manufacturing", "Media"]
STAGES = ["Prospecting", "Discovery", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
TOPICS = ["Small Talk", "Pricing", "Product Demo", "Next Steps", "Security", "Integrations",
          "Call Setup", "Competition", "Use Cases", "Timeline"]
TRACKERS = [
    ("Competitors", "KEYWORD", ["Salesforce", "Chorus", "Clari"]),
    ("Pricing", "KEYWORD", ["price", "discount", "budget"]),
    ("Next Steps", "SMART", ["follow up", "send over", "next week"]),
    ("Security", "KEYWORD", ["SOC 2", "GDPR", "SSO"]),
    ("Objections", "SMART", ["too expensive", "not a priority"]),
    ("Legal", "KEYWORD", ["contract", "MSA", "redlines"]),
]
WORDS = (
    "we could integrate the pipeline with your warehouse and then review pricing "
    "before the security questionnaire next week so that the team can decide on "
    "rollout timing budget approval dashboards forecast renewal champion onboarding "
    "really great question let me share my screen quickly about the data model"
).split()
OUTCOMES = [("Qualified", "Positive"), ("Demo scheduled", "Positive"),
            ("Not interested", "Negative"), ("Follow-up needed", "Neutral")]
TZ_OFFSETS = [-8, -5, 0, 1, 2, 5.5, 9]
LANGUAGES = ["eng", "eng", "eng", "spa", "fra", "deu"]


def make_id(rng: random.Random, big: bool | None = None) -> str:
    """A Gong-style id: 19 digits below 2**63, or 20 digits (above 2**63)."""
    if big is None:
        big = rng.random() < 0.4
    if big:
        return str(10**19 + rng.getrandbits(63))
    return str(10**18 + rng.getrandbits(62))


def iso(dt: datetime, offset_hours: float = 0) -> str:
    """Format an instant as ISO-8601 in a fixed offset (``Z`` for UTC)."""
    if offset_hours == 0:
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tz = timezone(timedelta(hours=offset_hours))
    return dt.astimezone(tz).isoformat(timespec="seconds")


def tracker_id(name: str, workspace_pos: int = 0) -> str:
    """Stable 20-digit id of a tracker in the workspace at position ``workspace_pos``."""
    base = int.from_bytes(name.encode()[:8].ljust(8, b"_"), "big") % (8 * 10**18)
    return str(10**19 + (base + workspace_pos * 7919) % (8 * 10**18))


def _make_sentence(rng: random.Random, n_min: int = 5, n_max: int = 14) -> str:
    words = rng.choices(WORDS, k=rng.randint(n_min, n_max))
    return " ".join(words).capitalize() + rng.choice([".", ".", "?", "!"])


_POOL_RNG = random.Random("gong-sim-sentences")
SENTENCE_POOL = [_make_sentence(_POOL_RNG) for _ in range(2048)]


def sentence(rng: random.Random) -> str:
    """A pseudo-English sentence drawn from a fixed pool (fast)."""
    return SENTENCE_POOL[int(rng.random() * len(SENTENCE_POOL))]


@dataclass(frozen=True)
class CallMeta:
    """Eagerly generated, small per-call facts (everything filters need)."""

    index: int
    id: str
    started: datetime
    duration: int
    visible_at: datetime
    transcript_at: datetime
    workspace_id: str
    primary_user_id: str
    is_private: bool
    tz_offset: float


@dataclass
class Dataset:
    """All generated entities for one seed and configuration."""

    seed: int
    sentences_per_call: int
    workspaces: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    scorecards: list[dict[str, Any]] = field(default_factory=list)
    calls: list[CallMeta] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, CallMeta] = field(default_factory=dict)
    user_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspace_pos: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._content = functools.lru_cache(maxsize=512)(self._build_call)

    # ------------------------------------------------------------------ calls
    def revision(self, meta: CallMeta, now: datetime) -> int:
        """Content revision: 2 once a day has passed since the call appeared."""
        return 2 if now >= meta.visible_at + timedelta(hours=24) else 1

    def call_body(self, meta: CallMeta, revision: int) -> dict[str, Any]:
        """Full call document (cached, treat as read-only)."""
        return self._content(meta.index, revision)

    def _build_call(self, index: int, revision: int) -> dict[str, Any]:
        meta = self.calls[index]
        rng = random.Random(f"{self.seed}:call:{index}")
        user = self.user_by_id[meta.primary_user_id]
        account = self.accounts[rng.randrange(len(self.accounts))]
        company = account["name"]
        video = rng.random() < 0.7
        system = rng.choice(["Zoom", "Google Meet", "Microsoft Teams"]) if video else "Outreach"
        title = f"{company} | {rng.choice(TOPICS)} with {user['firstName']}"
        started = meta.started
        scheduled = started.replace(minute=(started.minute // 30) * 30, second=0)
        meta_data: dict[str, Any] = {
            "id": meta.id,
            "url": f"https://app.gong.io/call?id={meta.id}",
            "title": title,
            "scheduled": iso(scheduled, meta.tz_offset),
            "started": iso(started, meta.tz_offset),
            "duration": meta.duration,
            "primaryUserId": meta.primary_user_id,
            "direction": "Conference" if video else rng.choice(["Inbound", "Outbound"]),
            "system": system,
            "scope": rng.choice(["External", "External", "External", "Internal"]),
            "media": "Video" if video else "Audio",
            "language": rng.choice(LANGUAGES),
            "workspaceId": meta.workspace_id,
            "sdrDisposition": "" if video else rng.choice(["Connected", "No Answer", "Left Voicemail"]),
            "clientUniqueId": f"sim-{meta.index:07d}",
            "customData": "",
            "purpose": rng.choice(["Discovery", "Demo", "Negotiation", "Check-in"]),
            "meetingUrl": f"https://zoom.us/j/{rng.randrange(10**9, 10**10)}" if video else "",
            "isPrivate": meta.is_private,
            "calendarEventId": f"evt_{rng.getrandbits(48):012x}",
        }
        if rng.random() < 0.3:
            meta_data["meetingPlatform"] = system  # undocumented extra field

        # parties
        n_parties = rng.randint(2, 6)
        n_internal = 1 + (1 if n_parties > 3 and rng.random() < 0.5 else 0)
        internal_users = [user] + [u for u in rng.sample(self.users, min(2, len(self.users)))
                                   if u["id"] != user["id"]][: n_internal - 1]
        parties: list[dict[str, Any]] = []
        for u in internal_users:
            parties.append({
                "id": make_id(rng),
                "emailAddress": u["emailAddress"],
                "name": f"{u['firstName']} {u['lastName']}",
                "title": u["title"],
                "userId": u["id"],
                "speakerId": make_id(rng),
                "context": [{"system": "Salesforce", "objects": [{
                    "objectType": "User", "objectId": f"005{rng.getrandbits(60):015X}"[:18],
                    "fields": [{"name": "Name", "value": f"{u['firstName']} {u['lastName']}"}],
                    "timing": "Now",
                }]}],
                "affiliation": "Internal",
                "methods": ["Invitee", "Attendee"],
            })
        for i in range(n_parties - len(parties)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            attended = i == 0 or rng.random() < 0.8
            party: dict[str, Any] = {
                "id": make_id(rng),
                "emailAddress": f"{first.lower()}.{last.lower().replace(chr(39), '')}@{account['domain']}",
                "name": f"{first} {last}",
                "title": rng.choice(EXT_TITLES),
                "context": [{"system": "Salesforce", "objects": [{
                    "objectType": "Contact", "objectId": f"003{rng.getrandbits(60):015X}"[:18],
                    "fields": [{"name": "AccountId", "value": account["objectId"]},
                               {"name": "Email", "value": f"{first.lower()}@{account['domain']}"}],
                    "timing": "Now",
                }]}],
                "affiliation": "External",
                "methods": ["Invitee", "Attendee"] if attended else ["Invitee"],
            }
            if attended:
                party["speakerId"] = make_id(rng)
            if rng.random() < 0.5:
                party["phoneNumber"] = f"+1{rng.randrange(2000000000, 9999999999)}"
            if rng.random() < 0.2:
                party["gongInternalScore"] = round(rng.random(), 3)  # undocumented extra
            parties.append(party)
        speakers = [p for p in parties if "speakerId" in p]
        speaker_ids = [p["speakerId"] for p in speakers]

        # CRM context
        opp_id = f"006{rng.getrandbits(60):015X}"[:18]
        stage = rng.choice(STAGES[:4])
        amount = rng.randrange(5, 500) * 1000
        context = [{"system": "Salesforce", "objects": [
            {"objectType": "Account", "objectId": account["objectId"], "timing": "Now", "fields": [
                {"name": "Name", "value": company},
                {"name": "Website", "value": f"https://{account['domain']}"},
                {"name": "Industry", "value": account["industry"]},
            ]},
            {"objectType": "Opportunity", "objectId": opp_id, "timing": "Now", "fields": [
                {"name": "Name", "value": f"{company} - New Business"},
                {"name": "LeadSource", "value": rng.choice(["Web", "Outbound", "Partner"])},
                {"name": "Type", "value": "New Business"},
                {"name": "StageName", "value": stage},
                {"name": "Probability", "value": rng.choice([10, 20, 40, 60])},
                {"name": "Amount", "value": amount},
                {"name": "CloseDate", "value": (started + timedelta(days=rng.randint(20, 120))).strftime("%Y-%m-%d")},
            ]},
        ]}]

        # content
        dur = meta.duration
        topic_names = rng.sample(TOPICS, rng.randint(3, 6))
        cuts = sorted(rng.sample(range(1, dur), len(topic_names) - 1))
        spans = [b - a for a, b in zip([0, *cuts], [*cuts, dur], strict=False)]
        topics = [{"name": n, "duration": s} for n, s in zip(topic_names, spans, strict=False)]
        structure = [{"name": n, "duration": s} for n, s in zip(["Intro", "Discovery", "Demo", "Wrap-up"],
                                                                _split(rng, dur, 4), strict=False)]
        trackers = []
        ws_pos = self.workspace_pos.get(meta.workspace_id, 0)
        for name, kind, phrases in rng.sample(TRACKERS, rng.randint(1, 4)):
            trackers.append(self._tracker(rng, name, kind, phrases, dur, speaker_ids, ws_pos))
        action_items = [{
            "snippetStartTime": float(t), "snippetEndTime": float(t + rng.randint(5, 30)),
            "speakerID": rng.choice(speaker_ids), "snippet": sentence(rng),
        } for t in sorted(rng.sample(range(dur - 40), rng.randint(0, 3)))]
        outline = []
        start = 0.0
        for name, s in zip(["Introductions", "Needs", "Solution", "Next steps"], _split(rng, dur, 4), strict=False):
            outline.append({"section": name, "startTime": start, "duration": float(s),
                            "items": [{"text": sentence(rng), "startTime": start + k * 10.0} for k in range(2)]})
            start += s
        outcome = rng.choice(OUTCOMES)
        content: dict[str, Any] = {
            "structure": structure,
            "trackers": trackers,
            "topics": topics,
            "pointsOfInterest": {"actionItems": action_items},
            "brief": " ".join(sentence(rng) for _ in range(3)),
            "outline": outline,
            "highlights": [{"title": "Next steps", "items": [
                {"text": sentence(rng), "startTimes": [float(rng.randrange(dur))]}]}],
            "callOutcome": {"id": str(OUTCOMES.index(outcome) + 1), "category": outcome[1], "name": outcome[0]},
            "keyPoints": [{"text": sentence(rng)} for _ in range(rng.randint(2, 4))],
        }
        talk = _split(rng, dur, len(speakers))
        interaction = {
            "speakers": [{"id": p["speakerId"], "userId": p.get("userId", ""), "talkTime": float(t)}
                         for p, t in zip(speakers, talk, strict=False) if p.get("userId")],
            "interactionStats": [
                {"name": "Talk Ratio", "value": round(rng.uniform(0.3, 0.7), 2)},
                {"name": "Longest Monologue", "value": rng.randint(20, 240)},
                {"name": "Longest Customer Story", "value": rng.randint(10, 200)},
                {"name": "Interactivity", "value": round(rng.uniform(2, 9), 1)},
                {"name": "Patience", "value": round(rng.uniform(0.3, 2.0), 2)},
                {"name": "Question Rate", "value": round(rng.uniform(0.5, 5), 2)},
            ],
            "video": [{"name": n, "duration": float(rng.randrange(dur))} for n in
                      ["Browser", "Shared Screen", "Face Time", "Presentation"]] if video else [],
            "questions": {"companyCount": rng.randint(0, 30), "nonCompanyCount": rng.randint(0, 20)},
        }
        comments = []
        for k in range(rng.choice([0, 0, 1, 2])):
            a = float(rng.randrange(max(dur - 30, 1)))
            comments.append({
                "id": make_id(rng), "audioStartTime": a, "audioEndTime": a + 20.0,
                "commenterUserId": rng.choice(self.users)["id"], "comment": sentence(rng),
                "posted": iso(meta.visible_at + timedelta(hours=1 + k)),
                "duringCall": False,
            })
        body = {"metaData": meta_data, "context": context, "parties": parties, "content": content,
                "interaction": interaction, "collaboration": {"publicComments": comments},
                "_speakers": speaker_ids, "_video": video}
        if revision >= 2:
            self._apply_revision2(index, body, dur, speaker_ids)
        return body

    def _tracker(self, rng: random.Random, name: str, kind: str, phrases: list[str],
                 dur: int, speaker_ids: list[str], ws_pos: int = 0) -> dict[str, Any]:
        tid = tracker_id(name, ws_pos)
        phrase_rows = []
        all_occ: list[dict[str, Any]] = []
        for ph in phrases:
            rnd = rng.random
            n_spk = len(speaker_ids)
            occ = [{"startTime": float(int(rnd() * dur)), "speakerId": speaker_ids[int(rnd() * n_spk)]}
                   for _ in range(int(rnd() * 4))]
            occ.sort(key=lambda o: o["startTime"])
            if occ:
                phrase_rows.append({"count": len(occ), "occurrences": occ, "phrase": ph})
            all_occ.extend(occ)
        all_occ.sort(key=lambda o: o["startTime"])
        return {"id": tid, "name": name, "count": len(all_occ), "type": kind,
                "occurrences": all_occ, "phrases": phrase_rows}

    def _apply_revision2(self, index: int, body: dict[str, Any], dur: int,
                         speaker_ids: list[str]) -> None:
        rng = random.Random(f"{self.seed}:call:{index}:rev2")
        content = body["content"]
        have = {t["name"] for t in content["trackers"]}
        extra = [t for t in TRACKERS if t[0] not in have]
        if extra:
            name, kind, phrases = rng.choice(extra)
            ws_pos = self.workspace_pos.get(self.calls[index].workspace_id, 0)
            content["trackers"].append(self._tracker(rng, name, kind, phrases, dur, speaker_ids, ws_pos))
        topics = content["topics"]
        if len(topics) >= 2:
            shift = min(rng.randint(5, 60), topics[1]["duration"] - 1)
            topics[0]["duration"] += max(shift, 0)
            topics[1]["duration"] -= max(shift, 0)
        content["brief"] = content["brief"] + " " + sentence(rng)
        for obj in body["context"][0]["objects"]:
            if obj["objectType"] == "Opportunity":
                for f in obj["fields"]:
                    if f["name"] == "StageName":
                        f["value"] = STAGES[min(STAGES.index(f["value"]) + 1, len(STAGES) - 1)]

    # ------------------------------------------------------------ transcripts
    def transcript(self, meta: CallMeta) -> list[dict[str, Any]]:
        """Monologues for a call (generated on demand, not cached)."""
        body = self.call_body(meta, 1)
        speakers: list[str] = body["_speakers"]
        topics = [t["name"] for t in body["content"]["topics"]]
        rng = random.Random(f"{self.seed}:transcript:{meta.index}")
        rnd = rng.random
        total = max(1, self.sentences_per_call + rng.randint(-self.sentences_per_call // 10,
                                                             self.sentences_per_call // 10))
        step = max(1, meta.duration * 1000 // total - 250)
        t = 0
        monologues: list[dict[str, Any]] = []
        remaining = total
        last = None
        while remaining > 0:
            spk = rng.choice(speakers) if len(speakers) > 1 else speakers[0]
            if spk == last and len(speakers) > 1:
                spk = speakers[(speakers.index(spk) + 1) % len(speakers)]
            last = spk
            n = min(remaining, 1 + int(rnd() * 6))
            sentences = []
            for _ in range(n):
                end = t + step // 2 + 1 + int(rnd() * step)
                sentences.append({"start": t, "end": end, "text": sentence(rng)})
                t = end + int(rnd() * 400)
            remaining -= n
            topic = topics[min(len(topics) - 1, t * len(topics) // max(meta.duration * 1000, 1))]
            monologues.append({"speakerId": spk, "topic": topic, "sentences": sentences})
        return monologues


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` positive-ish integer chunks."""
    if parts <= 1:
        return [total]
    cuts = sorted(rng.sample(range(1, max(total, parts + 1)), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=False)]


def build_dataset(seed: int, users: int, workspaces: int, calls_per_day: int, days: int,
                  sentences_per_call: int, private_ratio: float, now: datetime) -> Dataset:
    """Generate users, workspaces, scorecards, accounts and call metadata."""
    rng = random.Random(f"{seed}:base")
    ds = Dataset(seed=seed, sentences_per_call=sentences_per_call)
    used: set[str] = set()

    def uid(big: bool | None = None) -> str:
        while True:
            value = make_id(rng, big)
            if value not in used:
                used.add(value)
                return value

    for w in range(max(workspaces, 0)):
        ds.workspaces.append({"id": uid(False), "name": ["Sales", "Customer Success", "EMEA", "APAC"][w % 4]
                              + ("" if w < 4 else f" {w // 4 + 1}"), "description": "Simulated workspace"})
    for u in range(max(users, 0)):
        first, last = FIRST_NAMES[u % len(FIRST_NAMES)], LAST_NAMES[(u * 7) % len(LAST_NAMES)]
        email = f"{first.lower()}.{last.lower().replace(chr(39), '')}{u}@simco.example"
        user: dict[str, Any] = {
            "id": uid(True if u == 1 else (False if u == 0 else None)),
            "emailAddress": email,
            "created": iso(now - timedelta(days=400 + rng.randrange(900)) - timedelta(seconds=rng.randrange(86400))),
            "active": rng.random() > 0.1,
            "emailAliases": [email.replace("@simco.example", "@simco-old.example")] if rng.random() < 0.3 else [],
            "trustedEmailAddress": email,
            "firstName": first,
            "lastName": last,
            "title": TITLES[0] if u > 1 else TITLES[u + 4],
            "phoneNumber": f"+1{rng.randrange(2000000000, 9999999999)}",
            "extension": str(rng.randrange(100, 999)),
            "personalMeetingUrls": [f"https://zoom.us/my/{first.lower()}{u}"],
            "settings": {
                "webConferencesRecorded": True, "preventWebConferenceRecording": False,
                "telephonyCallsImported": rng.random() < 0.5, "emailsImported": True,
                "preventEmailImport": False, "nonRecordedMeetingsImported": rng.random() < 0.5,
                "gongConnectEnabled": rng.random() < 0.5,
            },
            "meetingConsentPageUrl": f"https://join.gong.io/simco/{first.lower()}{u}",
            "spokenLanguages": [{"language": "en-US", "primary": True}]
            + ([{"language": "es-ES", "primary": False}] if rng.random() < 0.2 else []),
        }
        if u > 0:
            user["managerId"] = ds.users[0 if u < 4 else rng.randrange(1, 4)]["id"]
        ds.users.append(user)
    ds.user_by_id = {u["id"]: u for u in ds.users}
    ds.workspace_pos = {w["id"]: i for i, w in enumerate(ds.workspaces)}

    for a in range(40):
        name = f"{COMPANIES[a % len(COMPANIES)]}{'' if a < len(COMPANIES) else f' {a // len(COMPANIES) + 1}'}"
        ds.accounts.append({"name": name, "objectId": f"001{rng.getrandbits(60):015X}"[:18],
                            "domain": name.lower().replace(" ", "") + ".example",
                            "industry": rng.choice(INDUSTRIES)})

    q_rng = random.Random(f"{seed}:scorecards")
    for w, ws in enumerate(ds.workspaces):
        for k, name in enumerate(["Discovery Call Scorecard", "Demo Scorecard"]):
            questions = []
            for q in range(3):
                qtype = ["SCALE", "MULTIPLE_CHOICE", "OPEN_ENDED"][q]
                question: dict[str, Any] = {
                    "questionId": q_rng.randrange(10**18, 2**63 - 1),
                    "questionRevisionId": q_rng.randrange(10**18, 2**63 - 1),
                    "questionText": ["Did the rep set an agenda?", "Was budget discussed?",
                                     "What could be improved?"][q],
                    "isOverall": q == 0,
                    "questionType": qtype,
                    "answerGuide": "Score honestly.",
                    "minRange": 1, "maxRange": 5,
                    "answerOptions": [{"id": i + 1, "text": t} for i, t in enumerate(["Yes", "No", "Partly"])]
                    if qtype == "MULTIPLE_CHOICE" else [],
                }
                questions.append(question)
            small_users = [u for u in ds.users if int(u["id"]) < 2**63] or [{"id": "1000000000000000001"}]
            ds.scorecards.append({
                "scorecardId": q_rng.randrange(10**18, 2**63 - 1),
                "scorecardName": name,
                "workspaceId": int(ws["id"]),
                "enabled": k == 0 or w % 2 == 0,
                "updaterUserId": int(small_users[k % len(small_users)]["id"]),
                "created": iso(now - timedelta(days=300 + 10 * k)),
                "updated": iso(now - timedelta(days=30 + 5 * k)),
                "questions": questions,
            })

    if not ds.users or not ds.workspaces:
        return ds
    start = (now - timedelta(days=days)).replace(microsecond=0)
    metas: list[tuple[datetime, str, int, float, float, str, str, bool, float]] = []
    for d in range(max(days, 0)):
        day0 = start + timedelta(days=d)
        for _ in range(max(calls_per_day, 0)):
            started = day0 + timedelta(seconds=rng.randrange(86400))
            duration = rng.randint(300, 3600)
            delay = rng.randint(30, 180) * 60
            tdelay = rng.randint(30, 120) * 60
            user = rng.choice(ds.users)
            ws = ds.workspaces[rng.randrange(len(ds.workspaces))]["id"]
            metas.append((started, uid(), duration, delay, tdelay, user["id"], ws,
                          rng.random() < private_ratio, rng.choice(TZ_OFFSETS)))
    metas.sort(key=lambda m: (m[0], m[1]))
    for i, (started, cid, duration, delay, tdelay, user_id, ws, private, tz) in enumerate(metas):
        visible = started + timedelta(seconds=duration + delay)
        ds.calls.append(CallMeta(index=i, id=cid, started=started, duration=duration,
                                 visible_at=visible, transcript_at=visible + timedelta(seconds=tdelay),
                                 workspace_id=ws, primary_user_id=user_id, is_private=private,
                                 tz_offset=tz))
    ds.by_id = {c.id: c for c in ds.calls}
    return ds
