select
    cast(order_id as varchar) || '#' || cast(line_no as varchar) as order_item_key,
    order_id,
    line_no,
    product_id,
    quantity,
    unit_price_cents,
    quantity * unit_price_cents as line_total_cents,
    order_ts
from {{ source('ecommerce', 'order_items') }}
