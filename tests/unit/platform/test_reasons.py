"""The one reason-code vocabulary: documented, enforced at the quarantine, used by every pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dotjoin.pipelines.csv_etl.reasons import REASONS as CSV_ETL_REASONS
from dotjoin.platform.quality.quarantine import Quarantine
from dotjoin.platform.quality.reasons import REASONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "reasons.md"


def test_the_doc_lists_exactly_the_vocabulary() -> None:
    documented = re.findall(r"^\| `([a-z0-9_]+)` \| (.+) \|$", DOC.read_text(), re.MULTILINE)
    assert documented == list(REASONS.items())


def test_the_quarantine_refuses_a_code_outside_the_vocabulary() -> None:
    quarantine = Quarantine("p", "run")
    quarantine.reject(source="f.csv", position=3, reason="ragged_row")
    for old in ("bad_row", "wrong_field_count", "Ragged_Row"):
        with pytest.raises(ValueError, match="unknown quarantine reason"):
            quarantine.reject(source="f.csv", position=4, reason=old)
    assert len(quarantine) == 1


def test_the_csv_etl_codes_are_platform_codes() -> None:
    assert set(CSV_ETL_REASONS) <= set(REASONS)
