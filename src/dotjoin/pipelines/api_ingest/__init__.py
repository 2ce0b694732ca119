"""API -> warehouse ingestion, idempotent and resumable: weather (Open-Meteo) and transit (GTFS/GTFS-RT).

See docs/pipelines/api-ingest.md.
"""
