{% macro percentile_cont(column, fraction) -%}
  {{ return(adapter.dispatch('percentile_cont', 'dotjoin')(column, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(column, fraction) -%}
  percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}

{% macro duckdb__percentile_cont(column, fraction) -%}
  quantile_cont({{ column }}, {{ fraction }})
{%- endmacro %}

{% macro hour_of(column) -%}
  {{ return(adapter.dispatch('hour_of', 'dotjoin')(column)) }}
{%- endmacro %}

{% macro default__hour_of(column) -%}
  date_trunc('hour', {{ column }})
{%- endmacro %}

{% macro duckdb__hour_of(column) -%}
  cast(date_trunc('hour', {{ column }}) as timestamp)
{%- endmacro %}
