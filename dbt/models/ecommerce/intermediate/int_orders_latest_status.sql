-- Late updates win: the most recent status event of every order.
with ranked as (
    select
        *,
        row_number() over (partition by order_id order by updated_at desc) as event_rank
    from {{ ref('stg_orders') }}
)

select order_id, customer_id, order_ts, status, updated_at as status_updated_at
from ranked
where event_rank = 1
