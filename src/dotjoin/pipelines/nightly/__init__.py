"""The nightly flow: ingest, stage, transform, test, notify — one logical date at a time."""
