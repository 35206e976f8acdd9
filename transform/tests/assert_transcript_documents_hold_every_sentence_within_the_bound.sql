-- Every chunk keeps to var('chunk_chars'), and a call's chunks hold each of its sentences that has text once.
-- Returns the chunks or calls where that fails.
select chunk_id as problem_at, 'longer than chunk_chars' as problem
from {{ ref('transcript_documents') }}
where characters > {{ var('chunk_chars') }}
union all
select s.call_id as problem_at, 'sentences of the transcript not in its chunks' as problem
from (
    select call_id, count(*) as sentences
    from {{ ref('stg_gong__transcript_sentences') }}
    where text is not null
    group by call_id
) as s
left join (
    select call_id, sum(sentences) as sentences, count(*) as chunks, max(chunk_index) as last_chunk
    from {{ ref('transcript_documents') }}
    group by call_id
) as d on d.call_id = s.call_id
where d.sentences is null or d.sentences <> s.sentences or d.last_chunk <> d.chunks - 1
