"""Retail reference files: ``stores.csv``, ``products.csv``, ``fx_rates.csv`` next to ``sales.csv``.

They are small and must be right, so a defect in one is an error that names the file, line and
field (no quarantine): every sale is checked against them. Codes are trimmed and upper-cased like the
sales' codes; the tables ``stores``, ``products`` and ``fx_rates`` get the same normalised rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.pipelines.csv_etl.cleaning_retail import RATE, Reference
from dotjoin.pipelines.csv_etl.config import FX_FILE, PRODUCTS_FILE, STORES_FILE, FileSpec
from dotjoin.platform.files import DelimitedReader, InputFileError
from dotjoin.platform.files.types import is_empty, matches, parse_dates, trim, upper

logger = logging.getLogger(__name__)

PRICE_USD = pa.decimal128(24, 6)


@dataclass
class ReferenceData:
    """The parsed reference files: the lookup for cleaning and the rows for the reference tables."""

    lookup: Reference
    stores: pa.Table
    products: pa.Table
    fx_rates: pa.Table


def _read(path: Path, spec: FileSpec) -> tuple[pa.Table, np.ndarray]:
    with DelimitedReader(path, columns=spec.columns, allow_empty=False) as reader:
        chunks = list(reader)
    bad = [r for c in chunks for r in c.rejected]
    if bad:
        first = bad[0]
        raise InputFileError(
            f"{path}: line {first.line}: {first.reason} ({first.detail}) in a reference file"
        )
    table = pa.concat_tables([c.table for c in chunks]) if chunks else pa.table({})
    lines = np.concatenate([c.line for c in chunks]) if chunks else np.zeros(0, np.int64)
    return pa.table({name: trim(table.column(name).combine_chunks()) for name in spec.columns}), lines


def _require(path: Path, lines: np.ndarray, table: pa.Table, column: str, ok: np.ndarray, what: str) -> None:
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        value = table.column(column)[row].as_py()
        raise InputFileError(f"{path}: line {lines[row]}: field {column}={value!r} is {what}")


def _unique(path: Path, lines: np.ndarray, table: pa.Table, key: list[str]) -> None:
    counts = table.select(key).group_by(key).aggregate([([], "count_all")])
    dupes = counts.filter(pc.greater(counts.column("count_all"), 1))
    if dupes.num_rows:
        raise InputFileError(
            f"{path}: duplicate {'+'.join(key)} {dupes.drop_columns(['count_all']).to_pylist()[0]}"
        )


def read_references(directory: Path) -> ReferenceData:
    """Read and validate the three reference files of ``directory``.

    Raises:
        InputFileError: a file is missing or unreadable, or a row is invalid (naming file, line, field).
    """
    stores_path, products_path, fx_path = (
        directory / n for n in ("stores.csv", "products.csv", "fx_rates.csv")
    )
    for path in (stores_path, products_path, fx_path):
        if not path.is_file():
            raise InputFileError(
                f"{path}: no such file (retail needs stores.csv, products.csv and fx_rates.csv next to "
                "sales.csv)"
            )
    raw, lines = _read(stores_path, STORES_FILE)
    stores = pa.table(
        {
            "store_code": upper(raw["store_code"]),
            "name": raw["name"],
            "country": upper(raw["country"]),
            "currency": upper(raw["currency"]),
        }
    )
    for column in ("store_code", "currency"):
        _require(stores_path, lines, raw, column, ~is_empty(stores[column].combine_chunks()), "empty")
    _require(
        stores_path,
        lines,
        raw,
        "currency",
        matches(stores["currency"].combine_chunks(), r"^[A-Z]{3}$"),
        "not a currency code",
    )
    _unique(stores_path, lines, stores, ["store_code"])

    raw, lines = _read(products_path, PRODUCTS_FILE)
    price_ok = matches(raw["list_price_usd"].combine_chunks(), r"^\d{1,18}(\.\d{1,6})?$") | is_empty(
        raw["list_price_usd"].combine_chunks()
    )
    _require(products_path, lines, raw, "list_price_usd", price_ok, "not a price")
    _require(products_path, lines, raw, "sku", ~is_empty(raw["sku"].combine_chunks()), "empty")
    price = pc.if_else(
        price_ok & ~is_empty(raw["list_price_usd"].combine_chunks()), raw["list_price_usd"], "0"
    )
    products = pa.table(
        {
            "sku": upper(raw["sku"]),
            "name": raw["name"],
            "category": raw["category"],
            "list_price_usd": pc.if_else(
                is_empty(raw["list_price_usd"].combine_chunks()),
                pa.scalar(None, PRICE_USD),
                pc.cast(price, PRICE_USD),
            ),
        }
    )
    _unique(products_path, lines, products, ["sku"])

    raw, lines = _read(fx_path, FX_FILE)
    dates = parse_dates(raw["date"])
    _require(
        fx_path,
        lines,
        raw,
        "date",
        ~np.asarray(dates.is_null().to_numpy(zero_copy_only=False), bool),
        "not a date (yyyy-mm-dd)",
    )
    rate_ok = matches(raw["rate_to_usd"].combine_chunks(), r"^\d{1,6}(\.\d{1,10})?$")
    _require(fx_path, lines, raw, "rate_to_usd", rate_ok, "not a rate (digits, up to 10 decimals)")
    fx_rates = pa.table(
        {
            "rate_date": dates,
            "currency": upper(raw["currency"]),
            "rate_to_usd": pc.cast(raw["rate_to_usd"], RATE),
        }
    )
    _unique(fx_path, lines, fx_rates, ["rate_date", "currency"])
    logger.debug(
        "%s: %d stores, %d products, %d fx rates",
        directory,
        stores.num_rows,
        products.num_rows,
        fx_rates.num_rows,
    )
    return ReferenceData(_lookup(stores, products, fx_rates), stores, products, fx_rates)


def _lookup(stores: pa.Table, products: pa.Table, fx_rates: pa.Table) -> Reference:
    ordered = fx_rates.sort_by([("currency", "ascending"), ("rate_date", "ascending")])
    fx: dict[str, tuple[np.ndarray, pa.Array]] = {}
    currencies = ordered.column("currency").to_numpy(zero_copy_only=False)
    days = pc.cast(ordered.column("rate_date"), pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    rates = ordered.column("rate_to_usd").combine_chunks()
    for code in np.unique(currencies):
        rows = np.flatnonzero(currencies == code)
        fx[str(code)] = (days[rows], rates.take(pa.array(rows)))
    return Reference(
        stores=stores.column("store_code").combine_chunks(),
        store_currency=stores.column("currency").combine_chunks(),
        skus=products.column("sku").combine_chunks(),
        fx=fx,
    )
