"""The endpoint catalog: every Gong list endpoint the source reads, declared once.

A simple endpoint (one request or one cursor-paged list, loaded whole each run) is one `Endpoint`
entry; endpoints with windows or dependencies (calls, transcripts) are entries whose `kind` names
the function in `sources.gong` that reads them. Adding an endpoint is one entry here plus, at
most, a small row function in `rows.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from .rows import ids_to_text, scorecard_row, user_row

Kind = Literal["list", "calls", "transcripts"]


@dataclass(frozen=True)
class Endpoint:
    """One resource: where it reads, how rows are keyed, and how one record becomes a row."""

    name: str
    method: Literal["GET", "POST"]
    path: str
    data_key: str
    primary_key: tuple[str, ...]
    kind: Kind = "list"
    default: bool = True
    row: Callable[[dict[str, Any]], dict[str, Any]] = ids_to_text
    columns: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    params: Optional[dict[str, Any]] = None


CATALOG: tuple[Endpoint, ...] = (
    Endpoint(
        name="workspaces", method="GET", path="/v2/workspaces", data_key="workspaces",
        primary_key=("id",), description="One row per Gong workspace.",
    ),
    Endpoint(
        name="users", method="GET", path="/v2/users", data_key="users", primary_key=("id",), row=user_row,
        columns={"created": {"data_type": "timestamp"}},
        description="One row per Gong user; spoken languages and aliases as child tables.",
    ),
    Endpoint(
        name="scorecards", method="GET", path="/v2/settings/scorecards", data_key="scorecards",
        primary_key=("scorecard_id",), row=scorecard_row,
        columns={"created": {"data_type": "timestamp"}, "updated": {"data_type": "timestamp"}},
        description="One row per scorecard; questions (scorecards__questions) carry scorecard_id.",
    ),
    Endpoint(
        name="calls", method="POST", path="/v2/calls/extensive", data_key="calls", primary_key=("id",),
        kind="calls",
        columns={
            "started": {"data_type": "timestamp"},
            "scheduled": {"data_type": "timestamp"},
            "duration_s": {"data_type": "bigint"},
        },
        description="One row per non-private call; parties, trackers, topics... as child tables with call_id.",
    ),
    Endpoint(
        name="transcripts", method="POST", path="/v2/calls/transcript", data_key="callTranscripts",
        primary_key=("call_id", "sentence_index"), kind="transcripts",
        description="One row per transcript sentence of a non-private call.",
    ),
)

BY_NAME: dict[str, Endpoint] = {e.name: e for e in CATALOG}


def resource_names(default_only: bool = False) -> list[str]:
    """Returns the catalog's resource names in load order (only default-on ones when asked)."""
    return [e.name for e in CATALOG if e.default or not default_only]
