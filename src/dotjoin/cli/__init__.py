"""The ``dotjoin`` command line: thin Typer commands over the platform and pipelines."""
