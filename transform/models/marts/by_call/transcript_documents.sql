-- One row per chunk of a call's transcript: speaker-attributed text ("Maya Novak (Internal): ...", one line per
-- turn) cut into chunks of at most var('chunk_chars') characters at sentence boundaries, with the call's metadata,
-- ready for a full-text index or an embedding job. Chunks of a call are numbered from 0 in transcript order; a
-- sentence longer than a quarter of a chunk is cut into pieces first, so that every chunk keeps to the bound.
{% set chunk_chars = var('chunk_chars') | int %}
{% set piece_chars = (chunk_chars / 4) | int %}

with calls as (
    select * from {{ ref('fct_calls') }}
    {% if is_incremental() %}
    where call_id in ({{ changed_calls() }})
    {% endif %}
),

sentences as (
    select
        s.call_id,
        s.sentence_index,
        s.monologue_index,
        s.speaker_id,
        s.start_ms,
        s.end_ms,
        s.text,
        s._load_id,
        coalesce(p.side, 'Unknown') as side,
        -- The name a line starts with (at most 60 characters, so that a header never crowds a chunk out).
        substr(coalesce(p.name, 'Unknown speaker'), 1, 60) || ' (' || coalesce(p.side, 'Unknown') || '): ' as header,
        coalesce(p.name, 'Unknown speaker') as speaker_name
    from {{ ref('stg_gong__transcript_sentences') }} as s
    left join {{ ref('stg_gong__call_participants') }} as p on p.call_id = s.call_id and p.speaker_id = s.speaker_id
    where s.call_id in (select call_id from calls) and s.text is not null
),

pieces as (
    select s.*, 0 as piece, s.text as piece_text
    from sentences as s
    where {{ dbt.length('s.text') }} <= {{ piece_chars }}
    union all
    select s.*, n.piece, substr(s.text, n.piece * {{ piece_chars }} + 1, {{ piece_chars }}) as piece_text
    from sentences as s
    join (select cast(generated_number as integer) - 1 as piece from ({{ dbt.generate_series(4096) }}) as g) as n
        on n.piece * {{ piece_chars }} < {{ dbt.length('s.text') }}
    where {{ dbt.length('s.text') }} > {{ piece_chars }}
),

-- What a piece can add to a chunk's text: itself, a separator, and a header (every line of a chunk starts with one).
costed as (
    select
        p.*,
        {{ dbt.length('p.piece_text') }} + {{ dbt.length('p.header') }} + 1 as cost
    from pieces as p
),

-- A chunk takes the pieces that start within its share of the call's running cost: each chunk's share is the
-- bound less the call's largest piece, so the last piece a chunk takes still fits.
running as (
    select
        c.*,
        coalesce(sum(c.cost) over (partition by c.call_id order by c.sentence_index, c.piece
                                   rows between unbounded preceding and 1 preceding), 0) as cost_before,
        {{ chunk_chars }} - max(c.cost) over (partition by c.call_id) as share
    from costed as c
),

chunked as (
    select r.*, cast(floor(r.cost_before / r.share) as integer) as chunk_index
    from running as r
),

turns as (
    select
        call_id,
        chunk_index,
        monologue_index,
        min(sentence_index) as first_sentence_index,
        min(header) as header,
        {{ dbt.listagg('piece_text', "' '", 'order by sentence_index, piece') }} as turn_text
    from chunked
    group by call_id, chunk_index, monologue_index
),

chunk_text as (
    select
        call_id,
        chunk_index,
        {{ dbt.listagg("header || turn_text", 'chr(10)', 'order by first_sentence_index') }} as text,
        count(*) as turns
    from turns
    group by call_id, chunk_index
),

chunk_speakers as (
    select call_id, chunk_index,
           {{ dbt.listagg("speaker_name || ' (' || side || ')'", "', '", "order by speaker_name || ' (' || side || ')'") }}
               as speakers
    from (select distinct call_id, chunk_index, speaker_name, side from chunked) as d
    group by call_id, chunk_index
),

chunk_bounds as (
    select
        call_id,
        chunk_index,
        count(distinct sentence_index) as sentences,
        min(sentence_index) as first_sentence_index,
        max(sentence_index) as last_sentence_index,
        min(start_ms) as start_ms,
        max(end_ms) as end_ms,
        max(_load_id) as _load_id
    from chunked
    group by call_id, chunk_index
),

numbered as (
    select b.*, count(*) over (partition by b.call_id) as chunks_in_call
    from chunk_bounds as b
)

select
    b.call_id || '-' || cast(b.chunk_index as {{ dbt.type_string() }}) as chunk_id,
    b.call_id,
    b.chunk_index,
    b.chunks_in_call,
    t.text,
    {{ dbt.length('t.text') }} as characters,
    b.sentences,
    t.turns,
    b.first_sentence_index,
    b.last_sentence_index,
    b.start_ms,
    b.end_ms,
    s.speakers,
    c.title,
    c.started_at,
    c.duration_s,
    c.direction,
    c.scope,
    c.primary_user_id,
    c.account_id,
    c.account_name,
    c.deal_id,
    c.deal_name,
    c.deal_stage,
    case when c._load_id > b._load_id then c._load_id else b._load_id end as _load_id
from numbered as b
join chunk_text as t on t.call_id = b.call_id and t.chunk_index = b.chunk_index
join chunk_speakers as s on s.call_id = b.call_id and s.chunk_index = b.chunk_index
join calls as c on c.call_id = b.call_id
