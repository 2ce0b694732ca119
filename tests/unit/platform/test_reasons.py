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


def test_every_reject_of_the_gtfs_test_feeds_uses_a_platform_code() -> None:
    """Google transitfeed's broken test feeds (Apache-2.0, ../shared/data/gtfs): whatever the GTFS reader
    rejects is quarantined under a known code (Quarantine.reject would refuse anything else)."""
    from dotjoin.pipelines.api_ingest.gtfs import GtfsFeedError, read_feed
    from tests.conftest import require_shared_data

    root = require_shared_data("gtfs/transitfeed_tests_data")
    seen: set[str] = set()
    for feed_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            feed = read_feed(feed_dir)
        except GtfsFeedError:
            continue  # a whole feed refused: an error, not a quarantined record
        seen |= {issue.reason for issue in feed.rejected}
    assert seen, "the broken feeds reject some rows"
    assert seen <= set(REASONS), seen - set(REASONS)
