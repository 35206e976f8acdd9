"""Pure functions that turn Gong records into warehouse rows (no HTTP, no dlt state).

What every row promises (the table contract, README "The contract, in short"): ids are text; an empty
string from Gong is NULL, like a missing field; offsets and durations carry their unit in their name
(`start_time_s`, `duration_s`, `start_ms`); every nested row carries the business key of its parent row
(a tracker occurrence its `tracker_id`, a CRM field its `object_type` and `object_id`...), so that
analysts join on Gong's keys, never on dlt's `_dlt_*` columns; days are dates; JSON documents stay JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json


def _is_empty(value: Any) -> bool:
    """Whether a value is stored as NULL: missing (None) or an empty string (Gong sends "" for "none")."""
    return value is None or (type(value) is str and not value)


def ids_to_text(value: Any) -> Any:
    """Returns `value` with every id-like field (`id`, `...Id`) that is a number turned into text.

    Gong ids reach 20 digits and exceed 64-bit integers; some endpoints send them as JSON numbers.
    Null fields and empty strings are left out: a missing column is null in the warehouse anyway, and a
    column that only ever saw nulls has no type to create it with.
    """
    if isinstance(value, dict):
        return {
            k: (str(v) if _is_id_key(k) and isinstance(v, int) and not isinstance(v, bool) else ids_to_text(v))
            for k, v in value.items() if not _is_empty(v)
        }
    if isinstance(value, list):
        return [ids_to_text(v) for v in value]
    return value


def json_document(value: Any) -> Any:
    """Returns a JSON document (an audit log record, coaching metrics) as Gong sent it, with its ids as text
    and its nulls left out, as `ids_to_text` did before empty strings became NULL: a document is kept as one
    JSON value, so an empty string inside it stays what Gong said (and an audit entry's key, a hash of the
    entry, stays what it was)."""
    if isinstance(value, dict):
        return {
            k: (str(v) if _is_id_key(k) and isinstance(v, int) and not isinstance(v, bool) else json_document(v))
            for k, v in value.items() if v is not None
        }
    if isinstance(value, list):
        return [json_document(v) for v in value]
    return value


def _is_id_key(key: str) -> bool:
    return key == "id" or key.endswith("Id") or key.endswith("ID")


def with_parent_key(value: dict[str, Any], key: str, key_value: str) -> dict[str, Any]:
    """Adds `key: key_value` to every dict nested in lists below `value`, so child tables carry it; ids
    become text and nulls and empty strings are left out as in `ids_to_text`, in the same pass (the calls'
    hot path).

    A list of plain values (e.g. a party's `methods`) becomes a list of `{key, "value"}` dicts, so
    that its child table carries the key too.
    """
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None or (type(v) is str and not v):
            continue
        if isinstance(v, dict):
            out[k] = with_parent_key(v, key, key_value)
        elif isinstance(v, list):
            out[k] = _keyed_list(v, key, key_value)
        elif isinstance(v, int) and not isinstance(v, bool) and _is_id_key(k):
            out[k] = str(v)
        else:
            out[k] = v
    return out


def _keyed_list(items: list[Any], key: str, key_value: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            row = {key: key_value}
            row.update(with_parent_key(item, key, key_value))
            out.append(row)
        elif isinstance(item, list):
            out.append(ids_to_text(item))
        elif _is_empty(item):
            out.append({key: key_value})  # the item stays (its position is data), its value is NULL
        else:
            out.append({key: key_value, "value": item})
    return out


def _renamed(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The record with some fields renamed (e.g. `startTime` -> `startTimeS`: the unit goes into the name)."""
    return {names.get(k, k): v for k, v in record.items()}


def _keyed(items: Any, keys: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
    """Each dict of `items` with the parent's business `keys` first (renamed by `names`); other items as
    they are (`with_parent_key` keys them)."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append({**keys, **(_renamed(item, names) if names else item)})
        else:
            out.append(item)
    return out


# Offsets and durations, all in seconds in Gong's API v2 spec (the transcripts' are in ms: `start_ms`).
_SECONDS_START = {"startTime": "startTimeS"}
_SECONDS_SPAN = {"duration": "durationS"}
_OUTLINE_SECTION = {"startTime": "startTimeS", "duration": "durationS"}
_ACTION_ITEM = {"snippetStartTime": "snippetStartTimeS", "snippetEndTime": "snippetEndTimeS"}
_SPEAKER = {"id": "speakerId", "talkTime": "talkTimeS"}
_COMMENT = {"id": "commentId", "inReplyTo": "inReplyToCommentId", "audioStartTime": "audioStartTimeS",
            "audioEndTime": "audioEndTimeS"}


def call_row(call: dict[str, Any], include_media: bool = False) -> dict[str, Any]:
    """Flattens one /v2/calls/extensive record into a call row whose child lists all carry `callId`.

    `metaData` fields become top-level columns (`duration` becomes `durationS`, seconds), `content`,
    `interaction` and `collaboration` parts become columns or child lists named after their part, and
    media URLs are left out unless asked for. Every offset and duration gets its unit (`startTimeS`,
    `talkTimeS`...), an id that is not the call's own is named for what it identifies (`partyId`,
    `speakerId`, `trackerId`, `commentId`), and every nested row below a party, a CRM object, a tracker,
    an outline section or a highlight also carries that parent's key. CRM field values (any JSON type)
    become text.
    """
    meta = dict(call.get("metaData") or {})
    call_id = str(meta.get("id"))
    if "duration" in meta:
        meta["durationS"] = meta.pop("duration")
    row: dict[str, Any] = meta
    row["context"] = _contexts(call.get("context"), {})
    row["parties"] = [_party(party) for party in call.get("parties") or []]
    content = dict(call.get("content") or {})
    poi = content.pop("pointsOfInterest", None) or {}
    row["actionItems"] = _keyed(poi.get("actionItems"), {}, _ACTION_ITEM)
    row["structure"] = _keyed(content.pop("structure", None), {}, _SECONDS_SPAN)
    row["trackers"] = [_tracker(t) if isinstance(t, dict) else t for t in content.pop("trackers", None) or []]
    row["topics"] = _keyed(content.pop("topics", None), {}, _SECONDS_SPAN)
    row["outline"] = [_outline_section(s) if isinstance(s, dict) else s for s in content.pop("outline", None) or []]
    row["highlights"] = [_highlight(h) if isinstance(h, dict) else h for h in content.pop("highlights", None) or []]
    row["keyPoints"] = content.pop("keyPoints", None) or []
    row["brief"] = content.pop("brief", None)
    row["callOutcome"] = content.pop("callOutcome", None)
    row.update({f"content{k[:1].upper()}{k[1:]}": v for k, v in content.items()})  # fields Gong adds later
    interaction = dict(call.get("interaction") or {})
    row["speakers"] = _keyed(interaction.pop("speakers", None), {}, _SPEAKER)
    row["interactionStats"] = interaction.pop("interactionStats", None) or []
    row["video"] = _keyed(interaction.pop("video", None), {}, _SECONDS_SPAN)
    row["questions"] = interaction.pop("questions", None)
    collaboration = dict(call.get("collaboration") or {})
    row["publicComments"] = _keyed(collaboration.pop("publicComments", None), {}, _COMMENT)
    if include_media and isinstance(call.get("media"), dict):
        # `metaData.media` is the media type ("Video"); these are the presigned URLs (`audioUrl`, `videoUrl`).
        row.update({(k if k not in row else f"media{k[:1].upper()}{k[1:]}"): v for k, v in call["media"].items()})
    extra = {k: v for k, v in call.items()
             if k not in ("metaData", "context", "parties", "content", "interaction", "collaboration", "media")}
    row.update(extra)
    # Ids become text, nulls and empty strings are left out and every nested row carries the call's id, in one pass.
    return with_parent_key(row, "callId", call_id)


def _party(party: Any) -> Any:
    """A party with its id named `partyId`; its CRM context and its methods carry it."""
    if not isinstance(party, dict):
        return party
    party = dict(party)
    party_id = party.pop("id", None)
    keys = {"partyId": party_id} if party_id is not None else {}
    out = {**keys, **party}
    if "context" in party:
        out["context"] = _contexts(party["context"], keys)
    if "methods" in party:
        out["methods"] = [{**keys, "value": m} if not isinstance(m, dict | list) else m
                          for m in party["methods"] or []]
    return out


def _contexts(contexts: Any, keys: dict[str, Any]) -> list[Any]:
    """CRM context (the call's or a party's): each system, its objects and their fields carry the keys above
    them (`system`, then `objectType` and `objectId`), and each field's value becomes text."""
    out: list[Any] = []
    for ctx in contexts or []:
        if not isinstance(ctx, dict):
            out.append(ctx)
            continue
        ctx_keys = {**keys, "system": ctx.get("system")}
        objects = []
        for obj in ctx.get("objects") or []:
            if not isinstance(obj, dict):
                objects.append(obj)
                continue
            obj_keys = {**ctx_keys, "objectType": obj.get("objectType"), "objectId": obj.get("objectId")}
            fields = [{**obj_keys, **f, "value": _as_text(f.get("value"))} if isinstance(f, dict) else f
                      for f in obj.get("fields") or []]
            objects.append({**ctx_keys, **obj, "fields": fields})
        out.append({**keys, **ctx, "objects": objects})
    return out


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(ids_to_text(value), separators=(",", ":"), sort_keys=True)


def _tracker(tracker: dict[str, Any]) -> dict[str, Any]:
    """A tracker of a call named as in `trackers` (`trackerId`, `trackerName`); its occurrences and phrases
    carry `trackerId`, and the occurrences of a phrase also its `phrase`."""
    tracker = _renamed(tracker, {"id": "trackerId", "name": "trackerName"})
    keys = {"trackerId": tracker.get("trackerId")}
    if "occurrences" in tracker:
        tracker["occurrences"] = _keyed(tracker["occurrences"], keys, _SECONDS_START)
    if "phrases" in tracker:
        phrases = []
        for phrase in tracker["phrases"] or []:
            if isinstance(phrase, dict):
                phrase = {**keys, **phrase}
                if "occurrences" in phrase:
                    phrase["occurrences"] = _keyed(phrase["occurrences"], {**keys, "phrase": phrase.get("phrase")},
                                                   _SECONDS_START)
            phrases.append(phrase)
        tracker["phrases"] = phrases
    return tracker


def _outline_section(section: dict[str, Any]) -> dict[str, Any]:
    """An outline section (`startTimeS`, `durationS`); its items carry the section's name."""
    section = _renamed(section, _OUTLINE_SECTION)
    if "items" in section:
        section["items"] = _keyed(section["items"], {"section": section.get("section")}, _SECONDS_START)
    return section


def _highlight(highlight: dict[str, Any]) -> dict[str, Any]:
    """A highlights section; its items carry its `title`, and each item's start times (seconds, a list of
    numbers) become rows of `startTimeS` that carry the title and the item's `text`."""
    highlight = dict(highlight)
    keys = {"title": highlight.get("title")}
    items = []
    for item in highlight.get("items") or []:
        if isinstance(item, dict):
            item = {**keys, **item}
            if "startTimes" in item:
                item_keys = {**keys, "text": item.get("text")}
                item["startTimes"] = [{**item_keys, "startTimeS": t} if not isinstance(t, dict | list) else t
                                      for t in item["startTimes"] or []]
        items.append(item)
    if "items" in highlight:
        highlight["items"] = items
    return highlight


def user_row(user: dict[str, Any]) -> dict[str, Any]:
    """Turns one user into a row whose child lists (aliases, languages, meeting URLs) carry `userId`."""
    user = ids_to_text(user)
    # "primary" is a reserved word in SQL: a column of that name would need quoting in every query.
    user["spokenLanguages"] = [
        {("isPrimary" if k == "primary" else k): v for k, v in lang.items()} if isinstance(lang, dict) else lang
        for lang in user.get("spokenLanguages") or []
    ]
    return with_parent_key(user, "userId", str(user.get("id")))


def scorecard_row(scorecard: dict[str, Any]) -> dict[str, Any]:
    """Turns one scorecard into a row whose questions (and their options) carry `scorecardId`; an answer
    option carries its question's `questionId` and `questionRevisionId`, and its own id is `optionId` (as
    the options an answered scorecard selected)."""
    scorecard = ids_to_text(scorecard)
    scorecard_id = str(scorecard.get("scorecardId"))
    questions = []
    for question in scorecard.get("questions") or []:
        question = dict(question)
        if "answerOptions" in question:
            question["answerOptions"] = _keyed(question["answerOptions"], _question_keys(question), {"id": "optionId"})
        questions.append(question)
    scorecard["questions"] = questions
    return with_parent_key(scorecard, "scorecardId", scorecard_id)


def _question_keys(question: dict[str, Any]) -> dict[str, Any]:
    return {k: question[k] for k in ("questionId", "questionRevisionId") if k in question}


def answered_scorecard_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A filled-in scorecard whose answers carry `answeredScorecardId`; the options an answer selected
    (a list of option ids) become rows of `optionId` that also carry the answer's question."""
    record = {**ctx, **ids_to_text(record)}
    answers = []
    for answer in record.get("answers") or []:
        if isinstance(answer, dict) and "selectedOptions" in answer:
            keys = _question_keys(answer)
            answer = {**answer, "selectedOptions": [
                {**keys, "optionId": o} if not isinstance(o, dict | list) else o for o in answer["selectedOptions"]]}
        answers.append(answer)
    if "answers" in record:
        record["answers"] = answers
    return with_parent_key(record, "answeredScorecardId", str(record.get("answeredScorecardId")))


def tracker_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A keyword tracker whose child lists carry `trackerId`; the keywords of a language also carry its
    `language` (their parent's key)."""
    record = {**ctx, **ids_to_text(record)}
    if "languageKeywords" in record:
        languages = []
        for lang in record["languageKeywords"] or []:
            if isinstance(lang, dict) and "keywords" in lang:
                keys = {"language": lang.get("language")}
                lang = {**lang, "keywords": [{**keys, "value": k} if not isinstance(k, dict | list) else k
                                             for k in lang["keywords"] or []]}
            languages.append(lang)
        record["languageKeywords"] = languages
    return with_parent_key(record, "trackerId", str(record.get("trackerId")))


TRANSCRIPT_SCHEMA = pa.schema([
    pa.field("call_id", pa.string(), nullable=False),
    pa.field("sentence_index", pa.int64(), nullable=False),
    pa.field("monologue_index", pa.int64(), nullable=False),
    pa.field("speaker_id", pa.string()),
    pa.field("topic", pa.string()),
    pa.field("start_ms", pa.int64()),
    pa.field("end_ms", pa.int64()),
    pa.field("text", pa.string()),
])


def transcript_table(call_transcripts: Iterable[dict[str, Any]]) -> pa.Table:
    """Returns one Arrow row per sentence: call id, order in the call, speaker, topic, start/end ms, text
    (an empty speaker, topic or text is NULL)."""
    cols: dict[str, list[Any]] = {name: [] for name in TRANSCRIPT_SCHEMA.names}
    for ct in call_transcripts:
        call_id = str(ct.get("callId"))
        index = 0
        for m_index, monologue in enumerate(ct.get("transcript") or []):
            speaker = monologue.get("speakerId")
            speaker = None if _is_empty(speaker) else str(speaker)
            topic = monologue.get("topic")
            topic = None if _is_empty(topic) else topic
            for sentence in monologue.get("sentences") or []:
                cols["call_id"].append(call_id)
                cols["sentence_index"].append(index)
                cols["monologue_index"].append(m_index)
                cols["speaker_id"].append(speaker)
                cols["topic"].append(topic)
                cols["start_ms"].append(sentence.get("start"))
                cols["end_ms"].append(sentence.get("end"))
                text = sentence.get("text")
                cols["text"].append(None if _is_empty(text) else text)
                index += 1
    return pa.Table.from_pydict(cols, schema=TRANSCRIPT_SCHEMA)


def transcript_rows(records: Any) -> pa.Table:
    """A page of transcripts as Arrow rows: read by Arrow already (`transcript_answer_table`), or decoded JSON."""
    return records if isinstance(records, pa.Table) else transcript_table(records)


# What `transcript_answer_table` reads of an answer of /v2/calls/transcript; any other field is ignored.
_SENTENCE = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string())])
_MONOLOGUE = pa.struct([("speakerId", pa.string()), ("topic", pa.string()), ("sentences", pa.list_(_SENTENCE))])
_CALL_TRANSCRIPT = pa.struct([("callId", pa.string()), ("transcript", pa.list_(_MONOLOGUE))])
TRANSCRIPT_ANSWER_SCHEMA = pa.schema([
    ("records", pa.struct([("cursor", pa.string()), ("totalRecords", pa.int64())])),
    ("callTranscripts", pa.list_(_CALL_TRANSCRIPT)),
])


