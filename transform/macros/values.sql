{#- Reading values that Gong (or a CRM) keeps as text, the same on DuckDB and Postgres. -#}

{#- Whether a text matches a regular expression anywhere (DuckDB's `~` matches the whole text, Postgres' a part). -#}
{% macro matches(column, pattern) -%}
    {%- if target.type == 'postgres' -%}
        ({{ column }} ~ '{{ pattern }}')
    {%- else -%}
        regexp_matches({{ column }}, '{{ pattern }}')
    {%- endif -%}
{%- endmacro %}

{#- A CRM field value as a number, NULL when it is not one (a custom CRM field may hold anything). -#}
{% macro text_to_number(column) -%}
    case when {{ matches(column, '^ *-?[0-9]+([.][0-9]+)? *$') }} then cast(trim({{ column }}) as double precision) end
{%- endmacro %}

{#- A CRM field value as a date, NULL when it is not YYYY-MM-DD[...]. -#}
{% macro text_to_date(column) -%}
    case when {{ matches(column, '^[0-9]{4}-[0-9]{2}-[0-9]{2}') }} then cast(substr({{ column }}, 1, 10) as date) end
{%- endmacro %}

{#- A top-level string of a JSON column. -#}
{% macro json_text(column, key) -%}
    {%- if target.type == 'postgres' -%}
        ({{ column }} ->> '{{ key }}')
    {%- else -%}
        json_extract_string({{ column }}, '$.{{ key }}')
    {%- endif -%}
{%- endmacro %}

{#- The day a timestamp falls on in the time zone of var('week_timezone'), and the Monday of its week. -#}
{% macro local_date(column) -%}
    cast(({{ column }} at time zone '{{ var("week_timezone") }}') as date)
{%- endmacro %}

{% macro week_start(column) -%}
    cast(date_trunc('week', {{ column }} at time zone '{{ var("week_timezone") }}') as date)
{%- endmacro %}
