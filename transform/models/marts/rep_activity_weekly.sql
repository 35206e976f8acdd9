-- One row per rep and week (Monday, in var('week_timezone')), for every week from the first to the last week with a
-- call: the calls the rep led, their minutes, the rep's own talk time in them, the mean talk ratio Gong measured,
-- and the mean score of the scorecards reviewing the rep's calls of that week. A rep is a user who led a call or
-- was reviewed in a scorecard; weeks without calls are rows of zeros.
with calls as (
    select call_id, primary_user_id as user_id, {{ week_start('started_at') }} as week_start, duration_s, talk_ratio,
           scope
    from {{ ref('fct_calls') }}
),

scores as (
    select reviewed_user_id as user_id, {{ week_start('call_started_at') }} as week_start, score_scaled, score,
           answered_scorecard_id
    from {{ ref('fct_scorecard_answers') }}
    where score is not null and not is_not_applicable
),

reps as (
    select user_id from calls where user_id is not null
    union
    select user_id from scores where user_id is not null
),

bounds as (
    select min(week_start) as first_week, max(week_start) as last_week from calls
),

weeks as (
    -- Up to 21 years of weeks; a date plus whole days is a date in DuckDB and Postgres alike.
    select b.first_week + cast(7 * (n.generated_number - 1) as integer) as week_start
    from bounds as b
    cross join ({{ dbt.generate_series(1100) }}) as n
    where b.first_week + cast(7 * (n.generated_number - 1) as integer) <= b.last_week
),

rep_talk as (
    select c.user_id, c.week_start, sum(s.talk_time_s) as talk_time_s
    from calls as c
    join {{ ref('fct_call_speakers') }} as s on s.call_id = c.call_id and s.user_id = c.user_id
    group by c.user_id, c.week_start
),

led as (
    select
        user_id,
        week_start,
        count(*) as calls,
        sum(case when scope = 'External' then 1 else 0 end) as external_calls,
        sum(duration_s) / 60.0 as call_minutes,
        avg(talk_ratio) as mean_talk_ratio
    from calls
    group by user_id, week_start
),

scored as (
    select user_id, week_start, count(distinct answered_scorecard_id) as scorecards, avg(score) as scorecard_mean_score,
           avg(score_scaled) as scorecard_mean_scaled
    from scores
    group by user_id, week_start
)

select
    r.user_id,
    u.full_name as rep_name,
    u.manager_id,
    w.week_start,
    coalesce(l.calls, 0) as calls,
    coalesce(l.external_calls, 0) as external_calls,
    coalesce(cast(l.call_minutes as double precision), 0) as call_minutes,
    coalesce(t.talk_time_s, 0) as talk_time_s,
    l.mean_talk_ratio,
    coalesce(s.scorecards, 0) as scorecards,
    s.scorecard_mean_score,
    s.scorecard_mean_scaled
from reps as r
cross join weeks as w
left join {{ ref('dim_users') }} as u on u.user_id = r.user_id
left join led as l on l.user_id = r.user_id and l.week_start = w.week_start
left join rep_talk as t on t.user_id = r.user_id and t.week_start = w.week_start
left join scored as s on s.user_id = r.user_id and s.week_start = w.week_start
