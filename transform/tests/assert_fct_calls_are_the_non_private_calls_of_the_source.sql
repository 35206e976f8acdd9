-- fct_calls holds every non-private call of the source and nothing else. Returns the calls where that fails.
select f.call_id, 'in fct_calls, not a non-private call of the source' as problem
from {{ ref('fct_calls') }} as f
left join {{ source('gong', 'calls') }} as c on c.id = f.call_id
where c.id is null or coalesce(c.is_private, false)
union all
select c.id as call_id, 'a non-private call of the source missing from fct_calls' as problem
from {{ source('gong', 'calls') }} as c
left join {{ ref('fct_calls') }} as f on f.call_id = c.id
where f.call_id is null and not coalesce(c.is_private, false)
