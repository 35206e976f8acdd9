select
    f.id as folder_id,
    f.name as folder_name,
    f.parent_folder_id,
    f.workspace_id,
    f.created_by_user_id,
    f.updated as updated_at
from {{ gong_source('library_folders') }} as f
