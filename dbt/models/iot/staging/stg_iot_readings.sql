select
    device_id || '|' || sensor || '|' || cast(reading_ts as varchar) as reading_key,
    device_id,
    device_site as site,
    device_model as model,
    device_location_lat as latitude,
    device_location_lon as longitude,
    device_firmware as firmware,
    reading_ts,
    {{ hour_of('reading_ts') }} as reading_hour,
    sensor,
    value,
    battery as battery_pct,
    signal_dbm
from {{ source('iot', 'iot_readings') }}
