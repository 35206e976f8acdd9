-- One row per call: what it was, who led it, the account and deal of its CRM context, who took part, how it went.

with calls as (
    select * from {{ ref('stg_gong__calls') }}
    {% if is_incremental() %}
    where call_id in ({{ changed_calls() }})
    {% endif %}
),

-- The account and the deal of a call: its first Account and first Opportunity (by CRM system and object id);
-- every CRM object of a call is in stg_gong__call_crm_objects.
crm as (
    select
        o.*,
        row_number() over (partition by o.call_id, o.object_type order by o.crm_system, o.object_id) as position
    from {{ ref('stg_gong__call_crm_objects') }} as o
    where o.call_id in (select call_id from calls) and o.object_type in ('Account', 'Opportunity')
),

participants as (
    select
        call_id,
        count(*) as participants,
        sum(case when side = 'Internal' then 1 else 0 end) as internal_participants,
        sum(case when side = 'External' then 1 else 0 end) as external_participants,
        sum(case when side = 'Unknown' then 1 else 0 end) as unknown_participants
    from {{ ref('stg_gong__call_participants') }}
    where call_id in (select call_id from calls)
    group by call_id
),

trackers as (
    select call_id, sum(mentions) as tracker_mentions
    from {{ ref('stg_gong__call_trackers') }}
    where call_id in (select call_id from calls)
    group by call_id
),

transcripts as (
    select
        call_id,
        count(*) as transcript_sentences,
        count(distinct speaker_id) as transcript_speakers,
        max(_load_id) as _load_id
    from {{ ref('stg_gong__transcript_sentences') }}
    where call_id in (select call_id from calls)
    group by call_id
)

select
    c.call_id,
    c.title,
    c.started_at,
    c.duration_s,
    c.direction,
    c.scope,
    c.system,
    c.media,
    c.language,
    c.purpose,
    c.workspace_id,
    c.primary_user_id,
    c.gong_url,
    account.object_id as account_id,
    account.object_name as account_name,
    account.industry as account_industry,
    account.crm_system,
    deal.object_id as deal_id,
    deal.object_name as deal_name,
    deal.stage_name as deal_stage,
    deal.amount as deal_amount,
    deal.close_date as deal_close_date,
    coalesce(p.participants, 0) as participants,
    coalesce(p.internal_participants, 0) as internal_participants,
    coalesce(p.external_participants, 0) as external_participants,
    coalesce(p.unknown_participants, 0) as unknown_participants,
    s.talk_ratio,
    s.longest_monologue_s,
    s.longest_customer_story_s,
    s.interactivity,
    s.patience_s,
    s.question_rate,
    c.questions_by_company,
    c.questions_by_non_company,
    coalesce(k.tracker_mentions, 0) as tracker_mentions,
    t.call_id is not null as has_transcript,
    coalesce(t.transcript_sentences, 0) as transcript_sentences,
    coalesce(t.transcript_speakers, 0) as transcript_speakers,
    -- The newest raw row behind this one: the call's own load, or its transcript's when that came later.
    case when t._load_id > c._load_id then t._load_id else c._load_id end as _load_id
from calls as c
left join crm as account on account.call_id = c.call_id and account.object_type = 'Account' and account.position = 1
left join crm as deal on deal.call_id = c.call_id and deal.object_type = 'Opportunity' and deal.position = 1
left join participants as p on p.call_id = c.call_id
left join {{ ref('stg_gong__call_interaction_stats') }} as s on s.call_id = c.call_id
left join trackers as k on k.call_id = c.call_id
left join transcripts as t on t.call_id = c.call_id
