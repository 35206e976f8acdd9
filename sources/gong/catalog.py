"""The endpoint catalog: every Gong list endpoint the source reads, declared once.

Each `Endpoint` says where a resource reads (method, path, the list in the answer), how its rows
are keyed, which parent resource's rows drive its requests (one request per workspace, user,
folder...), which date window it reads incrementally, and which function turns one record into
rows (`rows.py`). `sources.gong` turns every entry into a dlt resource with the same machinery, so
adding an endpoint is one entry here plus, at most, a small row function. What an entry is read
like follows from its declaration: `windowed` (read window by window), `follows_calls` (read per page
of calls, by the calls feed), `per_manager` (read per manager and workspace).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from . import rows as r

RowFn = Callable[[dict[str, Any], dict[str, Any]], Any]

LOG_TYPES = ("AccessLog", "UserActivityLog", "UserCallPlay", "ExternallySharedCallAccess", "ExternallySharedCallPlay")
CRM_OBJECT_TYPES = ("ACCOUNT", "CONTACT", "DEAL", "LEAD")


@dataclass(frozen=True)
class Window:
    """How an endpoint is read incrementally.

    `kind` "datetime": ISO date-times, from inclusive / to exclusive. `kind` "date": plain dates in
    the company's time zone, from inclusive / to exclusive; `to_limit` "today" means Gong refuses a
    `to` later than the current day (so today's partial data is never read), "tomorrow" lets the
    window include today. `step` cuts the window into one request per day or per calendar month,
    so that rows keyed by day or month are complete.
    """

    kind: Literal["datetime", "date"]
    from_param: str
    to_param: Optional[str] = None
    step: Literal["whole", "day", "month"] = "whole"
    to_limit: Literal["now", "today", "tomorrow"] = "now"
    align_to_period: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One resource: where it reads, how rows are keyed, what drives and bounds its requests."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    data_key: str
    primary_key: tuple[str, ...]
    row: RowFn = r.plain_row
    default: bool = True
    description: str = ""
    endpoint_doc: str = ""
    parent: Optional[str] = None
    parent_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    window: Optional[Window] = None
    partitions: tuple[str, ...] = ()
    partition_param: Optional[str] = None
    merge_key: Optional[tuple[str, ...]] = None
    columns: dict[str, Any] = field(default_factory=dict)
    # A faster reader of a successful answer (see `GongClient.pages(decode=...)`), e.g. into Arrow: the
    # resource then yields Arrow tables.
    decode: Optional[Callable[[bytes], Any]] = None
    # Listed per manager (the users others report to) and workspace, from the parent's pages of users.
    per_manager: bool = False

    @property
    def follows_calls(self) -> bool:
        """Read for each page of calls, 100 call ids a request (transcripts, call access lists)."""
        return self.parent == "calls"

    @property
    def read_by_feed(self) -> bool:
        """Read by the calls feed (sources/gong/feed.py): the calls, and what follows each page of them."""
        return self.name == "calls" or self.follows_calls

    @property
    def windowed(self) -> bool:
        """Read window by window: its cost grows with the range (a "since" read, with no end, is read once)."""
        return (self.window is not None and self.window.to_param is not None) or self.follows_calls

    @property
    def endpoint(self) -> str:
        """`METHOD /path` as the README's catalog shows it."""
        return f"{self.method} {self.path}"


def _ts(*names: str) -> dict[str, Any]:
    return {n: {"data_type": "timestamp"} for n in names}


def _date(*names: str) -> dict[str, Any]:
    return {n: {"data_type": "date"} for n in names}


def _json(*names: str) -> dict[str, Any]:
    """Columns that hold a JSON document of Gong's (an object or a list): one JSON value, not dumped text."""
    return {n: {"data_type": "json"} for n in names}


STATS_DAY_WINDOW = Window("date", "fromDate", "toDate", step="day", to_limit="today")

CATALOG: tuple[Endpoint, ...] = (
    Endpoint(
        name="workspaces", method="GET", path="/v2/workspaces", data_key="workspaces", primary_key=("id",),
        description="a Gong workspace",
    ),
    Endpoint(
        name="users", method="GET", path="/v2/users", data_key="users", primary_key=("id",), row=r.user_row_ctx,
        columns=_ts("created"),
        description="a Gong user; aliases, meeting URLs and spoken languages as child tables with user_id",
    ),
    Endpoint(
        name="scorecards", method="GET", path="/v2/settings/scorecards", data_key="scorecards",
        primary_key=("scorecard_id",), row=r.scorecard_row_ctx, columns=_ts("created", "updated"),
        description="a scorecard definition; questions and their options carry scorecard_id",
    ),
    Endpoint(
        name="trackers", method="GET", path="/v2/settings/trackers", data_key="keywordTrackers",
        primary_key=("tracker_id",), row=r.tracker_row,
        parent="workspaces", parent_params={"workspaceId": "id"}, columns=_ts("created", "updated"),
        description="a keyword tracker of a workspace; its language keywords carry tracker_id",
    ),
    Endpoint(
        name="calls", method="POST", path="/v2/calls/extensive", data_key="calls", primary_key=("id",),
        row=r.call_row_ctx,
        window=Window("datetime", "fromDateTime", "toDateTime"),
        # customData is a string in Gong's spec, set only on calls created through the API: declared, so that
        # the column stays promised while every call's is empty (NULL).
        columns={**_ts("started", "scheduled"), "duration_s": {"data_type": "bigint"},
                 "custom_data": {"data_type": "text"}},
        description="a non-private call; parties, trackers, topics... as child tables with call_id",
    ),
    Endpoint(
        name="transcripts", method="POST", path="/v2/calls/transcript", data_key="callTranscripts",
        primary_key=("call_id", "sentence_index"), merge_key=("call_id",), parent="calls",
        decode=r.transcript_answer_table,
        description="one transcript sentence of a non-private call",
    ),
    Endpoint(
        name="answered_scorecards", method="POST", path="/v2/stats/activity/scorecards",
        data_key="answeredScorecards", primary_key=("answered_scorecard_id",),
        row=r.answered_scorecard_row,
        window=Window("date", "reviewFromDate", "reviewToDate", to_limit="tomorrow"),
        columns=_ts("call_start_time", "review_time"),
        description="a filled-in scorecard; its answers carry answered_scorecard_id",
    ),
    Endpoint(
        name="interaction_stats", method="POST", path="/v2/stats/interaction", data_key="peopleInteractionStats",
        primary_key=("user_id", "day"), row=r.stats_day_row, window=STATS_DAY_WINDOW, columns=_date("day"),
        description="a user's interaction stats on one day (stats as a child table with user_id, day)",
    ),
    Endpoint(
        name="activity_day_by_day", method="POST", path="/v2/stats/activity/day-by-day",
        data_key="usersDetailedActivities", primary_key=("user_id", "day"), row=r.day_by_day_rows,
        window=Window("date", "fromDate", "toDate", to_limit="today"), columns=_date("day", "to_date"),
        description="a user's activity counts on one day; the calls behind them in a child table",
    ),
    Endpoint(
        name="activity_aggregate", method="POST", path="/v2/stats/activity/aggregate",
        data_key="usersAggregateActivityStats", primary_key=("user_id", "day"), row=r.stats_day_row,
        window=STATS_DAY_WINDOW, columns=_date("day"),
        description="a user's aggregated activity on one day",
    ),
    Endpoint(
        name="activity_by_period", method="POST", path="/v2/stats/activity/aggregate-by-period",
        data_key="usersAggregateActivity", primary_key=("user_id", "period", "period_start"),
        row=r.by_period_rows, window=Window("date", "fromDate", "toDate", to_limit="today", align_to_period=True),
        columns=_date("period_start", "period_end"),
        description="a user's activity in one calendar period (activity_period: DAY, WEEK, MONTH, ...)",
    ),
    Endpoint(
        name="library_folders", method="GET", path="/v2/library/folders", data_key="folders", primary_key=("id",),
        row=r.library_folder_row, parent="workspaces", parent_params={"workspaceId": "id"}, columns=_ts("updated"),
        description="a library folder",
    ),
    Endpoint(
        name="library_folder_calls", method="GET", path="/v2/library/folder-content", data_key="calls",
        primary_key=("folder_id", "call_id"), row=r.folder_call_row, parent="library_folders",
        parent_params={"folderId": "id"},
        columns={**_ts("created"), "snippet_start_time_s": {"data_type": "bigint"},
                 "snippet_end_time_s": {"data_type": "bigint"}},
        description="a call saved in a library folder",
    ),
    Endpoint(
        name="permission_profiles", method="GET", path="/v2/all-permission-profiles", data_key="profiles",
        primary_key=("id",), row=r.permission_profile_row, parent="workspaces", parent_params={"workspaceId": "id"},
        description="a permission profile of a workspace",
    ),
    Endpoint(
        name="permission_profile_users", method="GET", path="/v2/permission-profile/users", data_key="users",
        primary_key=("profile_id", "user_id"), row=r.profile_user_row, parent="permission_profiles",
        parent_params={"profileId": "id"},
        description="a user holding a permission profile",
    ),
    Endpoint(
        name="audit_logs", method="GET", path="/v2/logs", data_key="logEntries", primary_key=("log_id",),
        row=r.audit_log_row, window=Window("datetime", "fromDateTime", "toDateTime"),
        partitions=LOG_TYPES, partition_param="logType", columns={**_ts("event_time"), **_json("log_record")},
        description="an audit log entry of one logType, keyed by a hash of its content",
    ),
    Endpoint(
        name="manual_crm_associations", method="GET", path="/v2/calls/manual-crm-associations",
        data_key="associations", primary_key=("call_id", "created"), row=r.manual_association_row,
        window=Window("datetime", "fromDateTime"), columns=_ts("created"),
        description="a manual (re-)association of a call with a CRM account or deal",
    ),
    Endpoint(
        name="crm_integrations", method="GET", path="/v2/crm/integrations", data_key="integrations",
        primary_key=("integration_id",),
        description="a generic CRM integration registered in Gong",
    ),
    Endpoint(
        name="crm_schema_fields", method="GET", path="/v2/crm/entity-schema", data_key="objectTypeToSelectedFields",
        primary_key=("integration_id", "object_type", "unique_name"), row=r.crm_schema_field_rows,
        parent="crm_integrations", parent_params={"integrationId": "integrationId"},
        partitions=CRM_OBJECT_TYPES, partition_param="objectType", columns=_json("ordered_value_list"),
        description="a CRM field Gong holds for one object type of a generic CRM integration",
    ),
    Endpoint(
        name="user_settings_history", method="GET", path="/v2/users/{userId}/settings-history",
        data_key="userSettingsHistory", primary_key=("user_id", "setting", "time"), row=r.settings_history_row,
        parent="users", parent_params={"userId": "id"}, default=False, columns=_ts("time"),
        description="a change of one user setting (opt-in: one request per user)",
    ),
    Endpoint(
        name="flows", method="GET", path="/v2/flows", data_key="flows", primary_key=("id",),
        row=r.flow_row, parent="users",
        parent_params={"flowOwnerEmail": "emailAddress"}, default=False, columns=_ts("creation_date"),
        description="an Engage flow (opt-in: one request per user, as flows are listed per owner)",
    ),
    Endpoint(
        name="coaching", method="GET", path="/v2/coaching", data_key="coachingData",
        primary_key=("manager_id", "report_id", "period_start"), row=r.coaching_rows, per_manager=True,
        parent="users", window=Window("datetime", "from", "to", step="month"), default=False,
        columns={**_ts("period_start", "period_end"), **_json("metrics")},
        description="a manager's coaching metrics for one direct report and month (opt-in: per manager)",
    ),
    Endpoint(
        name="call_user_access", method="POST", path="/v2/calls/users-access", data_key="callAccessList",
        primary_key=("call_id", "user_id"), merge_key=("call_id",), row=r.call_access_rows,
        parent="calls", default=False,
        description="a user who may access a call (opt-in: one request per page of calls)",
    ),
)

BY_NAME: dict[str, Endpoint] = {e.name: e for e in CATALOG}


def resource_names(default_only: bool = False) -> list[str]:
    """Returns the catalog's resource names in load order (only default-on ones when asked)."""
    return [e.name for e in CATALOG if e.default or not default_only]


def parents_of(names: list[str]) -> list[str]:
    """Returns `names` plus every resource they depend on, in catalog order."""
    wanted = set(names)
    for name in names:
        parent = BY_NAME[name].parent
        while parent:
            wanted.add(parent)
            parent = BY_NAME[parent].parent
    return [e.name for e in CATALOG if e.name in wanted]
