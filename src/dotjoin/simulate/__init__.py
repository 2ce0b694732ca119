"""Stand-ins for the outside world: the demo, the tests and the benchmarks wire them into pipelines.

- :mod:`.sources`  — the local Open-Meteo / GTFS / GTFS-realtime / Stooq server (``dotjoin sources serve``)
  with injectable faults
- :mod:`.csv_etl`  — the messy-CSV generator (``dotjoin sample``) and its ground-truth manifest
- :mod:`.lakehouse` — the shop's daily CSV exports and the IoT JSON-lines files, with ground truth

A simulator may import what it imitates from a pipeline (column lists, reason codes, a trading calendar);
no pipeline and no platform module imports ``dotjoin.simulate`` (``tests/unit/test_architecture.py``):
a pipeline takes its input — a URL, a directory, a source object — as a parameter.
"""
