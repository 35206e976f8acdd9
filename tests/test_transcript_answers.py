"""Transcript answers read by Arrow's JSON reader give exactly the rows of the standard JSON path, and any
answer that path would read differently (or not at all) falls back to it."""

from __future__ import annotations

import json
import random
from typing import Any

import pyarrow as pa
import pytest

from sources.gong.catalog import BY_NAME
from sources.gong.client import GongApiError
from sources.gong.rows import transcript_answer_table, transcript_rows, transcript_table
from tests.test_client import scripted_client

TRANSCRIPTS = BY_NAME["transcripts"]


def _answer(seed: int = 3, calls: int = 7, cursor: str | None = None) -> dict[str, Any]:
    """A transcript answer shaped like Gong's, with the awkward cases: a call without monologues, a
    monologue without sentences, null topics and speakers, unicode, 20-digit ids and fields Gong may add."""
    rng = random.Random(seed)
    transcripts = []
    for c in range(calls):
        monologues = []
        for m in range(0 if c == 2 else rng.randint(1, 6)):
            sentences = [{"start": rng.randint(0, 10**6), "end": rng.randint(0, 10**6),
                          "text": rng.choice(["Hi.", "Grüße, ça va?", "料金について", "a \"quoted\"\nline"]),
                          "sentiment": 0.5}
                         for _ in range(0 if (c, m) == (3, 1) else rng.randint(1, 9))]
            monologues.append({"speakerId": None if (c, m) == (4, 0) else str(10**19 + rng.randint(0, 10**18)),
                               "topic": rng.choice([None, "Pricing", "Next steps"]), "sentences": sentences,
                               "addedLater": {"x": [1, 2]}})
        transcripts.append({"callId": str(10**19 + c), "transcript": monologues})
    records: dict[str, Any] = {"totalRecords": calls, "currentPageSize": calls, "currentPageNumber": 0}
    if cursor:
        records["cursor"] = cursor
    return {"requestId": "r1", "records": records, "callTranscripts": transcripts}


@pytest.mark.parametrize("indent", [None, 2])
def test_arrow_reads_the_same_rows_as_the_json_path(indent: int | None) -> None:
    answer = _answer(cursor="next-page")
    content = json.dumps(answer, indent=indent, ensure_ascii=indent is None).encode()
    table, paging = transcript_answer_table(content)
    expected = transcript_table(answer["callTranscripts"])
    assert table.num_rows == expected.num_rows > 50
    assert table.to_pylist() == expected.to_pylist()
    assert table.schema == expected.schema
    assert paging == {"cursor": "next-page", "totalRecords": 7}
    # sentence_index counts on across monologues within a call, monologue_index restarts per call
    first_call = [r for r in table.to_pylist() if r["call_id"] == str(10**19)]
    assert [r["sentence_index"] for r in first_call] == list(range(len(first_call)))
    assert not [r for r in table.to_pylist() if r["call_id"] == str(10**19 + 2)], "a call without monologues"


def test_empty_strings_are_null_on_both_paths() -> None:
    answer = _answer(seed=5, calls=3)
    monologue = answer["callTranscripts"][0]["transcript"][0]
    monologue.update(speakerId="", topic="")
    monologue["sentences"][0]["text"] = ""
    answer["callTranscripts"][1]["transcript"][0]["sentences"][0]["text"] = " "  # not empty: kept
    table, _ = transcript_answer_table(json.dumps(answer).encode())
    expected = transcript_table(answer["callTranscripts"])
    assert table.to_pylist() == expected.to_pylist() and table.schema == expected.schema
    rows = table.to_pylist()
    assert not [r for r in rows for v in r.values() if v == ""], "no empty string on either path"
    first = rows[0]
    assert (first["speaker_id"], first["topic"], first["text"]) == (None, None, None)
    assert all(r["speaker_id"] is None for r in rows[:len(monologue["sentences"])]), "the monologue's sentences"
    assert next(r for r in rows if r["call_id"] == str(10**19 + 1))["text"] == " "


@pytest.mark.parametrize("content", [
    b"null", b"", b"   ", b"[1, 2]", b'"text"', b"{not json", b'{"a": 1} {"a": 2}', b'{"a": 1}\nnull\n{"a": 2}',
    b'{"callTranscripts": null}', b'{"callTranscripts": {"callId": "1"}}',
    b'{"callTranscripts": [null]}',
    b'{"callTranscripts": [{"callId": 12345678901234567890123, "transcript": []}]}',
    b'{"callTranscripts": [{"callId": "1", "transcript": [{"speakerId": 12345678901234567890123,'
    b' "sentences": [{"start": 1, "end": 2, "text": "x"}]}]}]}',
    b'{"callTranscripts": [{"callId": "1", "transcript": [{"speakerId": "2", "sentences": [null]}]}]}',
    b'{"callTranscripts": [{"callId": "1", "transcript": [{"speakerId": "2",'
    b' "sentences": [{"start": 1.5, "end": 2, "text": "x"}]}]}]}',
    b'{"callTranscripts": [{"transcript": []}]}',
    b'{"callTranscripts": [{"callId": "1", "transcript": [{"speakerId": "2",'
    b' "sentences": [{"start": 1, "end": 2, "text": "a\xff\xfe"}]}]}]}',
])
def test_answers_the_fast_path_would_read_differently_are_left_to_the_json_path(content: bytes) -> None:
    assert transcript_answer_table(content) is None


def test_pages_yields_arrow_pages_follows_the_cursor_and_falls_back_per_page() -> None:
    first = _answer(seed=1, calls=3, cursor="c2")
    # The second page sends a speaker id as a 23-digit number: read by the JSON path, the id stays exact.
    second = _answer(seed=2, calls=2)
    second["callTranscripts"][0]["transcript"][0]["speakerId"] = 12345678901234567890123
    client, _ = scripted_client([(200, first, {}), (200, second, {})])
    body = {"filter": {"callIds": ["1", "2"]}}
    pages = [records for records, _ in client.pages("POST", TRANSCRIPTS.path, TRANSCRIPTS.data_key, body=body,
                                                   decode=TRANSCRIPTS.decode)]
    assert isinstance(pages[0], pa.Table) and isinstance(pages[1], list)
    sent = client._session.calls  # type: ignore[attr-defined]
    assert len(sent) == 2 and "cursor" not in sent[0]["json"] and sent[1]["json"]["cursor"] == "c2"
    rows = [transcript_rows(p) for p in pages]
    assert rows[0].to_pylist() == transcript_table(first["callTranscripts"]).to_pylist()
    assert rows[1].column("speaker_id")[0].as_py() == "12345678901234567890123"
    assert rows[1].to_pylist() == transcript_table(second["callTranscripts"]).to_pylist()


def test_a_malformed_transcript_answer_is_still_a_clear_error() -> None:
    invalid_text = b'{"callTranscripts": [{"callId": "1", "transcript": [{"sentences": [{"text": "a\xff"}]}]}]}'
    for content, message in ((b"null", "not a JSON object"), (b"{not json", "not valid JSON"),
                             (invalid_text, "not valid JSON")):
        client, _ = scripted_client([(200, content, {})])
        with pytest.raises(GongApiError, match=message):
            list(client.pages("POST", TRANSCRIPTS.path, TRANSCRIPTS.data_key, body={}, decode=TRANSCRIPTS.decode))
