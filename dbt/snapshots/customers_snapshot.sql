{% snapshot customers_snapshot %}
{{
    config(
        unique_key='customer_id',
        strategy='timestamp',
        updated_at='updated_at',
    )
}}
-- The latest version of every customer as of var('customers_as_of'): the lakehouse pipeline steps it
-- through the loaded days, so a multi-day backfill records each address change as its own version.
with versions as (
    select
        *,
        row_number() over (partition by customer_id order by updated_at desc) as version_rank
    from {{ source('ecommerce', 'customers') }}
    where updated_at <= cast('{{ var("customers_as_of") }}' as timestamp)
)

select customer_id, name as customer_name, email, city, address, updated_at
from versions
where version_rank = 1
{% endsnapshot %}
