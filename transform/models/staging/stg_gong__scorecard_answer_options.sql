-- One row per option a multiple-choice question offers.
select
    o.scorecard_id,
    o.question_id,
    o.question_revision_id,
    o.option_id,
    o.text as option_text
from {{ gong_source('scorecards__questions__answer_options') }} as o
