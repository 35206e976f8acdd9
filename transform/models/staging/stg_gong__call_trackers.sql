-- One row per tracker of a call with Gong's count of its mentions.
select
    t.call_id,
    t.tracker_id,
    t.tracker_name,
    t.type as tracker_type,
    t.count as mentions
from {{ gong_source('calls__trackers') }} as t
