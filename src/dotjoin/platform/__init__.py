"""Thin adapters over the engines: one ABC per concern (``base.py``), one module per backend.

Pipelines reach engines only through here; the platform never imports a pipeline.
"""
