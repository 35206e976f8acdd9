-- One row per CRM object in a call's context (an Account, an Opportunity...), its common fields as columns.
with fields as (
    select * from {{ ref('stg_gong__call_crm_fields') }}
),

pivoted as (
    select
        call_id,
        crm_system,
        object_type,
        object_id,
        max(case when field_name = 'Name' then field_value end) as object_name,
        max(case when field_name = 'Website' then field_value end) as website,
        max(case when field_name = 'Industry' then field_value end) as industry,
        max(case when field_name = 'StageName' then field_value end) as stage_name,
        max(case when field_name = 'Type' then field_value end) as opportunity_type,
        max(case when field_name = 'LeadSource' then field_value end) as lead_source,
        max(case when field_name = 'Amount' then field_value end) as amount_text,
        max(case when field_name = 'Probability' then field_value end) as probability_text,
        max(case when field_name = 'CloseDate' then field_value end) as close_date_text,
        count(*) as fields
    from fields
    group by call_id, crm_system, object_type, object_id
)

select
    o.call_id,
    o.system as crm_system,
    o.object_type,
    o.object_id,
    o.timing,
    p.object_name,
    p.website,
    p.industry,
    p.stage_name,
    p.opportunity_type,
    p.lead_source,
    {{ text_to_number('p.amount_text') }} as amount,
    {{ text_to_number('p.probability_text') }} as probability,
    {{ text_to_date('p.close_date_text') }} as close_date,
    coalesce(p.fields, 0) as fields
from {{ gong_source('calls__context__objects') }} as o
left join pivoted as p
    on p.call_id = o.call_id and p.crm_system = o.system and p.object_type = o.object_type and p.object_id = o.object_id
