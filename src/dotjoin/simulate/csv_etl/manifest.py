"""The ground-truth manifest the generator writes next to its CSV files.

It says, for every data record of every file, what a correct pipeline must do with it: load it, count it
as a duplicate of an earlier record, or quarantine it with a reason. Tests compare the pipeline's loaded
table and quarantine with it row for row.

Layout on disk (still one JSON document, so :meth:`Manifest.read` works): line 1 holds every field but
``records`` and ends with ``"records":[``; then one record per line; then ``]}``. So
:meth:`Manifest.read_head` reads a manifest of millions of records in microseconds and
:func:`iter_records` streams them with bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from dotjoin.pipelines.csv_etl.reasons import Dataset, Reason

MANIFEST_NAME = "manifest.json"
_RECORDS_OPEN = '"records":['


class RecordTruth(BaseModel):
    """One data record of a file. ``line`` is the 1-based physical line where the record starts
    (the header is line 1; a record with embedded newlines spans several lines; empty lines count)."""

    file: str  # file name relative to the manifest's directory
    line: int
    fate: Literal["load", "duplicate", "quarantine"]
    key: str | None = None  # natural key "repo/sha" or "invoice_id/line_no" (load and duplicate)
    duplicate_of_line: int | None = None  # the line whose record this one repeats
    reason: Reason | None = None  # for quarantine
    # Overlap exports: the --overlap-from export already loaded this key with the same content, so loading
    # this export after that one writes nothing for this record.
    already_loaded: bool = False
    imputed: list[str] = Field(default_factory=list)  # fields the pipeline imputes: customer_id, currency
    dirt: list[str] = Field(default_factory=list)  # what the generator did to the record (FORMATS.md)


class Expected(BaseModel):
    input: int  # data records (not header, not empty lines)
    output: int
    quarantined: int
    duplicates: int
    quarantined_by_reason: dict[str, int] = Field(default_factory=dict)
    # Clean totals the loaded table must reproduce, e.g. commits: {"additions": .., "deletions": ..,
    # "merge_commits": .., "commits": ..}; retail: {"revenue_usd": .. (rounded to cents), "quantity": ..,
    # "lines": ..}
    totals: dict[str, float] = Field(default_factory=dict)
    # Overlap exports: loaded records whose key the earlier export already loaded (same content), and the
    # totals of the other, new ones: after loading both exports the table holds earlier.totals + new_totals.
    already_loaded: int = 0
    new_totals: dict[str, float] = Field(default_factory=dict)


class StreamInfo(BaseModel):
    """Which slice of the generator's deterministic clean-record stream the loaded records are."""

    seed: int
    dirty_rate: float
    start: int
    end: int  # loaded records are stream records [start, end), in file order


class OverlapInfo(BaseModel):
    """The earlier export an overlap export repeats a share of."""

    seed: int
    rows: int
    share: float
    repeated: int  # loaded records of this export that the earlier export loaded too


class Manifest(BaseModel):
    dataset: Dataset
    seed: int
    rows: int
    dirty_rate: float
    reference_time: str  # ISO timestamp: "now" for the future_timestamp rule, so results are reproducible
    files: list[str]  # data files; retail also lists its reference files under ``reference_files``
    reference_files: list[str] = Field(default_factory=list)
    record_truth: bool = True  # False (--no-record-truth): ``records`` is empty, only counts are given
    stream: StreamInfo | None = None
    overlap_from: OverlapInfo | None = None
    file_dirt: dict[str, list[str]] = Field(default_factory=dict)  # per file: bom, crlf, header_variant
    dirt: dict[str, int] = Field(default_factory=dict)  # records (or lines) per dirt kind
    expected: Expected
    records: list[RecordTruth] = Field(default_factory=list)

    def write(self, directory: Path) -> Path:
        """Write the manifest in the line layout of this module (see the module docstring)."""
        return write_manifest(
            directory, self, (r.model_dump_json(exclude_defaults=True) for r in self.records)
        )

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read the whole manifest, records included."""
        return cls.model_validate_json((directory / MANIFEST_NAME).read_text(encoding="utf-8"))

    @classmethod
    def read_head(cls, directory: Path) -> Manifest:
        """Read everything but ``records`` (cheap for any size); ``records`` is left empty."""
        path = directory / MANIFEST_NAME
        with path.open(encoding="utf-8") as fh:
            first = fh.readline().rstrip("\n")
        if first.endswith(_RECORDS_OPEN):
            return cls.model_validate_json(first + "]}")
        head = cls.read(directory)
        head.records = []
        return head


def write_manifest(directory: Path, head: Manifest, record_lines: Iterable[str]) -> Path:
    """Write ``head`` (its ``records`` ignored) and the given JSON record lines, atomically.

    Args:
        directory: Where ``manifest.json`` goes.
        head: Everything but the records.
        record_lines: One JSON object per record (a :class:`RecordTruth`), without newlines.
    """
    path = directory / MANIFEST_NAME
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(head_line(head))
        sep = ""
        for line in record_lines:
            fh.write(sep)
            fh.write(line)
            sep = ",\n"
        fh.write("\n]}\n")
    tmp.replace(path)
    return path


def head_line(head: Manifest) -> str:
    """Line 1 of the layout: ``head`` without records, ending in ``"records":[`` and a newline."""
    text = head.model_dump_json(exclude={"records"})
    return text[:-1] + "," + _RECORDS_OPEN + "\n"


def iter_records(directory: Path) -> Iterator[RecordTruth]:
    """Stream a manifest's records one by one (bounded memory, for manifests of millions of records)."""
    path = directory / MANIFEST_NAME
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n")
        if not first.endswith(_RECORDS_OPEN):  # not the line layout: fall back to a full read
            yield from Manifest.read(directory).records
            return
        for raw in fh:
            line = raw.strip().rstrip(",")
            if line == "]}":
                return
            if line:
                yield RecordTruth.model_validate_json(line)
