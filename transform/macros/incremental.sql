{#- Incremental models rebuild the calls a sync loaded since they were last built, and only those.

    Every raw root table carries dlt's `_dlt_load_id` (the Unix time its load began, as text); a re-synced call gets
    a new one on its row (its child rows are replaced with it), and a transcript re-read gets one on every sentence.
    A model keeps, on each row, the load of the newest raw row behind it (`_load_id`). Its watermark is the newest
    of those that belongs to a completed load (`_dlt_loads`, status 0), so that rows of a load still in progress
    when the model last ran are read again once it completes. -#}

{#- A load id as a number (text would compare by collation in Postgres). dlt's load id is a Unix time as Python
    prints a float (10 digits, at most 7 decimals): decimal(18, 7) holds it exactly, and up to 18 digits DuckDB keeps
    a decimal in 64 bits; at 20 digits it takes 128 and the cast of 2 million sentences took 20 s instead of 0.05. -#}
{% macro load_id(column) -%}
    cast({{ column }} as decimal(18, 7))
{%- endmacro %}

{% macro watermark() -%}
    (select coalesce(max(m._load_id), 0) from {{ this }} as m
     where m._load_id in (select {{ load_id('l.load_id') }} from {{ gong_source('_dlt_loads') }} as l where l.status = 0))
{%- endmacro %}

{#- The ids of the calls a sync loaded after the model's watermark: the calls themselves (with every child table)
    and their transcript sentences. Only inside `{% if is_incremental() %}`. -#}
{% macro changed_calls() -%}
    select c.call_id from {{ ref('stg_gong__calls') }} as c where c._load_id > {{ watermark() }}
    union
    select t.call_id from {{ ref('stg_gong__transcript_sentences') }} as t where t._load_id > {{ watermark() }}
{%- endmacro %}

{#- A post-hook of the incremental models keyed by call: removes the rows of calls no longer in the warehouse
    (gong-sync --reconcile deletes the calls Gong no longer returns, deleted or made private). -#}
{% macro delete_removed_calls() -%}
    delete from {{ this }}
    where not exists (select 1 from {{ ref('stg_gong__calls') }} as c where c.call_id = {{ this }}.call_id)
{%- endmacro %}
