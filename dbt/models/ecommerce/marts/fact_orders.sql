select
    o.order_id,
    o.customer_id,
    o.order_ts,
    cast(o.order_ts as date) as order_date,
    o.status,
    o.status_updated_at,
    coalesce(t.item_count, 0) as item_count,
    coalesce(t.units, 0) as units,
    coalesce(t.revenue_cents, 0) as revenue_cents
from {{ ref('int_orders_latest_status') }} as o
left join {{ ref('int_order_totals') }} as t on t.order_id = o.order_id
