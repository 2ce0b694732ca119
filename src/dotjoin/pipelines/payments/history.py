"""Recorded payments from files: a recorded stream (message values, one per line) or a labelled history.

* **A recorded stream** (``events.jsonl``, what ``payments simulate --out`` writes and what a Kafka
  topic dump looks like): each line is one message value, parsed exactly as the live consumer parses
  it; a line that breaks the contract goes to the dead-letter list with its line number and field.
* **A labelled history** for training: payments in the event contract as JSON lines, CSV or Parquet
  (read through the platform's readers: dialect and encoding detected, bad rows quarantined with their
  line), with the label in an ``is_fraud`` column (1/0, true/false) or in a separate labels file
  (``labels.jsonl``: the event ids of the fraudulent payments; every other payment is legitimate).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dotjoin.exceptions import DataError
from dotjoin.pipelines.payments.contract import (
    PAYMENT_FIELDS,
    ContractError,
    Merchant,
    Payment,
    parse_label,
    parse_payment,
)
from dotjoin.pipelines.payments.features import MerchantInfo
from dotjoin.platform.files import DelimitedReader
from dotjoin.platform.files.jsonl import JsonLinesReader

_TRUE = {"1", "true", "t", "yes", "y", "fraud"}
_FALSE = {"0", "false", "f", "no", "n", "legit", ""}


@dataclass
class Rejected:
    line: int
    error: str
    raw: str


@dataclass
class History:
    """Payments in file order, their labels (None: unlabelled) and what could not be read."""

    payments: list[Payment] = field(default_factory=list)
    fraud: list[bool] | None = None
    typologies: dict[str, str] = field(default_factory=dict)  # event id -> typology, when known
    rejected: list[Rejected] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def labels(self) -> np.ndarray:
        if self.fraud is None:
            raise DataError("the history has no labels: add an is_fraud column or pass --labels FILE")
        return np.asarray(self.fraud, dtype=bool)


def _open_text(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def recorded_values(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, message value) of a recorded stream; empty lines are skipped."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    for number, line in enumerate(_open_text(path), start=1):
        value = line.rstrip(b"\r\n")
        if value.strip():
            yield number, value


def read_recorded(path: Path) -> History:
    """A recorded stream: every line parsed as the live consumer would."""
    history = History()
    for number, value in recorded_values(path):
        try:
            history.payments.append(parse_payment(value))
            history.lines.append(number)
        except ContractError as exc:
            history.rejected.append(Rejected(number, str(exc), value.decode("utf-8", "replace")[:500]))
    return history


def read_labels(path: Path) -> dict[str, str]:
    """``event_id -> typology`` from a labels file (``payment_label.v1`` per line)."""
    labels: dict[str, str] = {}
    for number, value in recorded_values(path):
        try:
            label = parse_label(value)
        except ContractError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
        labels[label.event_id] = label.typology
    return labels


def _fraud_flag(value: Any, where: str) -> bool:
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{where}: is_fraud {value!r} is not 1/0 or true/false")


def _coerce(record: dict[str, Any]) -> dict[str, Any]:
    """Text cells of a CSV/JSON-lines row as the contract's JSON types."""
    out = {k: record.get(k) for k in PAYMENT_FIELDS}
    for name in ("amount", "latitude", "longitude"):
        value = out.get(name)
        if isinstance(value, str):
            try:
                number = float(value)
                out[name] = number if math.isfinite(number) else value
            except ValueError:
                pass  # left as text: the contract check names the field
    if isinstance(out.get("schema_version"), str) and str(out["schema_version"]).isdigit():
        out["schema_version"] = int(str(out["schema_version"]))
    if out.get("device_id") == "":
        out["device_id"] = None
    return out


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]] | Rejected]:
    name = path.name.lower().removesuffix(".gz").removesuffix(".zst")
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield number, row
        return
    reader = JsonLinesReader(path) if name.endswith((".jsonl", ".ndjson", ".json")) else DelimitedReader(path)
    with reader:
        for chunk in reader:
            for rej in chunk.rejected:
                yield Rejected(rej.line, f"{rej.reason}: {rej.detail}", rej.raw)
            for line, row in zip(chunk.line.tolist(), chunk.table.to_pylist(), strict=True):
                yield int(line), row


def read_history(path: Path, labels_path: Path | None = None) -> History:
    """A labelled (or unlabelled) history in the event contract; see the module docstring."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    typologies = read_labels(labels_path) if labels_path is not None else {}
    history = History(typologies=typologies)
    flags: list[bool] = []
    has_flag: bool | None = None
    for item in _records(path):
        if isinstance(item, Rejected):
            history.rejected.append(item)
            continue
        number, record = item
        try:
            payment = parse_payment(json.dumps(_coerce(record), default=str))
        except ContractError as exc:
            history.rejected.append(Rejected(number, str(exc), json.dumps(record, default=str)[:500]))
            continue
        if has_flag is None:
            has_flag = "is_fraud" in record
        if has_flag:
            flags.append(_fraud_flag(record.get("is_fraud"), f"{path}:{number}"))
        history.payments.append(payment)
        history.lines.append(number)
    if labels_path is not None:
        history.fraud = [p.event_id in typologies for p in history.payments]
    elif has_flag:
        history.fraud = flags
    return history


def _reference_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, row) of a reference table; a bad row is one :class:`DataError` naming its line (a
    reference table is configuration: it loads whole or not at all)."""
    with DelimitedReader(path) as reader:
        for chunk in reader:
            if chunk.rejected:
                rej = chunk.rejected[0]
                raise DataError(f"{path}:{rej.line}: {rej.reason}: {rej.detail}")
            yield from zip(chunk.line.tolist(), chunk.table.to_pylist(), strict=True)


def read_merchants(path: Path) -> dict[str, MerchantInfo]:
    """The merchants reference table: CSV with the columns of ``contract.MERCHANT_COLUMNS``."""
    merchants: dict[str, MerchantInfo] = {}
    for line, row in _reference_rows(path):
        try:
            merchant = Merchant.from_row(row)
        except ContractError as exc:
            raise DataError(f"{path}:{line}: {exc}") from None
        merchants[merchant.merchant_id] = MerchantInfo(merchant.category, merchant.risk)
    return merchants


def read_usd_rates(path: Path) -> dict[str, float]:
    """Exchange rates (CSV ``currency,units_per_usd``): amount features are compared in US dollars."""
    rates: dict[str, float] = {}
    for line, row in _reference_rows(path):
        try:
            rate = float(row["units_per_usd"])
        except (KeyError, ValueError):
            raise DataError(f"{path}:{line}: units_per_usd is not a number") from None
        if not rate > 0 or not math.isfinite(rate):
            raise DataError(f"{path}:{line}: units_per_usd {rate} must be a positive number")
        rates[str(row.get("currency", "")).strip().upper()] = rate
    return rates


@dataclass
class Reference:
    """The reference data the stream is joined with: merchants and exchange rates."""

    merchants: dict[str, MerchantInfo] = field(default_factory=dict)
    usd_rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def read(cls, merchants: Path | None, usd_rates: Path | None = None) -> Reference:
        return cls(
            read_merchants(merchants) if merchants is not None else {},
            read_usd_rates(usd_rates) if usd_rates is not None else {},
        )
