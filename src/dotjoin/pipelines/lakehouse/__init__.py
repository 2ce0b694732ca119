"""Lakehouse zones + dbt (issue 5): raw files -> staging Iceberg tables -> curated dbt marts.

Modules: :mod:`.raw` (immutable landing + manifest), :mod:`.parse` (pure typing/flattening/quarantine),
:mod:`.staging` (Iceberg loads, one day replaced at a time), :mod:`.curated` (dbt in-process),
:mod:`.cost` (storage and scan pricing), :mod:`.pipeline` (``run``). The sources it is demonstrated on
(a shop's CSV exports, IoT JSON lines, with ground truth) are simulated in :mod:`dotjoin.simulate.lakehouse`.
"""
