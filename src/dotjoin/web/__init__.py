"""The web app: run history with row accounting, and Prometheus metrics (``dotjoin serve``).

See :mod:`dotjoin.web.app` for the routes and :func:`dotjoin.web.app.serve` for the entry point.
"""
