-- One row per transcript sentence, in order (sentence_index) within its monologue (one speaker's turn).
select
    t.call_id,
    t.sentence_index,
    t.monologue_index,
    t.speaker_id,
    t.topic,
    t.start_ms,
    t.end_ms,
    t.end_ms - t.start_ms as duration_ms,
    t.text,
    {{ load_id('t._dlt_load_id') }} as _load_id
from {{ gong_source('transcripts') }} as t
