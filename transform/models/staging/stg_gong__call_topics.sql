-- One row per topic of a call with the time spent on it.
select
    t.call_id,
    t.name as topic,
    t.duration_s
from {{ gong_source('calls__topics') }} as t
