{% macro load_lake_extensions() %}
  {#- DuckDB reads the staging Iceberg tables with iceberg_scan; the extension binaries come from the
      duckdb-extension-iceberg/-avro wheels, loaded by path (offline). A no-op on other adapters. -#}
  {% if target.type == 'duckdb' %}
    {% for path in var('duckdb_extensions', []) %}
      {% do run_query("LOAD '" ~ path ~ "'") %}
    {% endfor %}
  {% endif %}
  select 1
{% endmacro %}
