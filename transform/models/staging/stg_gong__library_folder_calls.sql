-- One row per call saved in a library folder (with the snippet saved, when one is).
select
    c.folder_id,
    c.call_id,
    c.title,
    c.note,
    c.added_by_user_id,
    c.created as added_at,
    c.snippet_start_time_s,
    c.snippet_end_time_s,
    c.url as gong_url
from {{ gong_source('library_folder_calls') }} as c
