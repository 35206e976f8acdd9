-- One row per answer of a filled-in scorecard (answered scorecard x question): the score or text, with the question,
-- the scorecard, the call and who reviewed whom.
with selected as (
    select
        s.answered_scorecard_id,
        s.question_id,
        {{ dbt.listagg('o.option_text', "', '", 'order by o.option_text') }} as selected_options
    from {{ ref('stg_gong__scorecard_selected_options') }} as s
    join {{ ref('stg_gong__answered_scorecards') }} as a on a.answered_scorecard_id = s.answered_scorecard_id
    join {{ ref('stg_gong__scorecard_answer_options') }} as o
        on o.scorecard_id = a.scorecard_id and o.question_id = s.question_id
        and o.question_revision_id = s.question_revision_id and o.option_id = s.option_id
    group by s.answered_scorecard_id, s.question_id
)

select
    x.answered_scorecard_id,
    x.question_id,
    x.question_revision_id,
    a.scorecard_id,
    a.scorecard_name,
    a.call_id,
    a.call_started_at,
    a.reviewed_at,
    a.reviewed_user_id,
    a.reviewer_user_id,
    a.visibility_type,
    q.question_text,
    q.question_type,
    x.is_overall,
    x.is_not_applicable,
    x.score,
    q.min_range,
    q.max_range,
    -- The score on a 0-1 scale of the question's range (none for N/A or a question without one).
    case when not x.is_not_applicable and q.max_range > q.min_range
        then cast(x.score - q.min_range as double precision) / (q.max_range - q.min_range) end as score_scaled,
    x.answer_text,
    s.selected_options
from {{ ref('stg_gong__scorecard_answers') }} as x
join {{ ref('stg_gong__answered_scorecards') }} as a on a.answered_scorecard_id = x.answered_scorecard_id
left join {{ ref('stg_gong__scorecard_questions') }} as q
    on q.scorecard_id = a.scorecard_id and q.question_id = x.question_id
    and q.question_revision_id = x.question_revision_id
left join selected as s on s.answered_scorecard_id = x.answered_scorecard_id and s.question_id = x.question_id
