-- One row per device: activity over the loaded window and a health status from its last message.
with activity as (
    select
        device_id,
        min(reading_ts) as first_seen_at,
        count(*) as reading_count,
        count(distinct reading_hour) as hours_reporting,
        min(battery_pct) as min_battery_pct
    from {{ ref('stg_iot_readings') }}
    group by device_id
),

fleet as (
    select max(last_seen_at) as fleet_last_seen_at from {{ ref('int_iot_device_latest') }}
)

select
    a.device_id,
    l.site,
    l.model,
    l.firmware,
    a.first_seen_at,
    l.last_seen_at,
    a.reading_count,
    a.hours_reporting,
    l.battery_pct as last_battery_pct,
    a.min_battery_pct,
    l.signal_dbm as last_signal_dbm,
    case
        when l.last_seen_at < f.fleet_last_seen_at - interval '2 hours' then 'silent'
        when l.battery_pct is not null and l.battery_pct < 15 then 'low_battery'
        else 'ok'
    end as health_status
from activity as a
inner join {{ ref('int_iot_device_latest') }} as l on l.device_id = a.device_id
cross join fleet as f
