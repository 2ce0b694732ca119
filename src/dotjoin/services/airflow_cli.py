"""``python -m dotjoin.services.airflow_cli``: the Airflow service's supervisor, and its CLI.

Run by ``.venv-airflow/bin/python`` from the project directory:

* ``supervise`` — the service's foreground command (``dotjoin services up airflow`` starts it);
* anything else — that Airflow CLI command against the stack's instance, e.g.
  ``.venv-airflow/bin/python -m dotjoin.services.airflow_cli dags list``.
"""

from __future__ import annotations

import sys

from dotjoin.services.airflow import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
