-- One row per audit log entry; `action` read from its JSON record.
select
    l.log_id,
    l.log_type,
    l.event_time as event_at,
    l.user_id,
    l.user_email_address,
    l.user_full_name,
    l.impersonator_user_id,
    l.impersonator_email_address,
    l.impersonator_full_name,
    l.impersonator_company_id,
    {{ json_text('l.log_record', 'action') }} as action,
    l.log_record
from {{ gong_source('audit_logs') }} as l
