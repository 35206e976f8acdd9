-- One row per scorecard a reviewer filled in for a call of a reviewed user.
select
    a.answered_scorecard_id,
    a.scorecard_id,
    a.scorecard_name,
    a.call_id,
    a.call_start_time as call_started_at,
    a.review_time as reviewed_at,
    a.reviewed_user_id,
    a.reviewer_user_id,
    a.visibility_type
from {{ gong_source('answered_scorecards') }} as a
