"""Running the applier: from a recorded event file (``cdc replay``) or from Kafka (``cdc apply``).

Both end in a run report whose accounting reconciles every event: applied, a duplicate (re-delivered or
re-sent, dropped by the applier's committed progress) or not a row change (tombstone, transaction marker,
heartbeat, truncate, logical message). A change log is ordered, so an event that cannot be decoded stops
the run with its place (``file:line`` or ``topic:partition:offset``): skipping it would make every later
state of its key wrong. Whatever was committed before stays; re-running resumes after it.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from dotjoin.config import Settings
from dotjoin.exceptions import DataError, NotFoundError
from dotjoin.pipelines.cdc.applier import Applier, ApplyReport, Origin, log_table
from dotjoin.pipelines.cdc.events import (
    Change,
    Skipped,
    decode_envelope,
    decode_record,
    keys_for,
    read_kcat_line,
)
from dotjoin.platform.lake import open_lake
from dotjoin.platform.runs.report import Run, start_run

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
Event = tuple[Change | Skipped, Origin | None]


def read_events(
    path: Path, *, key_columns: Mapping[str, Sequence[str]] | None = None
) -> Iterator[tuple[Change | Skipped, Origin]]:
    """The events of a recorded file: JSON Lines (``kcat -J`` records, ``{"key", "value"}`` records or bare
    envelopes), or one JSON document holding an envelope or a list of them (Debezium's documentation).

    Raises:
        NotFoundError: no such file.
        DataError: ``<file>:<line>: <what is wrong>``.
    """
    if not path.is_file():
        raise NotFoundError(f"no event file {path}")
    stream = str(path.resolve())
    with open_text(path) as handle:
        first = handle.readline()
        if first.strip() == "{" or first.lstrip().startswith("["):  # one pretty-printed document
            try:
                document = msgspec.json.decode(first + handle.read())
            except msgspec.DecodeError as exc:
                raise DataError(f"{path}: not JSON: {exc}") from None
            items = document if isinstance(document, list) else [document]
            for index, item in enumerate(items, 1):
                try:
                    event = _document_event(item, key_columns or {})
                except DataError as exc:
                    raise DataError(f"{path}: event {index}: {exc}") from None
                yield event, Origin(stream, index)
            return
        for lineno, line in enumerate(itertools.chain([first], handle), 1):
            if line.strip():
                yield _line_event(path, lineno, line, key_columns), Origin(stream, lineno)


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text file, gunzipped on the fly when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _document_event(item: Any, key_columns: Mapping[str, Sequence[str]]) -> Change | Skipped:
    if isinstance(item, dict) and ("status" in item and "op" not in item):
        return Skipped("transaction")
    return decode_envelope(item, None, key_columns=keys_for(item, key_columns))


def _line_event(
    path: Path, lineno: int, line: str, key_columns: Mapping[str, Sequence[str]] | None
) -> Change | Skipped:
    try:
        return read_kcat_line(line, key_columns=key_columns)
    except DataError as exc:
        raise DataError(f"{path}:{lineno}: {exc}") from None


def apply_events(
    applier: Applier, events: Iterator[Event], *, batch_rows: int, progress: Progress | None = None
) -> ApplyReport:
    """Apply ``events`` in batches of ``batch_rows``; the summed report."""
    total = ApplyReport()
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= batch_rows:
            total.add(applier.apply(batch))
            batch = []
            if progress:
                progress(total.events, 0, f"{total.applied:,} changes applied")
    if batch:
        total.add(applier.apply(batch))
    return total


def replay(
    settings: Settings,
    path: Path,
    *,
    key_columns: Mapping[str, Sequence[str]] | None = None,
    batch_rows: int = 10_000,
    journal: Path | None = None,
    progress: Progress | None = None,
) -> Any:
    """``dotjoin cdc replay``: apply a recorded Debezium event file to the lake; the run report. With the
    recording's ``journal``, the reconciliation against it is a check per table of the report."""
    params = {"file": str(path), "batch_rows": batch_rows}
    with start_run("cdc_replay", settings, params=params) as run, open_lake(settings) as lake:
        events = read_events(path, key_columns=key_columns)
        report = apply_events(Applier(lake), events, batch_rows=batch_rows, progress=progress)
        _record(run, report)
        if journal is not None:
            from dotjoin.pipelines.cdc.verify import load_journal, verify_journal

            entries = load_journal(journal)
            for table in sorted(report.tables):
                mine = [e for e in entries if e["table"] == table]
                _verdict_check(run, verify_journal(lake, table, mine))
    return run.report


def follow(
    settings: Settings,
    *,
    topics: Sequence[str],
    group: str,
    batch_rows: int = 20_000,
    batch_seconds: float = 1.0,
    idle_exit: float | None = None,
    max_seconds: float | None = None,
    on_batch: Callable[[ApplyReport], bool | None] | None = None,
    verify_source: bool = False,
) -> Any:
    """``dotjoin cdc apply``: consume Debezium's topics into the lake, committing Kafka offsets after each
    Iceberg commit; stops after ``idle_exit`` quiet seconds or ``max_seconds`` (None: run until stopped).
    ``on_batch`` sees each batch's report (a true return stops). With ``verify_source``, the tables it
    changed are then reconciled with the source (checks of the run)."""
    from dotjoin.platform.bus import open_bus

    params = {
        "topics": list(topics),
        "group": group,
        "batch_rows": batch_rows,
        "batch_seconds": batch_seconds,
    }
    with (
        start_run("cdc_apply", settings, params=params) as run,
        open_lake(settings) as lake,
        open_bus(settings).consumer(group, topics) as consumer,
    ):
        total = ApplyReport()
        try:
            _consume(
                Applier(lake), consumer, total, batch_rows, batch_seconds, idle_exit, max_seconds, on_batch
            )
        except KeyboardInterrupt:
            logger.info("cdc apply: interrupted; everything committed so far stays")
        finally:
            _record(run, total)
        if verify_source:
            from dotjoin.pipelines.cdc.verify import verify_table

            for table in sorted(total.tables):
                _verdict_check(run, verify_table(settings, lake, table))
    return run.report


def _consume(
    applier: Applier,
    consumer: Any,
    total: ApplyReport,
    batch_rows: int,
    batch_seconds: float,
    idle_exit: float | None,
    max_seconds: float | None,
    on_batch: Callable[[ApplyReport], bool | None] | None,
) -> None:
    started = last_event = time.monotonic()
    while True:
        now = time.monotonic()
        if max_seconds is not None and now - started >= max_seconds:
            return
        if idle_exit is not None and now - last_event >= idle_exit:
            return
        messages = _gather(consumer, batch_rows, batch_seconds)
        if not messages:
            continue
        last_event = time.monotonic()
        batch = [(_decode(m), Origin(f"{m.topic}:{m.partition}", m.offset)) for m in messages]
        report = applier.apply(batch)
        consumer.commit(
            messages
        )  # after the Iceberg commit: a crash in between re-delivers, the applier drops
        total.add(report)
        if on_batch is not None and on_batch(report):
            return


def _gather(consumer: Any, batch_rows: int, batch_seconds: float) -> list[Any]:
    """Messages until ``batch_rows`` or ``batch_seconds`` after the first one (a commit per batch)."""
    messages = consumer.consume(batch_rows, timeout=batch_seconds)
    if not messages:
        return []
    deadline = time.monotonic() + batch_seconds
    while len(messages) < batch_rows and (left := deadline - time.monotonic()) > 0:
        more = consumer.consume(batch_rows - len(messages), timeout=min(left, 0.2))
        if not more:
            break
        messages.extend(more)
    return messages


def _decode(message: Any) -> Change | Skipped:
    try:
        return decode_record(message.key, message.value)
    except DataError as exc:
        raise DataError(f"{message.topic}:{message.partition}:{message.offset}: {exc}") from None


def _verdict_check(run: Run, verdict: Any) -> None:
    """A reconciliation verdict as a check of the run: zero mismatches, else what they are."""
    found = verdict.as_dict()
    detail = (f"{found['source_rows']} source rows, {found['lake_rows']} in the lake; "
              f"missing {found['missing']}, extra {found['extra']}, different {found['different']}; "
              f"history: {found['history_checked']} changes checked, "
              f"{len(verdict.history_mismatches)} mismatched")  # fmt: skip
    run.check(f"cdc verify {verdict.table}", passed=verdict.mismatches == 0, observed=verdict.mismatches,
              expected=0, detail=detail)  # fmt: skip


def _record(run: Run, report: ApplyReport) -> None:
    skipped = sum(report.skipped.values())
    run.count(
        input=report.events, output=report.applied, duplicates=report.duplicates, not_row_changes=skipped
    )
    run.check(
        "events accounted", passed=report.events == report.applied + report.duplicates + skipped,
        observed=report.applied + report.duplicates + skipped, expected=report.events,
        detail=f"applied {report.applied}, duplicates {report.duplicates}, not row changes {skipped}",
    )  # fmt: skip
    run.check(
        "TOAST values resolved", passed=report.unresolved_toast == 0, observed=report.unresolved_toast,
        expected=0, detail="unchanged TOASTed values with no earlier value in the log are written as null",
    )  # fmt: skip
    for table, rows in sorted(report.tables.items()):
        run.output(table, rows=rows, location=f"lake:{log_table(table)}", dataset=f"lake:{log_table(table)}")
    for topic in run.report.params.get("topics", []):
        run.input(f"topic:{topic}")
    run.metric("commits", report.commits)
    run.metric("snapshot_deletes", report.snapshot_deletes)
    if report.schema_changes:
        run.report.params["schema_changes"] = report.schema_changes
