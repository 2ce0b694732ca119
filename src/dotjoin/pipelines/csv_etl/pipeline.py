"""The CSV ETL: messy CSV → cleaned, deduplicated, quarantined, loaded and validated tables.

``run()`` wires the pieces, one file per run:

1. :class:`~dotjoin.platform.files.reader.DelimitedReader` detects the encoding and dialect (or refuses),
   maps the header and yields chunks of records with their line numbers;
2. ``clean_commits`` / ``clean_sales`` validate and normalise each chunk (pure functions);
3. :class:`~dotjoin.pipelines.csv_etl.dedup.FirstSeen` keeps the first record of each natural key;
4. :class:`~dotjoin.pipelines.csv_etl.load.FileLoad` writes rows, quarantine, duplicates and the
   load's bookkeeping in one transaction, verified before the commit;
5. the SQL checks of ``sql/`` run on the committed tables; the run report reconciles
   ``input == output + quarantined + duplicates``.

Steps 1-3 run in a background thread, one chunk ahead of the load, so parsing and cleaning overlap
with the warehouse ingesting the previous chunk.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dotjoin.config import Settings
from dotjoin.exceptions import DataError
from dotjoin.pipelines.csv_etl import cleaning_commits, cleaning_retail
from dotjoin.pipelines.csv_etl.cleaning_commits import Cleaned
from dotjoin.pipelines.csv_etl.config import (
    DATA_FILES,
    LOADS_TABLE,
    PIPELINE,
    SALES_FILE_NAME,
    TARGET_TABLES,
)
from dotjoin.pipelines.csv_etl.dedup import FirstSeen
from dotjoin.pipelines.csv_etl.load import DUPLICATES_SCHEMA, PROVENANCE, FileLoad, LoadResult, create_tables
from dotjoin.pipelines.csv_etl.reasons import DATASETS
from dotjoin.pipelines.csv_etl.references import ReferenceData, read_references
from dotjoin.pipelines.csv_etl.validations import run_checks
from dotjoin.platform.background import background, ordered_map
from dotjoin.platform.files import DelimitedReader, DialectOptions, InputFileError
from dotjoin.platform.files.reader import BLOCK_BYTES, Chunk
from dotjoin.platform.quality.quarantine import QUARANTINE_TABLE, Quarantine
from dotjoin.platform.runs import Run, RunReport, start_run
from dotjoin.platform.warehouse import open_warehouse
from dotjoin.platform.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (bytes read, file size)


class AccountingError(DataError):
    """The rows written do not account for every record read: the load was rolled back."""


@dataclass(frozen=True)
class Inputs:
    """The files of one run: the data file and, for retail, the directory of its reference files."""

    data: Path
    references: Path | None = None


def resolve_inputs(dataset: str, path: Path) -> Inputs:
    """Where the data (and reference) files are: ``--input`` is the CSV file, or for retail the
    directory holding ``sales.csv`` (reference files are always looked up next to ``sales.csv``).

    Raises:
        InputFileError: unknown dataset, or nothing at ``path``.
    """
    if dataset not in DATASETS:
        raise InputFileError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if not path.exists():
        raise InputFileError(f"{path}: no such file or directory")
    if dataset == "commits":
        if path.is_dir():
            raise InputFileError(f"{path}: is a directory; --input takes the commits CSV file")
        return Inputs(path)
    data = path / SALES_FILE_NAME if path.is_dir() else path
    if not data.is_file():
        raise InputFileError(f"{data}: no such file (retail --input is sales.csv or its directory)")
    return Inputs(data, data.parent)


@dataclass
class Prepared:
    """One chunk, ready to load: first-occurrence rows, quarantine and duplicate entries."""

    rows: pa.Table
    quarantine: pa.Table
    duplicates: pa.Table
    records: int
    reasons: Counter[str]
    repaired: int
    position: int


class _Preparer:
    """Turns reader chunks into :class:`Prepared` chunks (runs in the background thread)."""

    def __init__(
        self,
        dataset: str,
        *,
        source: str,
        run_id: str,
        now: datetime,
        ref: ReferenceData | None,
        sort: bool = False,
    ) -> None:
        self.dataset, self.source, self.run_id, self.now, self.ref = dataset, source, run_id, now, ref
        self.sort = sort
        self.seen = FirstSeen()
        self.loaded_at = datetime.now(UTC)

    def clean(self, table: pa.Table) -> Cleaned:
        """Type and validate one chunk: pure, so chunks are cleaned on two threads at once."""
        if self.dataset == "commits":
            return cleaning_commits.clean_commits(table, now=self.now)
        assert self.ref is not None
        return cleaning_retail.clean_sales(table, ref=self.ref.lookup, now=self.now)

    def __call__(self, chunk: Chunk, cleaned: Cleaned, position: int) -> Prepared:
        """Quarantine, deduplicate (in file order) and add provenance to a cleaned chunk."""
        quarantine = Quarantine(PIPELINE, self.run_id)
        reasons: Counter[str] = Counter()
        for rej in chunk.rejected:
            quarantine.reject(
                source=self.source, position=rej.line, reason=rej.reason, detail=rej.detail, raw=rej.raw
            )
            reasons[rej.reason] += 1
        for index, reason, detail in cleaned.rejected:
            line = int(chunk.line[index])
            quarantine.reject(
                source=self.source, position=line, reason=reason, detail=detail, raw=chunk.raw(index)
            )
            reasons[reason] += 1
        lines = chunk.line[cleaned.index]
        first_line = self.seen.add(cleaned.key_hashes, lines)
        keep = first_line < 0
        order = np.flatnonzero(keep)
        if self.sort and len(order) > 1:
            # Key order: the B-tree of the primary key is then filled page by page (far fewer misses).
            order = order[pc.sort_indices(cleaned.keys.take(pa.array(order))).to_numpy()]
        rows = cleaned.rows.take(pa.array(order))
        n = rows.num_rows
        rows = (
            rows.append_column("source_file", pa.repeat(pa.scalar(self.source, pa.string()), n))
            .append_column("source_line", pa.array(lines[order], pa.int64()))
            .append_column("loaded_at", pa.repeat(pa.scalar(self.loaded_at, pa.timestamp("us", tz="UTC")), n))
        )
        dup = ~keep
        duplicates = pa.table(
            {
                "dataset": pa.array([self.dataset] * int(dup.sum()), pa.string()),
                "source": pa.array([self.source] * int(dup.sum()), pa.string()),
                "line": pa.array(lines[dup], pa.int64()),
                "duplicate_of_line": pa.array(first_line[dup], pa.int64()),
                "natural_key": cleaned.keys.filter(pa.array(dup)),
                "run_id": pa.array([self.run_id] * int(dup.sum()), pa.string()),
            },
            schema=DUPLICATES_SCHEMA,
        )
        return Prepared(
            rows, quarantine.to_arrow(), duplicates, chunk.records, reasons, chunk.repaired, position
        )


def run(
    settings: Settings,
    *,
    dataset: str,
    input_path: Path,
    delimiter: str | None = None,
    encoding: str | None = None,
    report_path: Path | None = None,
    reference_time: datetime | None = None,
    progress: Progress | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> RunReport:
    """Load one CSV file of ``dataset`` into the profile's warehouse; returns the run report.

    Args:
        settings: the profile's settings (warehouse, state directory).
        dataset: ``commits`` or ``retail``.
        input_path: the CSV file (retail: ``sales.csv`` or its directory).
        delimiter: the field separator, overruling detection.
        encoding: the encoding, overruling detection.
        report_path: also write the run report there.
        reference_time: "now" for the future_timestamp rule (default: the clock).
        progress: called with (bytes read, file size) after each chunk.
        block_bytes: bytes read per chunk.

    Raises:
        InputFileError: the input cannot be read as the dataset's CSV (one line naming file and why).
        AccountingError: the written rows do not account for every record (rolled back).
    """
    inputs = resolve_inputs(dataset, input_path)
    now = reference_time or datetime.now(UTC)
    source = str(inputs.data.resolve())
    params: dict[str, Any] = {
        "dataset": dataset, "input": str(input_path), "source": source, "delimiter": delimiter,
        "encoding": encoding, "reference_time": now.isoformat(),
    }  # fmt: skip
    with start_run(PIPELINE, settings, params=params, report_path=report_path) as run:
        ref = read_references(inputs.references) if inputs.references is not None else None
        spec = DATA_FILES[dataset]  # type: ignore[index]
        with DelimitedReader(
            inputs.data,
            columns=spec.columns,
            options=DialectOptions(delimiter=delimiter),
            encoding=encoding,
            block_bytes=block_bytes,
            allow_empty=False,
        ) as reader:
            run.report.params.update(
                detected_encoding=reader.encoding.encoding,
                encoding_evidence=reader.encoding.evidence,
                detected_delimiter=reader.dialect.delimiter,
                header=list(reader.header_fields),
            )
            run.metric("encoding_confidence", reader.encoding.confidence)
            run.metric("delimiter_confidence", reader.dialect.confidence)
            with open_warehouse(settings) as wh:
                result, stats = _load(
                    wh, run, reader, dataset, source=source, now=now, ref=ref, progress=progress
                )
                committed = time.perf_counter()
                values = {"dataset": dataset, "source": source, "reference_time": now}
                if wh.dialect == "postgres":  # a second connection: the checks run two at a time
                    with open_warehouse(settings) as second:
                        checks = run_checks([wh, second], dataset, values)
                else:
                    checks = run_checks([wh], dataset, values)
                run.metric("checks_s", round(time.perf_counter() - committed, 3))
        _report(run, dataset, reader, result, stats)
        for check in checks:
            run.check(check.name, passed=check.passed, observed=check.observed, expected=check.expected,
                      detail=None if check.passed else check.description,
                      dataset=TARGET_TABLES[dataset])  # type: ignore[index]  # fmt: skip
    return run.report


@dataclass
class _Stats:
    records: int = 0
    quarantined: int = 0
    duplicates: int = 0
    repaired: int = 0
    reasons: Counter[str] | None = None


def _load(
    wh: Warehouse,
    run: Run,
    reader: DelimitedReader,
    dataset: str,
    *,
    source: str,
    now: datetime,
    ref: ReferenceData | None,
    progress: Progress | None,
) -> tuple[LoadResult, _Stats]:
    """Everything the file writes, in one transaction, verified before the commit."""
    target = TARGET_TABLES[dataset]  # type: ignore[index]
    schema = cleaning_commits.SCHEMA if dataset == "commits" else cleaning_retail.SCHEMA
    create_tables(
        wh,
        (target, "csv_etl_duplicates", "csv_etl_loads", *(("stores", "products", "fx_rates") if ref else ())),
    )
    spec = DATA_FILES[dataset]  # type: ignore[index]
    size = reader.path.stat().st_size
    stats = _Stats(reasons=Counter())
    assert stats.reasons is not None
    with wh.transaction():
        if ref is not None:
            wh.upsert("stores", ref.stores, key=["store_code"])
            wh.upsert("products", ref.products, key=["sku"])
            wh.upsert("fx_rates", ref.fx_rates, key=["rate_date", "currency"])
        load = FileLoad(wh, target, spec.key, (*schema.names, *PROVENANCE), dataset, source, PIPELINE)
        mode = load.begin()
        prepare = _Preparer(
            dataset, source=source, run_id=run.run_id, now=now, ref=ref, sort=mode == "direct"
        )

        def chunks() -> Iterator[tuple[Chunk, int]]:
            for chunk in reader:
                yield chunk, reader.position

        def prepared() -> Iterator[Prepared]:
            typed = ordered_map(
                lambda item: prepare.clean(item[0].table),
                chunks(),
                name="csv-etl-clean",
            )
            for (chunk, position), cleaned in typed:
                yield prepare(chunk, cleaned, position)

        started = time.perf_counter()
        for item in background(prepared(), name="csv-etl-prepare", depth=1):
            load.rows(item.rows)
            load.quarantine(item.quarantine)
            load.duplicates(item.duplicates)
            stats.records += item.records
            stats.quarantined += item.quarantine.num_rows
            stats.duplicates += item.duplicates.num_rows
            stats.repaired += item.repaired
            stats.reasons.update(item.reasons)
            logger.debug(
                "%s: wrote %d rows up to byte %d (uncommitted)", source, item.rows.num_rows, item.position
            )
            if progress is not None:
                progress(item.position, size)
        streamed = time.perf_counter()
        result = load.finish()
        logger.debug(
            "%s: streamed in %.2fs, merged in %.2fs",
            source,
            streamed - started,
            time.perf_counter() - streamed,
        )
        stored_q = int(
            wh.scalar(
                f"SELECT count(*) FROM {QUARANTINE_TABLE} WHERE pipeline = $1 AND source = $2",
                [PIPELINE, source],
            )
        )
        stored_d = int(
            wh.scalar(
                "SELECT count(*) FROM csv_etl_duplicates WHERE dataset = $1 AND source = $2",
                [dataset, source],
            )
        )
        accounted = result.verified + stored_q + stored_d
        if accounted != stats.records or result.verified != result.output:
            raise AccountingError(
                f"{source}: {stats.records} records read but {result.verified} rows verified in {target} "
                f"(of {result.output} loaded) + {stored_q} quarantined + {stored_d} duplicates = "
                f"{accounted}; "
                "nothing was committed"
            )
        wh.upsert(LOADS_TABLE, pa.Table.from_pylist([{
            "dataset": dataset, "source": source, "run_id": run.run_id, "size_bytes": size,
            "records": stats.records, "output_rows": result.output, "quarantined": stats.quarantined,
            "duplicates": stats.duplicates, "inserted": result.inserted, "updated": result.updated,
            "attributed_elsewhere": result.attributed_elsewhere, "loaded_at": datetime.now(UTC),
        }]), key=["dataset", "source"])  # fmt: skip
    return result, stats


def _report(run: Run, dataset: str, reader: DelimitedReader, result: LoadResult, stats: _Stats) -> None:
    target = TARGET_TABLES[dataset]  # type: ignore[index]
    run.count(
        input=stats.records, output=result.output, quarantined=stats.quarantined, duplicates=stats.duplicates
    )
    run.input(f"file:{reader.path.resolve()}")
    run.output(target, rows=result.output, dataset=f"table:{target}")
    run.metric("rows_inserted", result.inserted)
    run.metric("rows_updated", result.updated)
    run.metric("rows_unchanged", result.unchanged)
    run.metric("rows_written", result.inserted + result.updated)
    run.metric("quarantine_written", result.quarantine_written)
    run.metric("duplicates_written", result.duplicates_written)
    run.metric("lines", reader.lines)
    run.metric("empty_lines", reader.empty_lines)
    run.metric("encoding_repaired", stats.repaired)
    run.metric("direct_load", 1.0 if result.mode == "direct" else 0.0)
    for reason, n in sorted((stats.reasons or {}).items()):
        run.metric(f"quarantined.{reason}", n)
    elapsed = max(run.elapsed_s, 1e-9)
    run.metric("records_per_s", round(stats.records / elapsed, 1))
    run.check_accounting()


__all__ = ["AccountingError", "Inputs", "resolve_inputs", "run"]
