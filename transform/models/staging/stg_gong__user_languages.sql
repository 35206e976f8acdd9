-- One row per language a user speaks.
select
    l.user_id,
    l.language,
    coalesce(l.is_primary, false) as is_primary
from {{ gong_source('users__spoken_languages') }} as l
