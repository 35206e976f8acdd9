-- One row per party of a call (people invited or present); `side` is Gong's affiliation, Unknown when Gong has none.
select
    p.call_id,
    p.party_id,
    p.speaker_id,
    p.user_id,
    p.name,
    p.email_address,
    p.title,
    p.phone_number,
    coalesce(p.affiliation, 'Unknown') as side,
    coalesce(p.affiliation = 'Internal', false) as is_internal
from {{ gong_source('calls__parties') }} as p
