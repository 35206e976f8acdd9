"""Constants of the Gong source. Tests patch some of them (for example the transcript batch size)."""

from __future__ import annotations

# Gong accepts at most 100 call ids per transcript request.
TRANSCRIPT_BATCH_SIZE = 100

# Defaults of the source's configuration (each can be overridden through dlt config, see .dlt/config.toml).
DEFAULT_HISTORY_DAYS = 30
DEFAULT_LOOKBACK_DAYS = 3.0
DEFAULT_RATE_LIMIT = 3.0
DEFAULT_DAILY_BUDGET = 10_000
DEFAULT_MAX_RETRY_AFTER_S = 300.0

# Resources loaded when none are named.
DEFAULT_RESOURCES = ("workspaces", "users", "scorecards", "calls", "transcripts")

# The full contentSelector for POST /v2/calls/extensive; media is added only when asked for, because its
# presigned URLs expire after hours and change on every request.
CALLS_CONTENT_SELECTOR: dict = {
    "context": "Extended",
    "contextTiming": ["Now", "TimeOfCall"],
    "exposedFields": {
        "parties": True,
        "content": {
            "structure": True,
            "topics": True,
            "trackers": True,
            "trackerOccurrences": True,
            "pointsOfInterest": True,
            "brief": True,
            "outline": True,
            "highlights": True,
            "callOutcome": True,
            "keyPoints": True,
        },
        "interaction": {
            "speakers": True,
            "video": True,
            "personInteractionStats": True,
            "questions": True,
        },
        "collaboration": {"publicComments": True},
        "media": False,
    },
}
