-- One row per call with Gong's interaction statistics as columns (Gong sends them as name/value pairs).
select
    i.call_id,
    max(case when i.name = 'Talk Ratio' then i.value end) as talk_ratio,
    max(case when i.name = 'Longest Monologue' then i.value end) as longest_monologue_s,
    max(case when i.name = 'Longest Customer Story' then i.value end) as longest_customer_story_s,
    max(case when i.name = 'Interactivity' then i.value end) as interactivity,
    max(case when i.name = 'Patience' then i.value end) as patience_s,
    max(case when i.name = 'Question Rate' then i.value end) as question_rate
from {{ gong_source('calls__interaction_stats') }} as i
group by i.call_id
