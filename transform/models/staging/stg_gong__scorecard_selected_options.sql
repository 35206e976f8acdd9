-- One row per option selected in an answer.
select
    s.answered_scorecard_id,
    s.question_id,
    s.question_revision_id,
    s.option_id
from {{ gong_source('answered_scorecards__answers__selected_options') }} as s
