-- The latest version of every product.
with versions as (
    select
        *,
        row_number() over (partition by product_id order by updated_at desc) as version_rank
    from {{ source('ecommerce', 'products') }}
)

select
    product_id,
    name as product_name,
    category,
    price_cents,
    updated_at
from versions
where version_rank = 1
