-- One row per keyword tracker defined in a workspace.
select
    t.tracker_id,
    t.tracker_name,
    t.workspace_id,
    t.affiliation,
    t.part_of_question,
    t.said_at,
    t.said_at_interval,
    t.said_at_unit,
    t.filter_query,
    t.created as created_at,
    t.updated as updated_at,
    t.creator_user_id,
    t.updater_user_id
from {{ gong_source('trackers') }} as t
