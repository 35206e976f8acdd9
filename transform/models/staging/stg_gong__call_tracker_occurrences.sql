-- One row per mention of a tracker in a call: who said it (speaker_id) and when.
select
    o.call_id,
    o.tracker_id,
    o.speaker_id,
    o.start_time_s
from {{ gong_source('calls__trackers__occurrences') }} as o
