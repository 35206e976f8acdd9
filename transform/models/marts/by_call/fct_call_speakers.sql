-- One row per call and speaker of its transcript: how long they spoke (from the sentences), their share of the
-- call and of its talk, and who they are (name, side, Gong user).

with calls as (
    select call_id, duration_s, _load_id from {{ ref('stg_gong__calls') }}
    {% if is_incremental() %}
    where call_id in ({{ changed_calls() }})
    {% endif %}
),

sentences as (
    select
        call_id,
        coalesce(speaker_id, 'unknown') as speaker_id,
        sentence_index,
        monologue_index,
        start_ms,
        end_ms,
        duration_ms,
        _load_id
    from {{ ref('stg_gong__transcript_sentences') }}
    where call_id in (select call_id from calls)
),

per_speaker as (
    select
        call_id,
        speaker_id,
        count(*) as sentences,
        count(distinct monologue_index) as monologues,
        sum(duration_ms) as talk_ms,
        min(start_ms) as first_spoke_ms,
        max(end_ms) as last_spoke_ms,
        max(_load_id) as _load_id
    from sentences
    group by call_id, speaker_id
),

per_call as (
    select call_id, sum(duration_ms) as talk_ms, max(end_ms) as last_end_ms
    from sentences
    group by call_id
)

select
    s.call_id,
    s.speaker_id,
    p.party_id,
    p.user_id,
    p.name as speaker_name,
    coalesce(p.side, 'Unknown') as side,
    coalesce(p.is_internal, false) as is_internal,
    s.sentences,
    s.monologues,
    cast(s.talk_ms as double precision) / 1000 as talk_time_s,
    -- Of the call's length: its duration, or the end of its last sentence where that is later.
    cast(s.talk_ms as double precision)
        / nullif(case when t.last_end_ms > c.duration_s * 1000 then t.last_end_ms else c.duration_s * 1000 end, 0)
        as share_of_call,
    cast(s.talk_ms as double precision) / nullif(t.talk_ms, 0) as share_of_talk,
    s.first_spoke_ms,
    s.last_spoke_ms,
    g.talk_time_s as gong_talk_time_s,
    case when s._load_id > c._load_id then s._load_id else c._load_id end as _load_id
from per_speaker as s
join calls as c on c.call_id = s.call_id
join per_call as t on t.call_id = s.call_id
left join {{ ref('stg_gong__call_participants') }} as p on p.call_id = s.call_id and p.speaker_id = s.speaker_id
left join {{ ref('stg_gong__call_speakers') }} as g on g.call_id = s.call_id and g.speaker_id = s.speaker_id
