"""``python -m dotjoin`` is the ``dotjoin`` command."""

from __future__ import annotations

from dotjoin.cli.main import main

main()
