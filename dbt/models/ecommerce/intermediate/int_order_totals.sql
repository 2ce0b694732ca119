select
    order_id,
    count(*) as item_count,
    sum(quantity) as units,
    sum(line_total_cents) as revenue_cents
from {{ ref('stg_order_items') }}
group by order_id
