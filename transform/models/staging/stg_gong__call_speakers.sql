-- One row per speaker of a call as Gong counts them (its users' talk time; other speakers are in the transcript).
select
    s.call_id,
    s.speaker_id,
    s.user_id,
    s.talk_time_s
from {{ gong_source('calls__speakers') }} as s
