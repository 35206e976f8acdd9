-- One row per call (non-private: gong-sync never syncs a private one, and this view would leave it out).
select
    c.id as call_id,
    c.title,
    c.started as started_at,
    c.scheduled as scheduled_at,
    c.duration_s,
    c.direction,
    c.scope,
    c.system,
    c.media,
    c.language,
    c.purpose,
    c.primary_user_id,
    c.workspace_id,
    c.url as gong_url,
    c.meeting_url,
    c.client_unique_id,
    c.calendar_event_id,
    c.sdr_disposition,
    c.call_outcome__id as call_outcome_id,
    c.call_outcome__name as call_outcome_name,
    c.call_outcome__category as call_outcome_category,
    c.questions__company_count as questions_by_company,
    c.questions__non_company_count as questions_by_non_company,
    c.brief,
    {{ load_id('c._dlt_load_id') }} as _load_id
from {{ gong_source('calls') }} as c
where not coalesce(c.is_private, false)
