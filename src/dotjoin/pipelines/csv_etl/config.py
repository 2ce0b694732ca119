"""The CSV ETL's fixed facts: the input columns of each file kind, table names, keys, chunk sizes.

The column lists are the documented input formats (see ``FORMATS.md`` and the README): a file's header
may spell them with other case or spacing, and in any order, but must hold exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from dotjoin.pipelines.csv_etl.reasons import Dataset

PIPELINE = "csv_etl"


@dataclass(frozen=True)
class FileSpec:
    """One kind of input file: its canonical columns (in documented order) and its natural key."""

    kind: str
    columns: tuple[str, ...]
    key: tuple[str, ...] = ()


COMMITS_FILE = FileSpec(
    "commits",
    (
        "repo",
        "sha",
        "author_name",
        "author_email",
        "authored_at",
        "committer_name",
        "committed_at",
        "message",
        "parents",
        "additions",
        "deletions",
    ),
    key=("repo", "sha"),
)
SALES_FILE = FileSpec(
    "sales",
    (
        "invoice_id",
        "line_no",
        "sold_at",
        "store_code",
        "sku",
        "customer_id",
        "quantity",
        "unit_price",
        "currency",
        "discount",
    ),
    key=("invoice_id", "line_no"),
)
STORES_FILE = FileSpec("stores", ("store_code", "name", "country", "currency"), key=("store_code",))
PRODUCTS_FILE = FileSpec("products", ("sku", "name", "category", "list_price_usd"), key=("sku",))
FX_FILE = FileSpec("fx_rates", ("date", "currency", "rate_to_usd"), key=("date", "currency"))

#: The data file of each dataset and its target table.
DATA_FILES: dict[Dataset, FileSpec] = {"commits": COMMITS_FILE, "retail": SALES_FILE}
TARGET_TABLES: dict[Dataset, str] = {"commits": "commits", "retail": "sales"}
#: Retail reference files, looked up next to ``sales.csv``, and the tables they load.
REFERENCE_FILES: dict[str, FileSpec] = {
    "stores.csv": STORES_FILE,
    "products.csv": PRODUCTS_FILE,
    "fx_rates.csv": FX_FILE,
}
SALES_FILE_NAME = "sales.csv"
#: Per-file load bookkeeping (one row per dataset and source file), written with the data.
LOADS_TABLE = "csv_etl_loads"
