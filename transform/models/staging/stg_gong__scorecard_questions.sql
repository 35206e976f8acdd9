-- One row per question (revision) of a scorecard.
select
    q.scorecard_id,
    q.question_id,
    q.question_revision_id,
    q.question_text,
    q.question_type,
    coalesce(q.is_overall, false) as is_overall,
    q.min_range,
    q.max_range,
    q.answer_guide
from {{ gong_source('scorecards__questions') }} as q
