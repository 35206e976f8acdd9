-- One row per answer of a filled-in scorecard.
select
    a.answered_scorecard_id,
    a.question_id,
    a.question_revision_id,
    a.score,
    a.answer_text,
    coalesce(a.is_overall, false) as is_overall,
    coalesce(a.not_applicable, false) as is_not_applicable
from {{ gong_source('answered_scorecards__answers') }} as a
