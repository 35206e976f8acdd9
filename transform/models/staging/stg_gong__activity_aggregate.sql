-- One row per user and company day: Gong's aggregated activity counts.
select
    a.user_id,
    a.day,
    a.user_email_address,
    a.calls_as_host as calls_hosted,
    a.calls_attended,
    a.own_calls_listened_to,
    a.others_calls_listened_to,
    a.calls_comments_given as comments_given,
    a.calls_comments_received as comments_received,
    a.calls_gave_feedback as feedback_given,
    a.calls_received_feedback as feedback_received,
    a.calls_requested_feedback as feedback_requested,
    a.calls_marked_as_feedback_given as marked_feedback_given,
    a.calls_marked_as_feedback_received as marked_feedback_received,
    a.calls_scorecards_filled as scorecards_filled,
    a.calls_scorecards_received as scorecards_received,
    a.calls_shared_internally,
    a.calls_shared_externally
from {{ gong_source('activity_aggregate') }} as a
