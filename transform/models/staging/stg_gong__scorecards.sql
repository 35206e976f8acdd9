select
    s.scorecard_id,
    s.scorecard_name,
    s.workspace_id,
    s.enabled as is_enabled,
    s.created as created_at,
    s.updated as updated_at,
    s.updater_user_id
from {{ gong_source('scorecards') }} as s
