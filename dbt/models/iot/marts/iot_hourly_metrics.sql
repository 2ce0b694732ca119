-- Incremental by event day: the lakehouse pipeline passes the range of reading days it (re)loaded
-- (vars iot_from / iot_to, to exclusive), so a daily run recomputes only those device-hours and — through
-- the views over iceberg_scan — reads only those day partitions. Without the vars: the whole table.
{{
    config(
        materialized='incremental',
        unique_key='device_hour_key',
        incremental_strategy='delete+insert',
    )
}}

select
    device_id || '|' || sensor || '|' || cast(reading_hour as varchar) as device_hour_key,
    device_id,
    sensor,
    reading_hour,
    count(*) as reading_count,
    min(value) as min_value,
    max(value) as max_value,
    avg(value) as avg_value,
    {{ percentile_cont('value', 0.95) }} as p95_value
from {{ ref('stg_iot_readings') }}
{% if is_incremental() and var('iot_from', none) is not none %}
where reading_ts >= cast('{{ var("iot_from") }}' as timestamp)
  and reading_ts < cast('{{ var("iot_to") }}' as timestamp)
{% endif %}
group by device_id, sensor, reading_hour
