"""Tests for the local Gong API v2 simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from simulator import GongSimulator, SimConfig
from simulator.clock import parse_iso

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "simulator" / "spec" / "gong-openapi-v2.json"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BEARER = {"Authorization": "Bearer sim-bearer-token"}
FULL_SELECTOR: dict[str, Any] = {
    "context": "Extended",
    "exposedFields": {
        "parties": True,
        "media": True,
        "content": {k: True for k in (
            "structure", "topics", "trackers", "trackerOccurrences", "pointsOfInterest",
            "brief", "outline", "highlights", "callOutcome", "keyPoints")},
        "interaction": {"speakers": True, "video": True, "personInteractionStats": True,
                        "questions": True},
        "collaboration": {"publicComments": True},
    },
}
# Extra fields the simulator adds on purpose (Gong adds fields at any time).
INTENTIONAL_EXTRAS = {"meetingPlatform", "gongInternalScore", "description"}


# --------------------------------------------------------------------------- schema helpers
def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12 (nullable, loose untyped values)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    # The spec types CRM field values as a bare "object" yet its own example is a
    # string ("Gong Inc."); real Gong sends scalars, so such schemas accept anything.
    if (out.get("type") == "object" and "properties" not in out and "$ref" not in out
            and "example" in out and not isinstance(out["example"], dict)):
        out.pop("type")
    return out


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """The converted OpenAPI document."""
    return _convert(json.loads(SPEC_PATH.read_text()))


@pytest.fixture(scope="session")
def validate(spec: dict[str, Any]) -> Any:
    """validate(instance, 'SchemaName') against #/components/schemas/SchemaName."""
    registry = Registry().with_resource("urn:gong", Resource.from_contents(spec, DRAFT202012))

    def _validate(instance: Any, name: str) -> None:
        validator = Draft202012Validator({"$ref": f"urn:gong#/components/schemas/{name}"},
                                         registry=registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
        unknown = _unknown_keys(spec, spec["components"]["schemas"][name], instance, "$")
        assert not [u for u in unknown if u.rsplit(".", 1)[-1] not in INTENTIONAL_EXTRAS], unknown

    return _validate


def _unknown_keys(spec: dict[str, Any], schema: dict[str, Any], inst: Any, where: str) -> list[str]:
    """Keys present in the instance but not declared in the schema (typo guard)."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found: list[str] = []
    if isinstance(inst, dict) and "properties" in schema:
        for key, value in inst.items():
            sub = schema["properties"].get(key)
            if sub is None:
                found.append(f"{where}.{key}")
            else:
                found += _unknown_keys(spec, sub, value, f"{where}.{key}")
    elif isinstance(inst, list) and "items" in schema:
        for i, value in enumerate(inst):
            found += _unknown_keys(spec, schema["items"], value, f"{where}[{i}]")
    return found


# --------------------------------------------------------------------------- fixtures
def _cfg(**kw: Any) -> SimConfig:
    base: dict[str, Any] = {"seed": 7, "users": 12, "workspaces": 2, "calls_per_day": 8, "days": 5,
                            "sentences_per_call": 20, "page_size": 5, "rate_limit": None,
                            "daily_quota": None, "now": NOW, "private_ratio": 0.2}
    base.update(kw)
    return SimConfig(**base)


@pytest.fixture()
def sim() -> Iterator[GongSimulator]:
    with GongSimulator(_cfg()) as s:
        yield s


def post(sim: GongSimulator, path: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(sim.base_url + path, json=body, headers=kw.pop("headers", BEARER),
                         timeout=10, **kw)


def get(sim: GongSimulator, path: str, **kw: Any) -> requests.Response:
    return requests.get(sim.base_url + path, headers=kw.pop("headers", BEARER), timeout=10, **kw)


def all_pages(sim: GongSimulator, body: dict[str, Any], path: str = "/v2/calls/extensive",
              key: str = "calls") -> list[dict[str, Any]]:
    """Follow POST cursors (in the body) to the end."""
    out: list[dict[str, Any]] = []
    req = dict(body)
    while True:
        r = post(sim, path, req)
        if r.status_code == 404:
            return out
        assert r.status_code == 200, r.text
        data = r.json()
        out += data[key]
        if "cursor" not in data["records"]:
            return out
        req = {**body, "cursor": data["records"]["cursor"]}


def strip_volatile(obj: Any) -> Any:
    """Drop requestId and media links, which legitimately differ between requests."""
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in ("requestId", "media")}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- tests
def test_every_endpoint_matches_spec(sim: GongSimulator, validate: Any) -> None:
    r = get(sim, "/v2/workspaces")
    assert r.status_code == 200
    validate(r.json(), "WorkspacesMetadata")
    r = get(sim, "/v2/users")
    validate(r.json(), "UsersMetadata")
    r = get(sim, "/v2/settings/scorecards")
    validate(r.json(), "Scorecards")
    ws = r.json()["scorecards"][0]["workspaceId"]
    r = get(sim, "/v2/settings/scorecards", params={"workspaceId": str(ws)})
    assert r.status_code == 200 and {c["workspaceId"] for c in r.json()["scorecards"]} == {ws}
    r = post(sim, "/v2/calls/extensive", {"filter": {}, "contentSelector": FULL_SELECTOR})
    assert r.status_code == 200
    body = r.json()
    validate(body, "Calls")
    call = body["calls"][0]
    assert set(call) == {"metaData", "context", "parties", "content", "interaction",
                         "collaboration", "media"}
    assert "occurrences" in call["content"]["trackers"][0]
    ids = [c["metaData"]["id"] for c in body["calls"]]
    r = post(sim, "/v2/calls/transcript", {"filter": {"callIds": ids}})
    assert r.status_code == 200
    validate(r.json(), "CallTranscripts")
    validate(get(sim, "/v2/users", headers={}).json(), "ErrorResponse")
    empty = post(sim, "/v2/calls/extensive", {"filter": {"toDateTime": "2000-01-01T00:00:00Z"}})
    validate(empty.json(), "ErrorResponse")
    # Request bodies the tests send are themselves valid per the spec.
    validate({"filter": {}, "contentSelector": FULL_SELECTOR},
             "PublicApiBaseRequestWithDataV2CallsRequestFilterWithOwnersContentSelector")


def test_content_selector_projection(sim: GongSimulator) -> None:
    r = post(sim, "/v2/calls/extensive", {"filter": {}})
    assert set(r.json()["calls"][0]) == {"metaData"}
    sel = {"context": "Basic", "exposedFields": {"content": {"trackers": True}}}
    call = post(sim, "/v2/calls/extensive", {"filter": {}, "contentSelector": sel}).json()["calls"][0]
    assert set(call) == {"metaData", "context", "content"}
    assert set(call["content"]) == {"trackers"}
    assert all("fields" not in o for ctx in call["context"] for o in ctx["objects"])
    assert all("occurrences" not in t for t in call["content"]["trackers"])


def test_auth(sim: GongSimulator) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        r = get(sim, "/v2/users", headers=headers)
        assert r.status_code == 401
        assert r.json()["requestId"] and r.json()["errors"]
    assert get(sim, "/v2/users", auth=("sim-access-key", "sim-access-key-secret"),
               headers={}).status_code == 200
    assert get(sim, "/v2/users").status_code == 200


def test_get_paging_uses_query_cursor(sim: GongSimulator) -> None:
    seen: list[str] = []
    params: dict[str, str] = {}
    pages = 0
    while True:
        data = get(sim, "/v2/users", params=params).json()
        pages += 1
        assert data["records"]["totalRecords"] == 12
        assert data["records"]["currentPageNumber"] == pages - 1
        seen += [u["id"] for u in data["users"]]
        if "cursor" not in data["records"]:
            break
        params = {"cursor": data["records"]["cursor"]}
    assert pages == 3 and len(seen) == len(set(seen)) == 12
    assert get(sim, "/v2/users", params={"cursor": "garbage!"}).status_code == 400


def test_post_paging_cursor_in_body_only(sim: GongSimulator) -> None:
    body = {"filter": {"fromDateTime": "2026-10-27T00:00:00Z"}}
    first = post(sim, "/v2/calls/extensive", body).json()
    cursor = first["records"]["cursor"]
    assert first["records"]["currentPageSize"] == 5
    second = post(sim, "/v2/calls/extensive", {**body, "cursor": cursor}).json()
    assert second["records"]["currentPageNumber"] == 1
    first_ids = [c["metaData"]["id"] for c in first["calls"]]
    assert not set(first_ids) & {c["metaData"]["id"] for c in second["calls"]}
    # A cursor in the query string of a POST is ignored: page 1 again.
    again = post(sim, "/v2/calls/extensive", body, params={"cursor": cursor}).json()
    assert [c["metaData"]["id"] for c in again["calls"]] == first_ids
    assert again["records"]["currentPageNumber"] == 0
    # A cursor for another filter or a garbage cursor is refused.
    other = {"filter": {"fromDateTime": "2026-10-28T00:00:00Z"}, "cursor": cursor}
    assert post(sim, "/v2/calls/extensive", other).status_code == 400
    assert post(sim, "/v2/calls/extensive", {**body, "cursor": "xyz"}).status_code == 400
    calls = all_pages(sim, body)
    assert len(calls) == first["records"]["totalRecords"]
    keys = [(parse_iso(c["metaData"]["started"]), c["metaData"]["id"]) for c in calls]
    assert keys == sorted(keys)


def test_date_window_inclusive_exclusive(sim: GongSimulator) -> None:
    calls = all_pages(sim, {"filter": {}})
    target = calls[len(calls) // 2]["metaData"]
    started = target["started"]
    incl = all_pages(sim, {"filter": {"fromDateTime": started}})
    assert incl[0]["metaData"]["id"] == target["id"]
    excl = all_pages(sim, {"filter": {"toDateTime": started}})
    assert target["id"] not in {c["metaData"]["id"] for c in excl}
    assert len(incl) + len(excl) == len(calls)
    # Offsets are honoured: same instant written in another zone.
    utc = parse_iso(started).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all_pages(sim, {"filter": {"fromDateTime": utc}})[0]["metaData"]["id"] == target["id"]


def test_filters_by_ids_workspace_owner(sim: GongSimulator) -> None:
    calls = all_pages(sim, {"filter": {}})
    meta = calls[3]["metaData"]
    one = all_pages(sim, {"filter": {"callIds": [meta["id"]]}})
    assert [c["metaData"]["id"] for c in one] == [meta["id"]]
    by_ws = all_pages(sim, {"filter": {"workspaceId": meta["workspaceId"]}})
    assert by_ws and {c["metaData"]["workspaceId"] for c in by_ws} == {meta["workspaceId"]}
    by_owner = all_pages(sim, {"filter": {"primaryUserIds": [meta["primaryUserId"]]}})
    assert {c["metaData"]["primaryUserId"] for c in by_owner} == {meta["primaryUserId"]}


def test_empty_result_404_differs_from_unknown_path(sim: GongSimulator) -> None:
    r = post(sim, "/v2/calls/extensive", {"filter": {"fromDateTime": "2030-01-01T00:00:00Z"}})
    assert r.status_code == 404
    assert r.json()["errors"] == ["No calls found corresponding to the provided filters"]
    assert r.json()["requestId"]
    r = post(sim, "/v2/calls/transcript", {"filter": {"fromDateTime": "2030-01-01T00:00:00Z"}})
    assert r.status_code == 404 and "No calls found" in r.json()["errors"][0]
    r = get(sim, "/v2/nope")
    assert r.status_code == 404
    assert "No calls found" not in r.text and not r.headers["Content-Type"].startswith("application/json")


def test_bad_requests(sim: GongSimulator) -> None:
    ids = [str(10**18 + i) for i in range(101)]
    r = post(sim, "/v2/calls/transcript", {"filter": {"callIds": ids}})
    assert r.status_code == 400 and "100" in r.json()["errors"][0]
    r = requests.post(sim.base_url + "/v2/calls/extensive", data=b"{not json", headers=BEARER, timeout=5)
    assert r.status_code == 400 and r.json()["requestId"]
    assert post(sim, "/v2/calls/extensive", {"filter": {"fromDateTime": "yesterday"}}).status_code == 400
    assert post(sim, "/v2/calls/extensive", {"nofilter": 1}).status_code == 400


def test_rate_limit_429() -> None:
    with GongSimulator(_cfg(rate_limit=3.0)) as sim:
        codes = [get(sim, "/v2/workspaces") for _ in range(5)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and limited[0].headers["Retry-After"] == "1"
        assert limited[0].json()["requestId"]
        time.sleep(1.05)
        assert get(sim, "/v2/workspaces").status_code == 200


def test_daily_quota_429() -> None:
    with GongSimulator(_cfg(daily_quota=3, now=datetime(2026, 11, 1, 20, 0, tzinfo=UTC))) as sim:
        assert [get(sim, "/v2/workspaces").status_code for _ in range(3)] == [200] * 3
        r = get(sim, "/v2/workspaces")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == 4 * 3600
        sim.advance(timedelta(hours=4))
        assert get(sim, "/v2/workspaces").status_code == 200
        get(sim, "/v2/workspaces")
        get(sim, "/v2/workspaces")
        assert get(sim, "/v2/workspaces").status_code == 429
        sim.reset_quota()
        assert get(sim, "/v2/workspaces").status_code == 200


def test_error_rate_503() -> None:
    with GongSimulator(_cfg(error_rate=0.5)) as sim:
        codes = [get(sim, "/v2/workspaces").status_code for _ in range(20)]
        assert 503 in codes and 200 in codes


def test_private_calls_and_stats(sim: GongSimulator) -> None:
    calls = all_pages(sim, {"filter": {}})
    private = [c["metaData"]["id"] for c in calls if c["metaData"]["isPrivate"]]
    assert private and set(private) <= set(sim.private_call_ids())
    assert set(sim.call_ids(include_private=False)) == {c["metaData"]["id"] for c in calls} - set(private)
    public = sim.call_ids(include_private=False)[:3]
    post(sim, "/v2/calls/transcript", {"filter": {"callIds": public}})
    assert get(sim, "/_sim/stats", headers={}).json()["privateTranscriptRequests"] == []
    post(sim, "/v2/calls/transcript", {"filter": {"callIds": public + private[:1]}})
    stats = get(sim, "/_sim/stats", headers={}).json()
    assert stats["privateTranscriptRequests"] == private[:1]
    assert stats["requests"]["/v2/calls/transcript"] == 2
    admitted = stats["admittedAt"]  # when each request was let through: how close a client came to the rate
    api = sum(n for path, n in stats["requests"].items() if path.startswith("/v2/"))
    assert len(admitted) == api > 2 and admitted == sorted(admitted)


def test_ids_are_long_digit_strings(sim: GongSimulator) -> None:
    calls = all_pages(sim, {"filter": {}, "contentSelector": FULL_SELECTOR})
    ids: list[Any] = [w["id"] for w in get(sim, "/v2/workspaces").json()["workspaces"]]
    ids += [u["id"] for u in get(sim, "/v2/users").json()["users"]]
    for c in calls:
        ids += [c["metaData"]["id"], c["metaData"]["primaryUserId"], c["metaData"]["workspaceId"]]
        ids += [p["id"] for p in c["parties"]] + [p["speakerId"] for p in c["parties"] if "speakerId" in p]
        ids += [t["id"] for t in c["content"]["trackers"]]
    assert all(isinstance(i, str) and i.isdigit() and 19 <= len(i) <= 20 for i in ids)
    assert any(int(i) > 2**63 for i in ids)
    assert any(int(c["metaData"]["id"]) > 2**63 for c in calls)
    assert len({c["metaData"]["id"] for c in calls}) == len(calls)


def test_late_visibility_and_transcript_lag(sim: GongSimulator) -> None:
    hidden = [i for i in sim.call_ids(visible_only=False) if i not in set(sim.call_ids())]
    assert hidden, "some recent calls must still be processing"
    meta = sim.call_meta(hidden[0])
    assert meta.started < NOW < meta.visible_at
    flt = {"filter": {"callIds": [meta.id]}}
    assert post(sim, "/v2/calls/extensive", flt).status_code == 404
    sim.set_now(meta.visible_at)
    assert post(sim, "/v2/calls/extensive", flt).json()["calls"][0]["metaData"]["id"] == meta.id
    assert post(sim, "/v2/calls/transcript", flt).status_code == 404
    assert meta.transcript_at > meta.visible_at
    r = post(sim, "/_sim/clock", {"now": meta.transcript_at.isoformat()}, headers={})
    assert parse_iso(r.json()["now"]) == meta.transcript_at
    tr = post(sim, "/v2/calls/transcript", flt).json()["callTranscripts"][0]
    speakers = {p["speakerId"] for p in post(sim, "/v2/calls/extensive", {
        **flt, "contentSelector": {"exposedFields": {"parties": True}}}).json()["calls"][0]["parties"]
        if "speakerId" in p}
    assert tr["callId"] == meta.id and {m["speakerId"] for m in tr["transcript"]} <= speakers
    n = sum(len(m["sentences"]) for m in tr["transcript"])
    assert 16 <= n <= 24


def test_revision_changes_after_a_day(sim: GongSimulator) -> None:
    call_id = sim.call_ids()[-1]
    meta = sim.call_meta(call_id)
    sim.set_now(meta.visible_at + timedelta(hours=1))
    body = {"filter": {"callIds": [call_id]}, "contentSelector": FULL_SELECTOR}
    before = post(sim, "/v2/calls/extensive", body).json()["calls"][0]
    post(sim, "/_sim/clock", {"advance_seconds": 24 * 3600}, headers={})
    after = post(sim, "/v2/calls/extensive", body).json()["calls"][0]
    assert len(after["content"]["trackers"]) == len(before["content"]["trackers"]) + 1
    assert after["content"]["brief"] != before["content"]["brief"]
    assert after["content"]["topics"] != before["content"]["topics"]
    assert after["context"] != before["context"]
    assert after["metaData"] == before["metaData"]


def test_edit_call_hooks(sim: GongSimulator) -> None:
    call_id = sim.call_ids()[0]
    body = {"filter": {"callIds": [call_id]}, "contentSelector": FULL_SELECTOR}
    sim.edit_call(call_id, title="Edited title", topics=[{"name": "Pricing", "duration": 9}])
    call = post(sim, "/v2/calls/extensive", body).json()["calls"][0]
    assert call["metaData"]["title"] == "Edited title"
    assert call["content"]["topics"] == [{"name": "Pricing", "duration": 9}]
    parties = [{"id": "12345678901234567890", "name": "New Person", "affiliation": "External"}]
    r = post(sim, f"/_sim/calls/{call_id}", {"parties": parties, "trackers": []}, headers={})
    assert r.status_code == 200
    call = post(sim, "/v2/calls/extensive", body).json()["calls"][0]
    assert call["parties"] == parties and call["content"]["trackers"] == []
    assert post(sim, "/_sim/calls/1", {"title": "x"}, headers={}).status_code == 404
    log = sim.request_log
    assert log[-1]["path"] == "/_sim/calls/1" and log[-1]["status"] == 404
    assert log[-2]["body"] == body and log[-2]["method"] == "POST"
    sim.reset_request_log()
    assert sim.request_log == []


def test_determinism_and_media_urls() -> None:
    def snapshot() -> tuple[list[str], Any, Any, list[dict[str, Any]]]:
        with GongSimulator(_cfg(page_size=100)) as s:
            calls = post(s, "/v2/calls/extensive", {"filter": {}, "contentSelector": FULL_SELECTOR}).json()
            ids = [c["metaData"]["id"] for c in calls["calls"]]
            tr = post(s, "/v2/calls/transcript", {"filter": {"callIds": ids}}).json()
            again = post(s, "/v2/calls/extensive", {"filter": {}, "contentSelector": FULL_SELECTOR}).json()
            users = get(s, "/v2/users").json()
            return ids, strip_volatile([calls, tr, users]), strip_volatile(again), \
                [c["media"] for c in calls["calls"]] + [c["media"] for c in again["calls"]]

    ids1, bodies1, again1, media1 = snapshot()
    ids2, bodies2, _, media2 = snapshot()
    assert ids1 == ids2 and bodies1 == bodies2
    assert again1 == bodies1[0]
    n = len(ids1)
    assert media1[0]["audioUrl"] != media1[n]["audioUrl"] != media2[0]["audioUrl"]
    assert all(m["audioUrl"].startswith("https://") for m in media1)
    other = GongSimulator(_cfg(seed=8, page_size=100))
    assert other.call_ids() != ids1


def test_cli_starts_serves_and_stops_quietly() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--now", "2026-11-01T00:00:00Z",
         "--days", "3", "--calls-per-day", "5", "--rate-limit", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("Gong simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        r = requests.post(url + "/v2/calls/extensive", json={"filter": {}}, headers=BEARER, timeout=5)
        assert r.status_code == 200 and r.json()["calls"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert out == "" and err == ""
