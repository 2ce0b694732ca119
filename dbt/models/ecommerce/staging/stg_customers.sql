-- One row per customer version (a new row on every address change).
select
    cast(customer_id as varchar) || '@' || cast(updated_at as varchar) as customer_version_key,
    customer_id,
    name as customer_name,
    email,
    city,
    address,
    updated_at,
    _loaded_at
from {{ source('ecommerce', 'customers') }}
