"""stocks — daily prices, orchestrated: fetch -> raw zone -> warehouse -> quality checks -> notify.

The ``stocks`` flow (:mod:`.flow`, run by ``dotjoin run stocks --date D`` and the Airflow DAG) handles
one trade date per run; every step is idempotent for its date.

::

    fetch_prices ──► load_prices ──► quality_check ──► notify
    Stooq CSV per     parse, replace    SQL checks on      alerts.notify
    symbol, landed    the date's rows   the date's rows    (notify_success)
    byte-for-byte     in ONE commit

| module | role |
|---|---|
| ``trading_days.py`` | the NYSE calendar: a date with no bar is a pass only when the exchange was shut |
| ``parse.py`` | pure: a Stooq CSV -> rows, identical repeats, rejects (file, line, reason) |
| ``fetch.py`` | step ``fetch_prices``: resilient HTTP -> ``raw/stocks/trade_date=D/<symbol>.csv`` (atomic) |
| ``load.py`` | step ``load_prices``: raw files -> ``stock_prices_daily`` + quarantine, run report |
| ``checks.py`` | step ``quality_check``: the date's partition, or :class:`StepFailed` naming the check |
| ``flow.py`` | step ``notify`` and ``FLOW`` |

Source: ``[ingest] stocks_url`` (Stooq) or, with ``base_url`` (``--base-url`` / ``params["base_url"]``),
``<base_url>/q/d/l/`` — the local ``dotjoin sources serve`` answers there with deterministic quotes.
Symbols: ``[ingest] stock_symbols``.
"""
