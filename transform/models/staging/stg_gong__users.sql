-- One row per Gong user, with their manager's name.
with users as (
    select * from {{ gong_source('users') }} as u
)

select
    u.id as user_id,
    u.first_name,
    u.last_name,
    trim(coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')) as full_name,
    u.email_address,
    u.title,
    u.phone_number,
    u.active as is_active,
    u.created as created_at,
    u.manager_id,
    trim(coalesce(m.first_name, '') || ' ' || coalesce(m.last_name, '')) as manager_name,
    m.email_address as manager_email_address
from users as u
left join users as m on m.id = u.manager_id
