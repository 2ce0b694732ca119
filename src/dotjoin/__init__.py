"""dotjoin: every project of the data-engineering roadmap as one tested platform."""

from __future__ import annotations

__version__ = "0.1.0"
