"""Lakehouse zones + dbt (issue 5): raw files -> staging Iceberg tables -> curated dbt marts.

Modules: :mod:`.ecommerce_gen` and :mod:`.iot_gen` (deterministic sources with ground truth),
:mod:`.raw` (immutable landing + manifest), :mod:`.parse` (pure typing/flattening/quarantine),
:mod:`.staging` (Iceberg loads, one day replaced at a time), :mod:`.curated` (dbt in-process),
:mod:`.cost` (storage and scan pricing), :mod:`.pipeline` (``run``).
"""
