"""Step ``load_prices``: the date's raw files -> ``stock_prices_daily``, replacing that date's partition.

In ONE transaction: delete the date's rows, insert the parsed ones (bulk, from Arrow), replace the date's
quarantine records. A crash before the commit leaves the previous partition; a rerun of the same files
writes the same bytes: ``loaded_at`` is when a row *version* (its ``content_hash``) was first loaded, so
an unchanged bar keeps its stamp and the partition checksum is identical. Counts are reported in a run
report (``stocks_load``) whose ``row_accounting`` check proves records = rows + repeats + quarantined.
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from dotjoin.exceptions import DataError
from dotjoin.orchestration.steps import StepContext, StepFailed
from dotjoin.pipelines.stocks.parse import FileParse, PriceRow, parse_file
from dotjoin.platform.quality.quarantine import QUARANTINE_TABLE, Quarantine
from dotjoin.platform.runs import start_run
from dotjoin.platform.warehouse import Warehouse, open_warehouse

logger = logging.getLogger(__name__)

PIPELINE = "stocks_load"
TABLE = "stock_prices_daily"
KEY = ("symbol", "trade_date")
SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("trade_date", pa.date32(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("content_hash", pa.string()),
        pa.field("loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)
# Constant, known-safe identifiers: quoted here because pipelines never import the driver's composer.
_COLUMNS = ", ".join(f'"{n}"' for n in SCHEMA.names)
_T = f'"{TABLE}"'


def content_hash(row: PriceRow) -> str:
    """A digest of the bar's values (``repr`` of a float is exact and stable).

    >>> r = PriceRow("a.us", date(2024, 1, 2), 1.0, 2.0, 0.5, 1.5, 10)
    >>> content_hash(r) == content_hash(r), len(content_hash(r))
    (True, 32)
    """
    values = (row.symbol, row.trade_date.isoformat(), row.open, row.high, row.low, row.close, row.volume)
    return hashlib.blake2b("\x1f".join(map(repr, values)).encode(), digest_size=16).hexdigest()


def ensure_table(wh: Warehouse) -> None:
    """Create ``stock_prices_daily`` with its primary key (an empty upsert creates it) if missing."""
    if not wh.table_exists(TABLE):
        wh.upsert(TABLE, SCHEMA.empty_table(), key=list(KEY))


def to_arrow(rows: list[PriceRow], loaded: dict[tuple[str, str], datetime], now: datetime) -> pa.Table:
    """Rows with their hash; ``loaded_at`` kept from ``loaded`` ((symbol, hash) -> stamp) when unchanged."""
    records = []
    for r in sorted(rows, key=lambda r: r.symbol):
        digest = content_hash(r)
        records.append(
            {
                "symbol": r.symbol,
                "trade_date": r.trade_date,
                "open": r.open,
                "high": r.high,
                "low": r.low,
                "close": r.close,
                "volume": r.volume,
                "content_hash": digest,
                "loaded_at": loaded.get((r.symbol, digest), now),
            }
        )
    return pa.Table.from_pylist(records, schema=SCHEMA)


def partition_checksum(wh: Warehouse, day: date) -> str:
    """SHA-256 of the date's rows, every column, in symbol order (identical across identical reruns)."""
    table = wh.query(f"SELECT {_COLUMNS} FROM {_T} WHERE trade_date = $1 ORDER BY symbol", [day])
    table = table.cast(SCHEMA) if table.num_rows else SCHEMA.empty_table()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def parse_dir(folder: Path, day: date) -> list[tuple[str, FileParse]]:
    """Every ``<symbol>.csv`` of the folder, parsed; (name relative to the raw zone, result)."""
    if not folder.is_dir():
        raise DataError(f"raw folder {folder} does not exist; run fetch_prices for {day} first")
    out = []
    for path in sorted(folder.glob("*.csv")):
        name = f"{folder.parent.name}/{folder.name}/{path.name}"  # stocks/trade_date=D/x.csv
        symbol = path.name[: -len(".csv")]
        out.append((name, parse_file(path.read_bytes(), symbol=symbol, trade_date=day, name=name)))
    return out


def _replace_partition(
    wh: Warehouse, day: date, rows: list[PriceRow], quarantine: Quarantine, prefix: str
) -> None:
    """Delete + insert the date's rows and replace its quarantine records, in one transaction."""
    with wh.transaction():
        prior = wh.query(f"SELECT symbol, content_hash, loaded_at FROM {_T} WHERE trade_date = $1", [day])
        loaded = {(r["symbol"], r["content_hash"]): r["loaded_at"] for r in prior.to_pylist()}
        wh.execute(f"DELETE FROM {_T} WHERE trade_date = $1", [day])
        if rows:
            wh.load_arrow(TABLE, to_arrow(rows, loaded, datetime.now(UTC)))
        if wh.table_exists(QUARANTINE_TABLE):  # the date's earlier rejects go with its earlier rows
            wh.execute(
                f'DELETE FROM "{QUARANTINE_TABLE}" WHERE pipeline = $1 AND starts_with(source, $2)',
                [quarantine.pipeline, prefix],
            )
        quarantine.flush(wh)


def load_prices(ctx: StepContext) -> dict[str, Any]:
    """Load the files ``fetch_prices`` landed (its ``raw_dir``) into the date's partition.

    Raises:
        DataError: no ``raw_dir`` upstream, or a file that is not a Stooq CSV at all.
        StepFailed: the counts do not reconcile (records != rows + repeats + quarantined).
    """
    day = ctx.logical_date
    raw = ctx.get("fetch_prices", "raw_dir")
    if not raw:
        raise DataError(
            f"load_prices for {day}: fetch_prices passed no raw_dir (metadata {dict(ctx.upstream)})"
        )
    folder = Path(raw)
    params = {"trade_date": day.isoformat(), "raw_dir": str(folder), "flow_run_id": ctx.run_id}
    with start_run(PIPELINE, ctx.settings, params=params) as run, open_warehouse(ctx.settings) as wh:
        parsed = parse_dir(folder, day)
        quarantine = Quarantine("stocks", run.run_id)
        for name, result in parsed:
            for rej in result.rejects:
                detail = f"{name} line {rej.line}: {rej.detail}"
                quarantine.reject(
                    source=name, position=rej.line, reason=rej.reason, detail=detail, raw=rej.raw
                )
        rows = [row for _, result in parsed for row in result.rows]
        ensure_table(wh)
        _replace_partition(wh, day, rows, quarantine, prefix=f"{folder.parent.name}/{folder.name}/")
        stored = int(wh.scalar(f"SELECT count(*) FROM {_T} WHERE trade_date = $1", [day]) or 0)
        run.count(
            input=sum(r.records for _, r in parsed),
            output=stored,
            duplicates=sum(r.duplicates for _, r in parsed),
            quarantined=len(quarantine),
        )
        run.output(TABLE, rows=stored, location=f"{TABLE} trade_date={day}")
        for reason, n in sorted(quarantine.by_reason().items()):
            run.metric(f"quarantined_{reason}", n)
        accounting = run.check_accounting()
        checksum = partition_checksum(wh, day)
    if not accounting.passed:
        raise StepFailed(f"stocks load {day}: row accounting failed: {accounting.detail}")
    return {
        "table": TABLE,
        "trade_date": day.isoformat(),
        "rows": stored,
        "quarantined": len(quarantine),
        "duplicates": run.report.counts.get("duplicates", 0),
        "files": len(parsed),
        "checksum": checksum,
        "run_id": run.run_id,
    }
