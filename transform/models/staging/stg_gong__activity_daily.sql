-- One row per user and company day: what they did in Gong that day (day-by-day activity).
select
    a.user_id,
    a.day,
    a.user_email_address,
    a.calls_as_host_count as calls_hosted,
    a.calls_attended_count as calls_attended,
    a.own_calls_listened_to_count as own_calls_listened_to,
    a.others_calls_listened_to_count as others_calls_listened_to,
    a.calls_comments_given_count as comments_given,
    a.calls_comments_received_count as comments_received,
    a.calls_gave_feedback_count as feedback_given,
    a.calls_received_feedback_count as feedback_received,
    a.calls_requested_feedback_count as feedback_requested,
    a.calls_marked_as_feedback_given_count as marked_feedback_given,
    a.calls_marked_as_feedback_received_count as marked_feedback_received,
    a.calls_scorecards_filled_count as scorecards_filled,
    a.calls_scorecards_received_count as scorecards_received,
    a.calls_shared_internally_count as calls_shared_internally,
    a.calls_shared_externally_count as calls_shared_externally
from {{ gong_source('activity_day_by_day') }} as a
