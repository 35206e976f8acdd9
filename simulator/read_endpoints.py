"""Read endpoints beyond calls, transcripts, users, workspaces and scorecards."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.server import GongSimulator

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def routes(sim: GongSimulator) -> dict[str, dict[str, Handler]]:
    """Returns this module's routes: {path: {method: handler(query, body) -> JSON payload}}."""
    return {}