def transcript_answer_table(content: bytes) -> tuple[pa.Table, dict[str, Any]] | None:
    """Reads a whole /v2/calls/transcript answer with Arrow's JSON reader (C++, outside Python's lock)
    and returns the same rows as `transcript_table`, with the answer's paging (`cursor`, `totalRecords`).

    Returns None for any answer this fast path does not read exactly as the standard one would (not one
    JSON object, an id sent as a number, a null inside a list, a field of another type...): the caller
    then decodes it as usual, which also reports a malformed answer clearly.
    """
    body = content.strip()
    # One JSON object only: the reader takes several documents in a row, and a bare `null` crashes it.
    if not (body.startswith(b"{") and body.endswith(b"}")):
        return None
    try:
        body.decode("utf-8")  # the reader does not check it; invalid text must not reach the warehouse
    except UnicodeDecodeError:
        return None
    try:
        answer = pa_json.read_json(
            pa.py_buffer(body),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
            parse_options=pa_json.ParseOptions(explicit_schema=TRANSCRIPT_ANSWER_SCHEMA,
                                               unexpected_field_behavior="ignore", newlines_in_values=True),
        )
    except (pa.ArrowException, ValueError):
        return None
    if answer.num_rows != 1:
        return None
    paging = answer.column("records")[0].as_py() or {}
    calls_lists = answer.column("callTranscripts").combine_chunks()
    if calls_lists.null_count:
        return None  # no list of transcripts: the standard path reports it
    calls = pc.list_flatten(calls_lists)
    monologue_lists = calls.field("transcript")
    monologues = pc.list_flatten(monologue_lists)
    sentence_lists = monologues.field("sentences")
    sentences = pc.list_flatten(sentence_lists)
    if calls.null_count or calls.field("callId").null_count or monologues.null_count or sentences.null_count:
        return None
    # Which call each monologue belongs to, which monologue each sentence belongs to, and where each
    # call's monologues and each monologue's sentences begin, to number them from 0 within their call.
    monologue_call = pc.list_parent_indices(monologue_lists)
    sentence_monologue = pc.list_parent_indices(sentence_lists)
    sentence_call = pc.take(monologue_call, sentence_monologue)
    per_call = pc.fill_null(pc.list_value_length(monologue_lists), 0)
    call_first_monologue = pc.subtract(pc.cumulative_sum(per_call), per_call)
    per_monologue = pc.fill_null(pc.list_value_length(sentence_lists), 0)
    monologue_first_sentence = pc.subtract(pc.cumulative_sum(per_monologue), per_monologue)
    monologue_index = pc.subtract(pa.array(range(len(monologues)), pa.int64()),
                                  pc.take(call_first_monologue, monologue_call))
    call_first_sentence = pc.take(monologue_first_sentence, pc.take(call_first_monologue, sentence_call))
    sentence_index = pc.subtract(pa.array(range(len(sentences)), pa.int64()), call_first_sentence)
    table = pa.Table.from_arrays([
        pc.take(calls.field("callId"), sentence_call),
        sentence_index,
        pc.take(monologue_index, sentence_monologue),
        _empty_as_null(pc.take(monologues.field("speakerId"), sentence_monologue)),
        _empty_as_null(pc.take(monologues.field("topic"), sentence_monologue)),
        sentences.field("start"),
        sentences.field("end"),
        _empty_as_null(sentences.field("text")),
    ], schema=TRANSCRIPT_SCHEMA)
    return table, {k: v for k, v in paging.items() if v is not None}


