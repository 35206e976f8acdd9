-- One row per Gong user: name, email, title, manager, primary language, and whether they lead calls.
with languages as (
    select user_id, min(language) as primary_language
    from {{ ref('stg_gong__user_languages') }}
    where is_primary
    group by user_id
),

led as (
    select primary_user_id as user_id, count(*) as calls_led, min(started_at) as first_call_at,
           max(started_at) as last_call_at
    from {{ ref('fct_calls') }}
    group by primary_user_id
)

select
    u.user_id,
    u.full_name,
    u.first_name,
    u.last_name,
    u.email_address,
    u.title,
    u.is_active,
    u.created_at,
    u.manager_id,
    nullif(u.manager_name, '') as manager_name,
    u.manager_email_address,
    l.primary_language,
    coalesce(c.calls_led, 0) as calls_led,
    c.first_call_at,
    c.last_call_at
from {{ ref('stg_gong__users') }} as u
left join languages as l on l.user_id = u.user_id
left join led as c on c.user_id = u.user_id
