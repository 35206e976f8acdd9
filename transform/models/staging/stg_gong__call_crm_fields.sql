-- One row per field of a CRM object in a call's context (the long form: any field, custom ones too, by name).
select
    f.call_id,
    f.system as crm_system,
    f.object_type,
    f.object_id,
    f.name as field_name,
    f.value as field_value
from {{ gong_source('calls__context__objects__fields') }} as f
