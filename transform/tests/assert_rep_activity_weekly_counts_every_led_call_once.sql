-- Every call of fct_calls that a user led is counted in rep_activity_weekly exactly once, in its week.
-- Returns the rep and week where that fails.
with expected as (
    select primary_user_id as user_id, {{ week_start('started_at') }} as week_start, count(*) as calls
    from {{ ref('fct_calls') }}
    where primary_user_id is not null
    group by primary_user_id, {{ week_start('started_at') }}
)

select coalesce(e.user_id, r.user_id) as user_id, coalesce(e.week_start, r.week_start) as week_start,
       e.calls as expected, r.calls as counted
from expected as e
full outer join (select * from {{ ref('rep_activity_weekly') }} where calls > 0) as r
    on r.user_id = e.user_id and r.week_start = e.week_start
where e.calls is null or r.calls is null or e.calls <> r.calls
