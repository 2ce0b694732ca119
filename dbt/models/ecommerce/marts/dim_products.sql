select
    product_id,
    product_name,
    category,
    price_cents,
    updated_at as price_updated_at
from {{ ref('stg_products') }}
