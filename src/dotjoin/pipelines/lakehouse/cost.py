"""Cost estimate: bytes stored per zone and bytes scanned per mart build, priced at cloud list prices.

Prices are public list prices (USD, on-demand, no free tier or discounts), as published on the vendors'
pricing pages; they were checked on 2026-11-25 against secondary sources quoting those pages (we had no
direct access to the vendor pages) — re-check before quoting a budget:

=====================================  =====================  ==========================================
item                                   price                  source
=====================================  =====================  ==========================================
Amazon S3 Standard, us-east-1          $0.023 per GB-month    aws.amazon.com/s3/pricing (first 50 TB)
Google Cloud Storage Standard, region  $0.020 per GB-month    cloud.google.com/storage/pricing
Amazon Athena (SQL on S3)              $5.00 per TB scanned   aws.amazon.com/athena/pricing (10 MB min)
BigQuery on-demand                     $6.25 per TiB scanned  cloud.google.com/bigquery/pricing
=====================================  =====================  ==========================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotjoin.platform.lake import ZONES
from dotjoin.platform.runs import RunReport

GB = 10**9
TB = 10**12
TIB = 2**40


@dataclass(frozen=True)
class Price:
    item: str
    usd: float
    unit_bytes: int  # the price is per unit_bytes (per month for storage)
    kind: str  # storage | scan
    source: str

    @property
    def unit(self) -> str:
        """The unit the price is quoted in.

        >>> PRICES[0].unit, PRICES[3].unit
        ('GB-month', 'TiB')
        """
        if self.kind == "storage":
            return "GB-month"
        return "TiB" if self.unit_bytes == TIB else "TB"


PRICES: tuple[Price, ...] = (
    Price("S3 Standard us-east-1", 0.023, GB, "storage", "aws.amazon.com/s3/pricing"),
    Price("GCS Standard regional", 0.020, GB, "storage", "cloud.google.com/storage/pricing"),
    Price("Athena scan", 5.00, TB, "scan", "aws.amazon.com/athena/pricing"),
    Price("BigQuery on-demand scan", 6.25, TIB, "scan", "cloud.google.com/bigquery/pricing"),
)
PRICES_CHECKED = "2026-11-25"


def dir_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 if it does not exist).

    >>> dir_bytes(Path("/nonexistent/dotjoin"))
    0
    """
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        total += sum((Path(dirpath) / f).stat().st_size for f in files)
    return total


def price(nbytes: float, kind: str) -> dict[str, float]:
    """``nbytes`` priced with every list price of ``kind`` (USD; per month for storage).

    >>> price(10**12, "scan")["Athena scan"]
    5.0
    """
    return {p.item: nbytes / p.unit_bytes * p.usd for p in PRICES if p.kind == kind}


def estimate(
    lake_root: Path, last_build: RunReport | None, *, builds_per_month: int = 30
) -> list[dict[str, Any]]:
    """Rows for the cost table: one per zone (stored) and one per mart (scanned by the last build).

    ``aws_usd`` prices storage at S3 Standard and scans at Athena; ``gcp_usd`` at GCS Standard and
    BigQuery on-demand.

    Scan cost per month assumes ``builds_per_month`` full builds like the last one.
    """
    rows: list[dict[str, Any]] = []

    def row(what: str, nbytes: float, kind: str) -> dict[str, Any]:
        aws, gcp = price(nbytes, kind).values()
        return {"what": what, "bytes": int(nbytes), "aws_usd": f"{aws:.6f}", "gcp_usd": f"{gcp:.6f}"}

    for zone in ZONES:
        rows.append(row(f"stored: {zone} (per month)", dir_bytes(lake_root / zone), "storage"))
    if last_build is not None:
        metrics = last_build.metrics
        marts = sorted({k.split(".")[1] for k in metrics if k.startswith("scan.") and k.endswith(".bytes")})
        for mart in marts:
            nbytes = metrics[f"scan.{mart}.bytes"] * builds_per_month
            rows.append(row(f"scanned: {mart} ({builds_per_month} builds/month)", nbytes, "scan"))
    return rows
