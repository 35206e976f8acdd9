{#- A table of the synced dataset, for a model to select from (always with an alias: `from {{ gong_source('calls') }} as c`).

    dlt creates a table only once a row arrives for it: a company without a CRM integration has no calls__context
    tables, one that synced only some resources lacks the others. A table that is not in the warehouse is read as
    an empty one with the contract's columns and types (sources.yml), so every model builds and says "none". -#}
{% macro gong_source(table) -%}
    {%- set relation = source('gong', table) -%}
    {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        {%- set node = graph.sources['source.' ~ project_name ~ '.gong.' ~ table] -%}
        (select
        {%- for column in node.columns.values() %}
            cast(null as {{ gong_type(column.data_type) }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0)
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The warehouse type of a contract type (dlt's names). -#}
{% macro gong_type(data_type) -%}
    {%- set types = {
        'text': dbt.type_string(), 'bigint': dbt.type_bigint(), 'double': 'double precision', 'bool': 'boolean',
        'timestamp': 'timestamp with time zone', 'date': 'date',
        'json': 'jsonb' if target.type == 'postgres' else 'json'} -%}
    {{- types.get(data_type, dbt.type_string()) -}}
{%- endmacro %}
