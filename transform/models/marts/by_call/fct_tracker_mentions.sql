-- One row per call, tracker and speaker side (Internal, External, Unknown): how often the tracker came up on that
-- side of the conversation. Per call and tracker the mentions add up to Gong's count: mentions Gong counted
-- without saying who spoke them are Unknown.
-- The calls changed since the last build include those with new transcript sentences:
-- depends_on: {{ ref('stg_gong__transcript_sentences') }}

with calls as (
    select call_id, started_at, primary_user_id, _load_id from {{ ref('stg_gong__calls') }}
    {% if is_incremental() %}
    where call_id in ({{ changed_calls() }})
    {% endif %}
),

occurrences as (
    select
        o.call_id,
        o.tracker_id,
        coalesce(p.side, 'Unknown') as speaker_side,
        count(*) as mentions,
        min(o.start_time_s) as first_mention_s,
        max(o.start_time_s) as last_mention_s
    from {{ ref('stg_gong__call_tracker_occurrences') }} as o
    left join {{ ref('stg_gong__call_participants') }} as p on p.call_id = o.call_id and p.speaker_id = o.speaker_id
    where o.call_id in (select call_id from calls)
    group by o.call_id, o.tracker_id, coalesce(p.side, 'Unknown')
),

attributed as (
    select call_id, tracker_id, sum(mentions) as mentions
    from occurrences
    group by call_id, tracker_id
),

unattributed as (
    select
        t.call_id,
        t.tracker_id,
        'Unknown' as speaker_side,
        t.mentions - coalesce(a.mentions, 0) as mentions,
        cast(null as double precision) as first_mention_s,
        cast(null as double precision) as last_mention_s
    from {{ ref('stg_gong__call_trackers') }} as t
    left join attributed as a on a.call_id = t.call_id and a.tracker_id = t.tracker_id
    where t.call_id in (select call_id from calls) and t.mentions > coalesce(a.mentions, 0)
),

sides as (
    select * from occurrences where speaker_side <> 'Unknown'
    union all
    -- Unknown: the occurrences without a known speaker and what Gong counted beyond the occurrences it sent.
    select
        call_id,
        tracker_id,
        'Unknown' as speaker_side,
        sum(mentions) as mentions,
        min(first_mention_s) as first_mention_s,
        max(last_mention_s) as last_mention_s
    from (
        select * from occurrences where speaker_side = 'Unknown'
        union all
        select * from unattributed
    ) as u
    group by call_id, tracker_id
)

select
    s.call_id,
    s.tracker_id,
    t.tracker_name,
    t.tracker_type,
    s.speaker_side,
    s.mentions,
    s.first_mention_s,
    s.last_mention_s,
    c.started_at,
    c.primary_user_id,
    c._load_id
from sides as s
join calls as c on c.call_id = s.call_id
left join {{ ref('stg_gong__call_trackers') }} as t on t.call_id = s.call_id and t.tracker_id = s.tracker_id
