-- SCD type 2 from the dbt snapshot: one row per customer version, valid_from/valid_to.
select
    dbt_scd_id as customer_sk,
    customer_id,
    customer_name,
    email,
    city,
    address,
    dbt_valid_from as valid_from,
    dbt_valid_to as valid_to,
    dbt_valid_to is null as is_current
from {{ ref('customers_snapshot') }}
