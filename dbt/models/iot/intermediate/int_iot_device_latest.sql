-- The last message of every device: its battery, firmware and signal as last reported.
with ranked as (
    select
        *,
        row_number() over (partition by device_id order by reading_ts desc, sensor) as recency
    from {{ ref('stg_iot_readings') }}
)

select device_id, site, model, firmware, reading_ts as last_seen_at, battery_pct, signal_dbm
from ranked
where recency = 1
