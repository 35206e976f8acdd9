"""Tests for the simulator's further read endpoints (stats, scorecard answers, logs, library, ...)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from simulator import GongSimulator
from simulator.clock import parse_iso
from tests.test_simulator import (
    INTENTIONAL_EXTRAS,
    NOW,
    _cfg,
    _unknown_keys,
    all_pages,
    get,
    post,
    spec,  # noqa: F401 - session fixture reused here
    strip_volatile,
)

NY = ZoneInfo("America/New_York")
TODAY = NOW.astimezone(NY).date()  # 2026-10-31: the company's day differs from the UTC day at NOW
STATS = ("/v2/stats/interaction", "/v2/stats/activity/day-by-day", "/v2/stats/activity/aggregate",
         "/v2/stats/activity/aggregate-by-period")
LOG_TYPES = ("AccessLog", "UserActivityLog", "UserCallPlay", "ExternallySharedCallAccess",
             "ExternallySharedCallPlay")


@pytest.fixture(scope="module")
def validate(spec: dict[str, Any]) -> Callable[[Any, str], None]:  # noqa: F811
    """Like test_simulator's validator; logEntry.logRecord is a Java Map<String, Object> (any values)."""
    spec = copy.deepcopy(spec)
    spec["components"]["schemas"]["logEntry"]["properties"]["logRecord"]["additionalProperties"].pop("type")
    registry = Registry().with_resource("urn:gong", Resource.from_contents(spec, DRAFT202012))

    def _validate(instance: Any, name: str) -> None:
        validator = Draft202012Validator({"$ref": f"urn:gong#/components/schemas/{name}"}, registry=registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
        unknown = _unknown_keys(spec, spec["components"]["schemas"][name], instance, "$")
        assert not [u for u in unknown if u.rsplit(".", 1)[-1] not in INTENTIONAL_EXTRAS], unknown

    return _validate


@pytest.fixture(scope="module")
def sim() -> Iterator[GongSimulator]:
    """A read-only simulator shared by the tests that do not move the clock or mutate data."""
    with GongSimulator(_cfg(days=12)) as s:
        yield s


@pytest.fixture()
def fresh() -> Iterator[GongSimulator]:
    """A simulator a test may mutate (clock, deletions, quota)."""
    with GongSimulator(_cfg(days=12)) as s:
        yield s


def get_pages(sim: GongSimulator, path: str, key: str, params: dict[str, str]) -> tuple[list[Any], int]:
    """Follow GET cursors (in the query) to the end; returns (items, pages)."""
    out: list[Any] = []
    query = dict(params)
    pages = 0
    while True:
        r = get(sim, path, params=query)
        pages += 1
        if r.status_code == 404 and pages == 1:
            return [], 0
        assert r.status_code == 200, r.text
        out += r.json()[key]
        cursor = r.json()["records"].get("cursor")
        if not cursor:
            return out, pages
        query = {**params, "cursor": cursor}


def window(frm: date, to: date, **flt: Any) -> dict[str, Any]:
    return {"filter": {"fromDate": frm.isoformat(), "toDate": to.isoformat(), **flt}}


def ws_ids(sim: GongSimulator) -> list[str]:
    return [w["id"] for w in sim.data.workspaces]


def calls_by(sim: GongSimulator) -> list[dict[str, Any]]:
    return [c["metaData"] for c in all_pages(sim, {"filter": {}})]


# --------------------------------------------------------------------------- schema
def test_every_read_endpoint_matches_spec(sim: GongSimulator, validate: Any) -> None:
    ws = ws_ids(sim)[0]
    user = sim.data.users[5]
    frm, to = TODAY - timedelta(days=7), TODAY
    for body, name in ((window(frm, to), "PublicApiBaseRequestV2MultipleUsersWithDates"),
                       ({**window(frm, to), "aggregationPeriod": "WEEK"}, "RequestWithTimePeriod"),
                       ({"filter": {"reviewFromDate": "2026-10-20"}}, "PublicApiBaseRequestV2AnsweredScorecardsFilter"),
                       ({"filter": {"callIds": sim.call_ids()[:3]}}, "FilterRequestCallsAccessGetDto")):
        validate(body, name)  # the requests the tests send are valid too
    responses = [
        (get(sim, "/v2/settings/trackers"), "Trackers"),
        (post(sim, "/v2/stats/activity/scorecards", {"filter": {}}), "AnsweredScorecards"),
        (post(sim, "/v2/stats/interaction", window(frm, to)), "CompanyUsersIntercationStatsResponse"),
        (post(sim, "/v2/stats/activity/day-by-day", window(frm, to)), "UsersDayByDayActivity"),
        (post(sim, "/v2/stats/activity/aggregate", window(frm, to)), "CompanyUsersAggregateActivityResponse"),
        (post(sim, "/v2/stats/activity/aggregate-by-period", {**window(frm, to), "aggregationPeriod": "WEEK"}),
         "UsersAggregateByPeriodActivity"),
        (get(sim, "/v2/library/folders", params={"workspaceId": ws}), "LibraryResponse"),
        (get(sim, "/v2/all-permission-profiles", params={"workspaceId": ws}), "PermissionProfilesResponse"),
        (get(sim, "/v2/calls/manual-crm-associations"), "ManualAssociationResponse"),
        (get(sim, f"/v2/users/{user['id']}/settings-history"), "SettingsHistory"),
        (get(sim, "/v2/flows", params={"flowOwnerEmail": user["emailAddress"]}), "FlowsResponse"),
        (get(sim, "/v2/coaching", params={"workspace-id": ws, "manager-id": user["managerId"],
                                          "from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
         "CoachingMetrics"),
        (post(sim, "/v2/calls/users-access", {"filter": {"callIds": sim.call_ids()}}), "CallsAccessDetailsResponse"),
    ]
    folders = responses[6][0].json()["folders"]
    fullest = max(folders, key=lambda f: len(get(sim, "/v2/library/folder-content",
                                                     params={"folderId": f["id"]}).json()["calls"]))
    responses.append((get(sim, "/v2/library/folder-content", params={"folderId": fullest["id"]}),
                      "LibraryFolderListOfCallsResponse"))
    profile = responses[7][0].json()["profiles"][2]
    responses.append((get(sim, "/v2/permission-profile/users", params={"profileId": profile["id"]}),
                      "PermissionProfileUsersResponse"))
    for log_type in LOG_TYPES:
        responses.append((get(sim, "/v2/logs", params={"logType": log_type, "fromDateTime": "2026-10-20T00:00:00Z"}),
                          "LogsResponse"))
    for resp, name in responses:
        assert resp.status_code == 200, (name, resp.text)
        body = resp.json()
        assert body["requestId"]
        validate(body, name)
        lists = [v for k, v in body.items() if isinstance(v, list)]
        assert lists and all(lists), f"{name}: empty list in the sample response"
    validate(get(sim, "/v2/logs", params={"fromDateTime": "2026-10-20T00:00:00Z"}).json(), "ErrorResponse")


# --------------------------------------------------------------------------- trackers
def test_trackers_match_call_content_per_workspace(sim: GongSimulator) -> None:
    trackers = get(sim, "/v2/settings/trackers").json()["keywordTrackers"]
    by_id = {t["trackerId"]: t for t in trackers}
    assert len(by_id) == len(trackers) == 6 * 2
    calls = all_pages(sim, {"filter": {}, "contentSelector": {"exposedFields": {"content": {"trackers": True}}}})
    used = {(t["id"], c["metaData"]["workspaceId"]) for c in calls for t in c["content"]["trackers"]}
    assert used and all(by_id[tid]["workspaceId"] == ws for tid, ws in used)
    assert all(by_id[tid]["trackerName"] == t["name"] for c in calls for t in c["content"]["trackers"]
               for tid in [t["id"]])
    ws = ws_ids(sim)[1]
    one = get(sim, "/v2/settings/trackers", params={"workspaceId": ws}).json()["keywordTrackers"]
    assert len(one) == 6 and {t["workspaceId"] for t in one} == {ws}
    assert all(t["languageKeywords"][0]["keywords"] for t in one)
    r = get(sim, "/v2/settings/trackers", params={"workspaceId": "1234567890123456789"})
    assert r.status_code == 404 and r.json()["errors"] == ["No trackers found corresponding to the provided filters"]


# --------------------------------------------------------------------------- answered scorecards
def test_answered_scorecards_reference_calls_and_questions(sim: GongSimulator) -> None:
    rows = all_pages(sim, {"filter": {}}, "/v2/stats/activity/scorecards", "answeredScorecards")
    first = post(sim, "/v2/stats/activity/scorecards", {"filter": {}}).json()["records"]
    assert first["currentPageSize"] == 5 and first["totalRecords"] == len(rows) > 20
    assert len({r["answeredScorecardId"] for r in rows}) == len(rows)
    assert all(isinstance(r["answeredScorecardId"], int) and len(str(r["answeredScorecardId"])) >= 19 for r in rows)
    calls = {c["id"]: c for c in calls_by(sim)}
    cards = {c["scorecardId"]: c for c in get(sim, "/v2/settings/scorecards").json()["scorecards"]}
    for r in rows:
        call = calls[str(r["callId"])]
        assert not call["isPrivate"] and str(r["reviewedUserId"]) == call["primaryUserId"]
        assert str(r["reviewerUserId"]) != call["primaryUserId"]
        assert parse_iso(r["callStartTime"]) == parse_iso(call["started"])
        review = parse_iso(r["reviewTime"])
        assert parse_iso(call["started"]) + timedelta(hours=2) < review <= NOW
        card = cards[r["scorecardId"]]
        assert str(card["workspaceId"]) == call["workspaceId"] and r["scorecardName"] == card["scorecardName"]
        assert [a["questionId"] for a in r["answers"]] == [q["questionId"] for q in card["questions"]]
        for a, q in zip(r["answers"], card["questions"], strict=True):
            if not a["notApplicable"] and q["questionType"] == "SCALE":
                assert q["minRange"] <= a["score"] <= q["maxRange"]
    keys = [(parse_iso(r["reviewTime"]), r["answeredScorecardId"]) for r in rows]
    assert keys == sorted(keys)


def test_answered_scorecards_filters_and_dates(sim: GongSimulator) -> None:
    path, key = "/v2/stats/activity/scorecards", "answeredScorecards"
    rows = all_pages(sim, {"filter": {}}, path, key)
    day = parse_iso(rows[len(rows) // 2]["reviewTime"]).astimezone(NY).date()
    flt = {"reviewFromDate": day.isoformat(), "reviewToDate": (day + timedelta(days=1)).isoformat()}
    one_day = all_pages(sim, {"filter": flt}, path, key)
    expect = [r for r in rows if parse_iso(r["reviewTime"]).astimezone(NY).date() == day]
    assert one_day == expect and one_day
    before = all_pages(sim, {"filter": {"reviewToDate": day.isoformat()}}, path, key)
    after = all_pages(sim, {"filter": {"reviewFromDate": day.isoformat()}}, path, key)
    assert len(before) + len(after) == len(rows)
    call_day = parse_iso(rows[0]["callStartTime"]).astimezone(NY).date()
    by_call = all_pages(sim, {"filter": {"callFromDate": call_day.isoformat(),
                                         "callToDate": (call_day + timedelta(days=1)).isoformat()}}, path, key)
    assert by_call == [r for r in rows if parse_iso(r["callStartTime"]).astimezone(NY).date() == call_day]
    card = str(rows[0]["scorecardId"])
    assert {str(r["scorecardId"]) for r in all_pages(sim, {"filter": {"scorecardIds": [card]}}, path, key)} == {card}
    user = str(rows[0]["reviewedUserId"])
    mine = all_pages(sim, {"filter": {"reviewedUserIds": [user]}}, path, key)
    assert mine == [r for r in rows if str(r["reviewedUserId"]) == user]
    r = post(sim, path, {"filter": {"reviewFromDate": "2027-01-01"}})
    assert r.status_code == 404 and "No answered scorecards found" in r.json()["errors"][0]
    for bad in ({"reviewFromDate": "2026/10/01"}, {"callFromDate": "2026-10-05", "callToDate": "2026-10-05"},
                {"scorecardIds": "x"}):
        assert post(sim, path, {"filter": bad}).status_code == 400
    assert post(sim, path, {}).status_code == 400


def test_answered_scorecards_appear_as_reviews_are_published(fresh: GongSimulator) -> None:
    path, key = "/v2/stats/activity/scorecards", "answeredScorecards"
    before = all_pages(fresh, {"filter": {}}, path, key)
    fresh.advance(timedelta(days=5))
    after = all_pages(fresh, {"filter": {}}, path, key)
    assert len(after) > len(before)
    old = {r["answeredScorecardId"] for r in before}
    new = [r for r in after if r["answeredScorecardId"] not in old]
    assert all(parse_iso(r["reviewTime"]) > NOW for r in new)


# --------------------------------------------------------------------------- stats
def test_stats_date_rules(sim: GongSimulator) -> None:
    for path in STATS:
        extra = {"aggregationPeriod": "DAY"} if path.endswith("by-period") else {}
        same_day = post(sim, path, {**window(TODAY - timedelta(days=2), TODAY - timedelta(days=2)), **extra})
        assert same_day.status_code == 400 and "exclusive" in same_day.json()["errors"][0]
        future = post(sim, path, {**window(TODAY - timedelta(days=2), TODAY + timedelta(days=1)), **extra})
        assert future.status_code == 400 and "current day" in future.json()["errors"][0]
        assert post(sim, path, {**window(TODAY - timedelta(days=2), TODAY), **extra}).status_code == 200
        assert post(sim, path, {"filter": {"fromDate": "2026-10-20"}, **extra}).status_code == 400
        assert post(sim, path, {**window(TODAY - timedelta(days=2), TODAY), **extra,
                                "filter": {"fromDate": "20-10-2026", "toDate": "2026-10-25"}}).status_code == 400
        empty = post(sim, path, {**window(date(2020, 1, 1), date(2020, 1, 2)), **extra})
        assert empty.status_code == 404 and "found corresponding to the provided filters" in empty.json()["errors"][0]
    r = post(sim, STATS[3], window(TODAY - timedelta(days=2), TODAY))
    assert r.status_code == 400 and "aggregationPeriod" in r.json()["errors"][0]


def test_day_by_day_is_derived_from_calls_in_company_time(sim: GongSimulator) -> None:
    frm, to = TODAY - timedelta(days=10), TODAY
    users = all_pages(sim, window(frm, to), "/v2/stats/activity/day-by-day", "usersDetailedActivities")
    hosted: dict[tuple[str, str], set[str]] = {}
    for c in calls_by(sim):
        day = parse_iso(c["started"]).astimezone(NY).date()
        if frm <= day < to:
            hosted.setdefault((c["primaryUserId"], day.isoformat()), set()).add(c["id"])
    seen: dict[tuple[str, str], set[str]] = {}
    for u in users:
        assert len(u["userDailyActivityStats"]) == 10  # every day of the range, active or not
        for cell in u["userDailyActivityStats"]:
            start = datetime.fromisoformat(cell["fromDate"])
            assert start.utcoffset() in (timedelta(hours=-4), timedelta(hours=-5))  # EDT/EST midnight
            assert datetime.fromisoformat(cell["toDate"]).date() == start.date() + timedelta(days=1)
            if cell["callsAsHost"]:
                seen[(u["userId"], start.date().isoformat())] = set(cell["callsAsHost"])
            assert not set(cell["callsAsHost"]) & set(cell["callsAttended"])
    assert seen == hosted
    first_day = users[0]["userDailyActivityStats"][0]
    assert first_day["fromDate"] == datetime(frm.year, frm.month, frm.day, tzinfo=NY).isoformat()
    one = post(sim, "/v2/stats/activity/day-by-day", window(frm, frm + timedelta(days=1))).json()
    assert all(len(u["userDailyActivityStats"]) == 1 for u in one["usersDetailedActivities"])


def test_aggregates_agree_with_day_by_day(sim: GongSimulator) -> None:
    frm, to = TODAY - timedelta(days=10), TODAY
    daily = all_pages(sim, window(frm, to), "/v2/stats/activity/day-by-day", "usersDetailedActivities")
    agg = all_pages(sim, window(frm, to), "/v2/stats/activity/aggregate", "usersAggregateActivityStats")
    assert [u["userId"] for u in agg] == [u["userId"] for u in daily] and len(agg) > 5
    for d, a in zip(daily, agg, strict=True):
        for field, count in a["userAggregateActivityStats"].items():
            assert count == len({cid for cell in d["userDailyActivityStats"] for cid in cell[field]})
        assert sum(a["userAggregateActivityStats"].values()) > 0
    totals = Counter[str]()
    for a in agg:
        totals.update(a["userAggregateActivityStats"])
    assert all(totals[f] > 0 for f in ("callsAsHost", "callsAttended", "othersCallsListenedTo",
                                       "callsScorecardsFilled", "callsCommentsGiven"))
    weekly = all_pages(sim, {**window(frm, to), "aggregationPeriod": "WEEK"},
                       "/v2/stats/activity/aggregate-by-period", "usersAggregateActivity")
    for w, a in zip(weekly, agg, strict=True):
        periods = w["userAggregateActivity"]
        starts = [datetime.fromisoformat(p["fromDate"]).date() for p in periods]
        assert starts[0] == frm and all(s.weekday() == 0 for s in starts[1:])
        assert datetime.fromisoformat(periods[-1]["toDate"]).date() == to
        assert all(p["toDate"] == q["fromDate"] for p, q in zip(periods, periods[1:], strict=False))
        assert sum(p["callsAsHost"] for p in periods) == a["userAggregateActivityStats"]["callsAsHost"]
    quarters = post(sim, "/v2/stats/activity/aggregate-by-period",
                    {**window(date(2026, 9, 25), to), "aggregationPeriod": "QUARTER"}).json()
    periods = quarters["usersAggregateActivity"][0]["userAggregateActivity"]
    spans = [(p["fromDate"][:10], p["toDate"][:10]) for p in periods]
    assert spans == [("2026-09-25", "2026-10-01"), ("2026-10-01", to.isoformat())]


def test_stats_user_filter_paging_and_interaction(sim: GongSimulator) -> None:
    frm, to = TODAY - timedelta(days=10), TODAY
    body = window(frm, to)
    first = post(sim, "/v2/stats/activity/aggregate", body).json()
    assert first["records"]["currentPageSize"] == 5 and "cursor" in first["records"]
    assert first["timeZone"] == "America/New_York"
    assert first["fromDateTime"] == datetime(frm.year, frm.month, frm.day, tzinfo=NY).isoformat()
    # The cursor goes in the body; in the query string of a POST it is ignored.
    again = post(sim, "/v2/stats/activity/aggregate", body, params={"cursor": first["records"]["cursor"]}).json()
    assert again["usersAggregateActivityStats"] == first["usersAggregateActivityStats"]
    users = [u["userId"] for u in first["usersAggregateActivityStats"][:2]]
    some = all_pages(sim, window(frm, to, userIds=users), "/v2/stats/activity/aggregate",
                     "usersAggregateActivityStats")
    assert [u["userId"] for u in some] == users
    stats = all_pages(sim, body, "/v2/stats/interaction", "peopleInteractionStats")
    hosts = {c["primaryUserId"] for c in calls_by(sim) if frm <= parse_iso(c["started"]).astimezone(NY).date() < to}
    assert {s["userId"] for s in stats} == hosts
    names = {n["name"] for s in stats for n in s["personInteractionStats"]}
    assert names == {"Longest Monologue", "Longest Customer Story", "Interactivity", "Patience", "Question Rate"}
    assert post(sim, "/v2/stats/interaction", window(frm, to, userIds=["1"])).status_code == 404


def test_company_timezone_is_configurable() -> None:
    with GongSimulator(_cfg(days=3, company_timezone="Asia/Tokyo")) as tokyo:
        today = NOW.astimezone(ZoneInfo("Asia/Tokyo")).date()
        assert today == date(2026, 11, 1)
        body = window(today - timedelta(days=2), today)
        r = post(tokyo, "/v2/stats/activity/aggregate", body).json()
        assert r["timeZone"] == "Asia/Tokyo" and r["fromDateTime"].endswith("+09:00")
        # The same dates mean other instants than in New York.
        assert post(tokyo, "/v2/stats/activity/aggregate", window(today, today + timedelta(days=1))).status_code == 400


# --------------------------------------------------------------------------- library, profiles
def test_library_folders_and_content(sim: GongSimulator) -> None:
    folders = get(sim, "/v2/library/folders").json()["folders"]
    assert len(folders) == 12
    ws = ws_ids(sim)[0]
    mine = get(sim, "/v2/library/folders", params={"workspaceId": ws}).json()["folders"]
    ids = {f["id"] for f in mine}
    assert len(mine) == 6 and all(f.get("parentFolderId", next(iter(ids))) in ids for f in mine)
    assert any("parentFolderId" not in f for f in mine)
    calls = {c["id"]: c for c in calls_by(sim)}
    total = 0
    for f in folders:
        content = get(sim, "/v2/library/folder-content", params={"folderId": f["id"]}).json()
        assert content["id"] == f["id"] and content["name"] == f["name"]
        created = [parse_iso(c["created"]) for c in content["calls"]]
        assert created == sorted(created) and all(t <= NOW for t in created)
        for c in content["calls"]:
            meta = calls[c["id"]]
            assert (meta["workspaceId"] == ws) == (f["id"] in ids)
            assert not meta["isPrivate"] and c["title"] == meta["title"]
            assert parse_iso(c["created"]) >= parse_iso(meta["started"])
        if content["calls"]:
            assert parse_iso(f["updated"]) == max(created)
        total += len(content["calls"])
    assert total > 3
    assert get(sim, "/v2/library/folder-content").status_code == 400
    assert get(sim, "/v2/library/folder-content", params={"folderId": "1234567890123456789"}).status_code == 404


def test_permission_profiles_cover_every_user(sim: GongSimulator) -> None:
    assert get(sim, "/v2/all-permission-profiles").status_code == 400
    assert get(sim, "/v2/all-permission-profiles", params={"workspaceId": "1"}).status_code == 400
    everyone = {u["id"] for u in sim.data.users}
    managers = {u["managerId"] for u in sim.data.users if u.get("managerId")}
    all_ids = set()
    for ws in ws_ids(sim):
        profiles = get(sim, "/v2/all-permission-profiles", params={"workspaceId": ws}).json()["profiles"]
        members = {p["name"]: [u["id"] for u in get(sim, "/v2/permission-profile/users",
                                                    params={"profileId": p["id"]}).json()["users"]]
                   for p in profiles}
        assert sorted(sum(members.values(), [])) == sorted(everyone)
        assert members["Administrator"] == [sim.data.users[0]["id"]]
        assert set(members["Sales Manager"]) == managers - {sim.data.users[0]["id"]}
        lead = next(p for p in profiles if p["name"] == "Sales Manager")["callsAccess"]
        assert lead["permissionLevel"] == "managers-team" and set(lead["teamLeadIds"]) == managers
        all_ids |= {p["id"] for p in profiles}
    assert len(all_ids) == 8
    assert get(sim, "/v2/permission-profile/users").status_code == 400


# --------------------------------------------------------------------------- logs, associations
def test_logs_types_paging_and_windows(sim: GongSimulator) -> None:
    assert get(sim, "/v2/logs", params={"fromDateTime": "2026-10-20T00:00:00Z"}).status_code == 400
    assert get(sim, "/v2/logs", params={"logType": "Nope", "fromDateTime": "2026-10-20T00:00:00Z"}).status_code == 400
    assert get(sim, "/v2/logs", params={"logType": "AccessLog"}).status_code == 400
    call_ids = set(sim.call_ids(include_private=False))
    for log_type in LOG_TYPES:
        params = {"logType": log_type, "fromDateTime": "2026-10-25T00:00:00Z", "toDateTime": "2026-10-31T00:00:00Z"}
        entries, pages = get_pages(sim, "/v2/logs", "logEntries", params)
        assert entries, log_type
        times = [parse_iso(e["eventTime"]) for e in entries]
        assert times == sorted(times)
        assert all(datetime(2026, 10, 25, tzinfo=UTC) <= t < datetime(2026, 10, 31, tzinfo=UTC) for t in times)
        assert pages == -(-len(entries) // 5)
        if log_type.startswith("Externally"):
            assert all("userId" not in e and e["userEmailAddress"] for e in entries)
        else:
            assert all(e["userId"] in {u["id"] for u in sim.data.users} for e in entries)
        if log_type in ("UserCallPlay", "ExternallySharedCallAccess", "ExternallySharedCallPlay"):
            assert {e["logRecord"]["callId"] for e in entries} <= call_ids
        # fromDateTime inclusive, toDateTime exclusive
        pivot = entries[len(entries) // 2]["eventTime"]
        incl, _ = get_pages(sim, "/v2/logs", "logEntries", {**params, "fromDateTime": pivot})
        excl, _ = get_pages(sim, "/v2/logs", "logEntries", {**params, "toDateTime": pivot})
        assert incl[0]["eventTime"] == pivot and all(e["eventTime"] != pivot for e in excl)
        assert len(incl) + len(excl) == len(entries)
    activity = get_pages(sim, "/v2/logs", "logEntries", {"logType": "UserActivityLog",
                                                          "fromDateTime": "2026-10-20T00:00:00Z"})[0]
    assert any("impersonatorUserId" in e for e in activity)
    future = get(sim, "/v2/logs", params={"logType": "AccessLog", "fromDateTime": "2026-11-05T00:00:00Z"})
    assert future.status_code == 404
    assert future.json()["errors"] == ["No logs found corresponding to the provided filters"]


def test_logs_grow_with_the_clock(fresh: GongSimulator) -> None:
    params = {"logType": "UserCallPlay", "fromDateTime": "2026-10-25T00:00:00Z"}
    before, _ = get_pages(fresh, "/v2/logs", "logEntries", params)
    fresh.advance(timedelta(days=2))
    after, _ = get_pages(fresh, "/v2/logs", "logEntries", params)
    assert after[:len(before)] == before and len(after) > len(before)
    listened = post(fresh, "/v2/stats/activity/aggregate", window(date(2026, 10, 20), date(2026, 11, 2))).json()
    assert listened["records"]["totalRecords"] > 0


def test_manual_crm_associations(sim: GongSimulator) -> None:
    rows, pages = get_pages(sim, "/v2/calls/manual-crm-associations", "associations", {})
    assert len(rows) > 5 and pages == -(-len(rows) // 5)
    created = [parse_iso(r["created"]) for r in rows]
    assert created == sorted(created) and all(t <= NOW for t in created)
    calls = {c["metaData"]["id"]: c for c in all_pages(sim, {"filter": {}, "contentSelector": {"context": "Extended"}})}
    first_seen: set[str] = set()
    for r in rows:
        assert r["callId"] in calls and r["userId"] in sim.data.user_by_id
        if r["callId"] not in first_seen:  # the first association is to the call's own account and deal
            first_seen.add(r["callId"])
            objects = {o["objectType"]: o["objectId"] for o in calls[r["callId"]]["context"][0]["objects"]}
            assert r["associatedCrmObjects"] == [{"accountCrmId": objects["Account"],
                                                  "dealCrmId": objects["Opportunity"]}]
    assert len(first_seen) < len(rows)  # some calls were re-associated: both events are listed
    pivot = rows[len(rows) // 2]["created"]
    since, _ = get_pages(sim, "/v2/calls/manual-crm-associations", "associations", {"fromDateTime": pivot})
    assert since[0]["created"] == pivot and since == [r for r in rows if parse_iso(r["created"]) >= parse_iso(pivot)]
    empty = get(sim, "/v2/calls/manual-crm-associations", params={"fromDateTime": "2027-01-01T00:00:00Z"})
    assert empty.status_code == 200 and empty.json()["associations"] == []  # the spec lists no 404 here
    assert get(sim, "/v2/calls/manual-crm-associations", params={"fromDateTime": "soon"}).status_code == 400


# --------------------------------------------------------------------------- opt-in endpoints
def test_settings_history_ends_at_current_settings(sim: GongSimulator) -> None:
    for user in sim.data.users:
        history = get(sim, f"/v2/users/{user['id']}/settings-history").json()["userSettingsHistory"]
        times = [parse_iso(h["time"]) for h in history]
        assert times == sorted(times) and all(t <= NOW for t in times)
        last = {h["setting"]: h["value"] for h in history}
        assert last["active"] == user["active"]
        assert last["webConferencesRecorded"] == user["settings"]["webConferencesRecorded"]
        assert last["callsImported"] == user["settings"]["telephonyCallsImported"]
    r = get(sim, "/v2/users/1234567890123456789/settings-history")
    assert r.status_code == 404 and r.json()["requestId"]
    assert get(sim, "/v2/users/x/y/settings-history").status_code == 404


def test_flows_per_owner(sim: GongSimulator) -> None:
    assert get(sim, "/v2/flows").status_code == 400
    assert get(sim, "/v2/flows", params={"flowOwnerEmail": "nobody@example.com"}).status_code == 400
    seen: dict[str, dict[str, Any]] = {}
    for user in sim.data.users:
        flows, _ = get_pages(sim, "/v2/flows", "flows", {"flowOwnerEmail": user["emailAddress"].upper()})
        company = [f for f in flows if f["visibility"] == "Company"]
        assert len(company) == 8
        for f in flows:
            assert seen.setdefault(f["id"], f) == f  # the same flow is the same for every owner
    assert {f["visibility"] for f in seen.values()} == {"Company", "Personal", "Shared"}
    ws = ws_ids(sim)[0]
    user = sim.data.users[0]
    only, _ = get_pages(sim, "/v2/flows", "flows", {"flowOwnerEmail": user["emailAddress"], "workspaceId": ws})
    assert only and len([f for f in only if f["visibility"] == "Company"]) == 4


def test_coaching_per_manager(sim: GongSimulator) -> None:
    ws = ws_ids(sim)[0]
    managers = sorted({u["managerId"] for u in sim.data.users if u.get("managerId")})
    params = {"workspace-id": ws, "from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    calls = {c["id"]: c for c in calls_by(sim)}
    listened = 0
    for mid in managers:
        data = get(sim, "/v2/coaching", params={**params, "manager-id": mid}).json()["coachingData"]
        assert len(data) == 1 and data[0]["manager"]["id"] == mid
        reports = {u["id"] for u in sim.data.users if u.get("managerId") == mid}
        assert {r["report"]["id"] for r in data[0]["directReportsMetrics"]} == reports
        for rep in data[0]["directReportsMetrics"]:
            for name, ids in rep["metrics"].items():
                assert all(calls[i]["primaryUserId"] == rep["report"]["id"] and calls[i]["workspaceId"] == ws
                           for i in ids), name
            listened += len(rep["metrics"]["callsListenedTo"])
    assert listened > 0
    rep = sim.data.users[7]["id"]
    assert get(sim, "/v2/coaching", params={**params, "manager-id": rep}).json()["coachingData"] == []
    assert get(sim, "/v2/coaching", params={"workspace-id": ws, "manager-id": managers[0]}).status_code == 400
    assert get(sim, "/v2/coaching", params={**params, "manager-id": managers[0],
                                            "to": "2026-10-01T00:00:00Z"}).status_code == 400


def test_users_access(sim: GongSimulator) -> None:
    ids = sim.call_ids()
    data = post(sim, "/v2/calls/users-access", {"filter": {"callIds": ids + ["1234567890123456789"]}}).json()
    rows = data["callAccessList"]
    assert [r["callId"] for r in rows] == ids
    granted = [r for r in rows if r["users"]]
    assert granted and all(u["userId"] in sim.data.user_by_id for r in granted for u in r["users"])
    assert post(sim, "/v2/calls/users-access", {"filter": {}}).status_code == 400
    assert post(sim, "/v2/calls/users-access", {"filter": {"callIds": [1]}}).status_code == 400


# --------------------------------------------------------------------------- hooks
def test_deleted_call_disappears_everywhere(fresh: GongSimulator) -> None:
    path = "/v2/stats/activity/scorecards"
    rows = all_pages(fresh, {"filter": {}}, path, "answeredScorecards")
    victim = str(rows[0]["callId"])
    assert victim in fresh.call_ids()

    def mentions() -> dict[str, bool]:
        day = window(TODAY - timedelta(days=12), TODAY)
        folders = get(fresh, "/v2/library/folders").json()["folders"]
        lib = [c["id"] for f in folders for c in get(fresh, "/v2/library/folder-content",
                                                     params={"folderId": f["id"]}).json()["calls"]]
        logs = [e["logRecord"].get("callId") for t in LOG_TYPES[2:] for e in
                get_pages(fresh, "/v2/logs", "logEntries", {"logType": t, "fromDateTime": "2026-10-01T00:00:00Z"})[0]]
        access = post(fresh, "/v2/calls/users-access", {"filter": {"callIds": [victim]}}).json()["callAccessList"]
        return {
            "calls": victim in {c["metaData"]["id"] for c in all_pages(fresh, {"filter": {}})},
            "transcript": post(fresh, "/v2/calls/transcript", {"filter": {"callIds": [victim]}}).status_code == 200,
            "scorecards": victim in {str(r["callId"]) for r in all_pages(fresh, {"filter": {}}, path,
                                                                           "answeredScorecards")},
            "stats": victim in json.dumps(all_pages(fresh, day, "/v2/stats/activity/day-by-day",
                                                    "usersDetailedActivities")),
            "library_or_logs": victim in lib + logs,
            "access": bool(access),
        }

    before = mentions()
    assert before["calls"] and before["transcript"] and before["scorecards"] and before["stats"]
    r = fresh.handle("DELETE", f"/_sim/calls/{victim}", {}, b"")
    assert r.status == 200 and fresh.is_deleted(victim)
    assert not any(mentions().values())
    assert victim not in fresh.call_ids()
    assert fresh.handle("DELETE", "/_sim/calls/1", {}, b"").status == 404
    assert get(fresh, "/_sim/stats", headers={}).json()["deletedCalls"] == [victim]


def test_quota_can_run_out_mid_run(fresh: GongSimulator) -> None:
    fresh.set_quota(10**6)
    assert get(fresh, "/v2/settings/trackers").status_code == 200
    used = get(fresh, "/_sim/stats", headers={}).json()["quotaUsedToday"]
    fresh.set_quota(used + 2)  # two requests left today
    body = window(TODAY - timedelta(days=3), TODAY)
    first = post(fresh, "/v2/stats/activity/aggregate", body)
    assert first.status_code == 200 and "cursor" in first.json()["records"]
    second = post(fresh, "/v2/stats/activity/aggregate", {**body, "cursor": first.json()["records"]["cursor"]})
    assert second.status_code == 200
    third = post(fresh, "/v2/stats/activity/aggregate", body)
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 3600
    r = post(fresh, "/_sim/quota", {"limit": 100, "used": 0}, headers={})
    assert r.status_code == 200 and r.json()["dailyQuota"] == 100
    assert post(fresh, "/v2/stats/activity/aggregate", body).status_code == 200
    assert post(fresh, "/_sim/quota", {"limit": "lots"}, headers={}).status_code == 400


def test_edits_show_in_library_and_stats_follow_visibility(fresh: GongSimulator) -> None:
    folders = get(fresh, "/v2/library/folders").json()["folders"]
    entry = next(c for f in folders for c in get(fresh, "/v2/library/folder-content",
                                                 params={"folderId": f["id"]}).json()["calls"])
    fresh.edit_call(entry["id"], title="Renamed call")
    titles = {c["id"]: c["title"] for f in folders for c in get(fresh, "/v2/library/folder-content",
                                                                params={"folderId": f["id"]}).json()["calls"]}
    assert titles[entry["id"]] == "Renamed call"
    hidden = [i for i in fresh.call_ids(visible_only=False) if i not in set(fresh.call_ids())]
    meta = fresh.call_meta(hidden[0])
    day = meta.started.astimezone(NY).date()
    fresh.set_now(meta.visible_at + timedelta(days=1))
    body = window(day, day + timedelta(days=1), userIds=[meta.primary_user_id])
    hosted = post(fresh, "/v2/stats/activity/day-by-day", body).json()["usersDetailedActivities"][0]
    assert meta.id in hosted["userDailyActivityStats"][0]["callsAsHost"]
    fresh.set_now(meta.visible_at - timedelta(seconds=1))
    r = post(fresh, "/v2/stats/activity/day-by-day", body)
    if r.status_code == 200:  # other activity that day, but not the still-processing call
        assert meta.id not in r.json()["usersDetailedActivities"][0]["userDailyActivityStats"][0]["callsAsHost"]


def test_read_endpoints_are_deterministic() -> None:
    def snapshot() -> Any:
        with GongSimulator(_cfg(days=6)) as s:
            body = window(TODAY - timedelta(days=5), TODAY)
            return strip_volatile([
                post(s, "/v2/stats/activity/scorecards", {"filter": {}}).json(),
                post(s, "/v2/stats/activity/day-by-day", body).json(),
                get(s, "/v2/logs", params={"logType": "UserActivityLog",
                                           "fromDateTime": "2026-10-28T00:00:00Z"}).json(),
                get(s, "/v2/library/folders").json(),
                get(s, "/v2/calls/manual-crm-associations").json(),
                get(s, "/v2/flows", params={"flowOwnerEmail": s.data.users[3]["emailAddress"]}).json(),
            ])

    assert snapshot() == snapshot()