def _empty_as_null(strings: Any) -> Any:
    """A string array with every empty string made null (as `transcript_table` reads them)."""
    empty = pc.equal(strings, "")
    if not pc.any(empty).as_py():
        return strings
    return pc.if_else(empty, pa.scalar(None, strings.type), strings)


def records_to_rows(row: Callable[[dict[str, Any], dict[str, Any]], Any], records: Iterable[dict[str, Any]],
                    ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a catalog row function makes of a page of records (one row, several, or none per record)."""
    rows: list[dict[str, Any]] = []
    for record in records:
        made = row(record, ctx)
        if isinstance(made, list):
            rows.extend(made)
        elif made is not None:
            rows.append(made)
    return rows


# Row functions of the catalog: each takes one record and the request's context (the parent row's
# values, the window's day or period, the partition) and returns a row or a list of rows.

Context = dict[str, Any]


def plain_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Returns the record with ids as text and the context's keys (e.g. `workspaceId`) added."""
    return {**ctx, **ids_to_text(record)}


def keyed_row(key: str, source_field: str = "id") -> Any:
    """Returns a row function whose child lists all carry `key` = the record's `source_field`."""

    def row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
        record = {**ctx, **ids_to_text(record)}
        return with_parent_key(record, key, str(record.get(source_field)))

    return row


def call_row_ctx(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Adapts `call_row` to the catalog's row signature (media stays out unless ctx asks for it)."""
    return call_row(record, include_media=bool(ctx.get("includeMedia")))


def scorecard_row_ctx(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Adapts `scorecard_row` to the catalog's row signature."""
    return scorecard_row(record)


def user_row_ctx(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Adapts `user_row` to the catalog's row signature."""
    return user_row(record)


def stats_day_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A per-user, per-day stats record (aggregate or interaction) with the day it covers.

    Nested stats objects become columns; stat lists (`personInteractionStats`) become a child table
    that carries `userId` and `day` (a date, in the parent as in the child).
    """
    record = ids_to_text(record)
    row: dict[str, Any] = {"userId": record.get("userId"), "userEmailAddress": record.get("userEmailAddress"),
                           "day": local_date(ctx["day"])}
    for key, value in record.items():
        if key in row:
            continue
        if isinstance(value, dict):
            row.update(value)
        elif isinstance(value, list):
            row[key] = [{"userId": row["userId"], "day": row["day"], **item} for item in value
                        if isinstance(item, dict)]
        else:
            row[key] = value
    return row


def day_by_day_rows(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per user and day: a count per activity, and a child list of (activity, call id) that
    carries the row's `userId` and `day` (a date, in the parent as in the child)."""
    record = ids_to_text(record)
    rows = []
    for day in record.get("userDailyActivityStats") or []:
        row: dict[str, Any] = {"userId": record.get("userId"), "userEmailAddress": record.get("userEmailAddress"),
                               "day": local_date(day.get("fromDate")), "toDate": local_date(day.get("toDate"))}
        calls = []
        for activity, value in day.items():
            if isinstance(value, list):
                row[f"{activity}Count"] = len(value)
                calls.extend({"userId": row["userId"], "day": row["day"], "activity": activity,
                              "callId": str(call_id)} for call_id in value)
            elif activity not in ("fromDate", "toDate"):
                row[activity] = value
        row["calls"] = calls
        rows.append(row)
    return rows


def by_period_rows(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per user and aggregation period (`period`, `periodStart`, `periodEnd`) with its counts."""
    record = ids_to_text(record)
    rows = []
    for item in record.get("userAggregateActivity") or []:
        item = dict(item)
        rows.append({"userId": record.get("userId"), "userEmailAddress": record.get("userEmailAddress"),
                     "period": ctx["period"], "periodStart": local_date(item.pop("fromDate", None)),
                     "periodEnd": local_date(item.pop("toDate", None)), **item})
    return rows


def local_date(value: Any) -> Any:
    """The calendar day of a Gong day boundary, as a date: "2024-01-17T00:00:00+05:30" is January 17.

    Gong sends the start and end of a company day as an ISO date-time in the company's offset; dlt would
    turn it into the date of that instant in UTC, the previous day east of UTC. A date object also makes
    the column a date in a child table, which no column hint reaches. Anything else is left to dlt.
    """
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value


def folder_call_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A call saved in a library folder, keyed by `folderId` + `callId`; who added it is `addedByUserId` (a
    user id, named as the others), and its snippet's bounds (seconds from the call's start) become
    `snippetStartTimeS` and `snippetEndTimeS`, as a call's action items name them."""
    record = ids_to_text(_renamed(record, {"addedBy": "addedByUserId"}))  # renamed first: an id becomes text
    snippet = record.pop("snippet", None)
    if isinstance(snippet, dict):
        snippet = _renamed(snippet, {"fromSec": "snippetStartTimeS", "toSec": "snippetEndTimeS"})
        record.update({k: snippet.pop(k) for k in ("snippetStartTimeS", "snippetEndTimeS") if k in snippet})
        if snippet:
            record["snippet"] = snippet  # fields Gong adds later: flattened as before
    elif snippet is not None:
        record["snippet"] = snippet
    return {"folderId": ctx["folderId"], "callId": record.pop("id", None), **record}


def library_folder_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A library folder of a workspace; who created it is `createdByUserId` (a user id, named as the others)."""
    return plain_row(_renamed(record, {"createdBy": "createdByUserId"}), ctx)  # renamed first: an id becomes text


def flow_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """An Engage flow; its folder is a flow folder (`flowFolderId`, `flowFolderName`), not a library folder."""
    return ids_to_text(_renamed(record, {"folderId": "flowFolderId", "folderName": "flowFolderName"}))


def profile_user_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A user holding a permission profile, keyed by `profileId` + `userId`."""
    record = ids_to_text(record)
    return {"profileId": ctx["profileId"], "userId": record.pop("id", None), **record}


def audit_log_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """An audit log entry keyed by a hash of its whole content (Gong gives entries no id); its `logRecord`
    (the log fields, an object in Gong's spec) is kept as one JSON value."""
    import hashlib

    document = json_document(record)
    # The key hashes the entry as earlier versions did (empty strings included), so it stays the same.
    canonical = json.dumps({"logType": ctx["logType"], **document}, sort_keys=True, separators=(",", ":"))
    row = {"logId": hashlib.sha256(canonical.encode()).hexdigest()[:32], "logType": ctx["logType"],
           **ids_to_text({k: v for k, v in record.items() if k != "logRecord"})}
    if "logRecord" in document:
        row["logRecord"] = document["logRecord"]
    return row


def manual_association_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A manual CRM association event; its CRM objects carry `callId` and `created`."""
    record = ids_to_text(record)
    objects = [{"callId": record.get("callId"), "created": record.get("created"), **obj}
               for obj in record.get("associatedCrmObjects") or []]
    return {**record, "associatedCrmObjects": objects}


def crm_schema_field_rows(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per CRM field of each object type of a generic CRM integration (`orderedValueList`, the values
    of a picklist, is kept as one JSON list: the column is declared JSON)."""
    rows = []
    for object_type, fields in (record or {}).items():
        for field in fields or []:
            field = ids_to_text(field)
            rows.append({"integrationId": ctx["integrationId"], "objectType": object_type, **field})
    return rows


def settings_history_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A change of one user setting, keyed by `userId` + `setting` + `time`."""
    return {"userId": ctx["userId"], **ids_to_text(record)}


def coaching_rows(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per manager, direct report and month with the report's coaching metrics (one JSON value)."""
    manager = ids_to_text(record.get("manager") or {})
    rows = []
    for item in record.get("directReportsMetrics") or []:
        report = ids_to_text(item.get("report") or {})
        rows.append({
            "managerId": manager.get("id"), "reportId": report.get("id"),
            "periodStart": ctx["periodStart"], "periodEnd": ctx["periodEnd"], "workspaceId": ctx["workspace-id"],
            "reportEmailAddress": report.get("emailAddress"),
            "metrics": json_document(item.get("metrics") or {}),
        })
    return rows


def call_access_rows(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per call and user that may access it."""
    record = ids_to_text(record)
    return [{"callId": record.get("callId"), **user} for user in record.get("users") or []]


def permission_profile_row(record: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A permission profile: each access area's level becomes `<area>Level`, and all team leads go to one
    child list `teamLeads` of (profileId, area, userId), so no name outgrows a warehouse's identifier limit.
    """
    record = {**ctx, **ids_to_text(record)}
    profile_id = str(record.get("id"))
    areas = {k: v for k, v in record.items() if k.endswith("Access") and isinstance(v, dict)}
    for name, value in (record.pop("forecastPermissions", None) or {}).items():
        if isinstance(value, dict):
            areas[name] = value
    leads = []
    for area, value in areas.items():
        record.pop(area, None)
        value = dict(value)
        for user_id in value.pop("teamLeadIds", None) or []:
            leads.append({"profileId": profile_id, "area": area, "userId": str(user_id)})
        record[f"{area}Level"] = value.pop("permissionLevel", None)
        if area == "libraryFolderAccess":
            record["libraryFolderIds"] = [{"profileId": profile_id, "folderId": str(f)}
                                          for f in value.pop("libraryFolderIds", None) or []]
        record.update({f"{area[:-len('Access')] if area.endswith('Access') else area}{k[:1].upper()}{k[1:]}": v
                       for k, v in value.items()})
    record["teamLeads"] = leads
    return record
