{#- Models go beside the dataset they read: <dataset>_stg and <dataset>_marts (never <dataset>_staging, which is
    dlt's own staging dataset for merges). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
