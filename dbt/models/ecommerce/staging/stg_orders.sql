-- Order status events: the order as placed, then its late status updates.
select
    cast(order_id as varchar) || '@' || cast(updated_at as varchar) as order_event_key,
    order_id,
    customer_id,
    order_ts,
    status,
    updated_at
from {{ source('ecommerce', 'orders') }}
