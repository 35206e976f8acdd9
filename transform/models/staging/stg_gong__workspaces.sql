select
    w.id as workspace_id,
    w.name as workspace_name,
    w.description
from {{ gong_source('workspaces') }} as w
