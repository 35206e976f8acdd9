-- Per call and tracker, the mentions of every side add up to Gong's count (or to the occurrences Gong listed, when
-- it listed more). Returns the call and tracker where that fails.
with counted as (
    select t.call_id, t.tracker_id, t.mentions, coalesce(o.occurrences, 0) as occurrences
    from {{ ref('stg_gong__call_trackers') }} as t
    left join (
        select call_id, tracker_id, count(*) as occurrences
        from {{ ref('stg_gong__call_tracker_occurrences') }}
        group by call_id, tracker_id
    ) as o on o.call_id = t.call_id and o.tracker_id = t.tracker_id
    where t.mentions > 0 or o.occurrences > 0
),

modeled as (
    select call_id, tracker_id, sum(mentions) as mentions
    from {{ ref('fct_tracker_mentions') }}
    group by call_id, tracker_id
)

select c.call_id, c.tracker_id, c.mentions as gong_count, c.occurrences, m.mentions as modeled
from counted as c
left join modeled as m on m.call_id = c.call_id and m.tracker_id = c.tracker_id
where m.mentions is null
   or m.mentions <> case when c.occurrences > c.mentions then c.occurrences else c.mentions end
