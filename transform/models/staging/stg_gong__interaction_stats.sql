-- One row per user and company day with Gong's interaction statistics as columns.
with stats as (
    select
        s.user_id,
        s.day,
        max(case when s.name = 'Talk Ratio' then s.value end) as talk_ratio,
        max(case when s.name = 'Longest Monologue' then s.value end) as longest_monologue_s,
        max(case when s.name = 'Longest Customer Story' then s.value end) as longest_customer_story_s,
        max(case when s.name = 'Interactivity' then s.value end) as interactivity,
        max(case when s.name = 'Patience' then s.value end) as patience_s,
        max(case when s.name = 'Question Rate' then s.value end) as question_rate
    from {{ gong_source('interaction_stats__person_interaction_stats') }} as s
    group by s.user_id, s.day
)

select
    d.user_id,
    d.day,
    d.user_email_address,
    s.talk_ratio,
    s.longest_monologue_s,
    s.longest_customer_story_s,
    s.interactivity,
    s.patience_s,
    s.question_rate
from {{ gong_source('interaction_stats') }} as d
left join stats as s on s.user_id = d.user_id and s.day = d.day
