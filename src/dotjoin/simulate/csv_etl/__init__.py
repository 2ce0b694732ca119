"""The CSV ETL's messy input: ``generate`` (``dotjoin sample``) writes CSV files and ``manifest.json``.

The manifest says, record by record, what a correct pipeline does with each one; the rules are in
``src/dotjoin/pipelines/csv_etl/FORMATS.md``, the contract between this generator and the pipeline.
"""
