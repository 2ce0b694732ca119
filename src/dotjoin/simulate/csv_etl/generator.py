"""The realistic messy-data generator behind ``dotjoin sample commits|retail``.

It writes the CSV file(s) and ``manifest.json`` (:class:`~dotjoin.simulate.csv_etl.manifest.Manifest`):
for every data record its fate (load with its key, duplicate of a line, or quarantine with a reason),
the expected counts (``input == output + quarantined + duplicates``) and the clean totals. Output is
deterministic: the same arguments give the same bytes.

How a file is made:

* A **clean stream** of records, a pure function of ``(stream seed, index)`` computed in seeded chunks,
  provides every record that loads, with its *valid* dirt (timestamp formats, locale money, cp1252 bytes,
  quoting, padding, imputable blanks) at the stream's dirty rate. An ``--overlap-from`` export continues
  the earlier export's stream: it starts a share before where that one ended, so the repeated records
  are the same keys with the same content, and the rest are new.
* Between those, a second RNG seeded by ``--seed`` injects quarantined records (one defect each, or two
  where the reason precedence is under test), duplicates of recently loaded records (exact, near,
  merges once per branch), empty lines, and decides the file-level dirt (BOM, CRLF, header variants).

Memory is bounded whatever ``rows`` is: records are written in chunks and the per-record truth goes to
a temporary file that is streamed into the manifest at the end (``record_truth=False`` skips it).
The rules a pipeline must apply are in ``src/dotjoin/pipelines/csv_etl/FORMATS.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from random import Random
from typing import Any, Protocol

from dotjoin.exceptions import DataError
from dotjoin.pipelines.csv_etl.reasons import DATASETS, REASON_PRECEDENCE, primary_reason
from dotjoin.simulate.csv_etl.dirt import CHUNK, REFERENCE_TIME, Rec, header_variant, pick, weighted
from dotjoin.simulate.csv_etl.gen_commits import CommitsGenerator
from dotjoin.simulate.csv_etl.gen_retail import RetailGenerator
from dotjoin.simulate.csv_etl.manifest import (
    MANIFEST_NAME,
    Expected,
    Manifest,
    OverlapInfo,
    StreamInfo,
    write_manifest,
)

logger = logging.getLogger(__name__)

# Shares of --dirty-rate: a dirty rate R makes about R*DEFECT_SHARE of the records quarantined,
# R*DUP_SHARE duplicates, and gives R*VALID_SHARE of the clean-stream records valid dirt.
DEFECT_SHARE = 0.4
DUP_SHARE = 0.2
VALID_SHARE = 0.4
EMPTY_LINE_SHARE = 0.01  # chance per record, times R, of empty lines after it
FILE_DIRT_FACTOR = 10.0  # each file-level dirt kind applies with probability min(1, R * FACTOR)
POOL = 512  # recent records duplicates and repeats are drawn from
FLUSH_EVERY = 8192
BOM = b"\xef\xbb\xbf"
_META_DEFECTS = ("precedence", "bad_repeat", "defect_on_loaded_key")


class DatasetGenerator(Protocol):
    """What :func:`generate` needs from a dataset (``gen_commits``, ``gen_retail``)."""

    dataset: str
    data_file: str
    header: tuple[str, ...]
    totals_names: tuple[str, ...]
    defects: tuple[tuple[str, float], ...]
    loaded_key_defects: tuple[str, ...]
    precedence_pairs: tuple[tuple[str, str], ...]
    duplicates: tuple[tuple[str, float], ...]

    def reference_files(self) -> dict[str, str]: ...
    def base_chunk(self, chunk: int) -> list[Rec]: ...
    def fresh(self, rng: Random) -> Rec: ...
    def apply_defect(self, rng: Random, rec: Rec, defect: str, avoid: set[int]) -> set[int] | None: ...
    def near_duplicate(self, rng: Random, rec: Rec) -> Rec: ...


def dataset_generator(dataset: str, *, seed: int, dirty_rate: float) -> DatasetGenerator:
    """The generator of ``dataset`` for the clean stream ``(seed, dirty_rate)``."""
    if dataset == "commits":
        return CommitsGenerator(seed=seed, dirty_rate=dirty_rate, valid_share=VALID_SHARE)
    if dataset == "retail":
        return RetailGenerator(seed=seed, dirty_rate=dirty_rate, valid_share=VALID_SHARE)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def generate(
    dataset: str,
    *,
    rows: int,
    dirty_rate: float,
    seed: int,
    out: Path,
    overlap_from: Path | None = None,
    overlap_share: float = 0.25,
    record_truth: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Write a messy CSV export of ``rows`` data records and its ground-truth manifest into ``out``.

    Args:
        dataset: ``commits`` or ``retail``.
        rows: Data records to write (not counting the header and empty lines).
        dirty_rate: 0 gives a pristine file where everything loads; 1 is as dirty as it gets.
        seed: Seeds everything; the same arguments give the same bytes.
        out: Output directory (created; existing files of the same names are replaced).
        overlap_from: A directory written earlier by this generator for the same dataset: the new export
            repeats the last ``overlap_share`` of its loaded records (same keys, same content) and then
            continues with new records.
        overlap_share: Share of the earlier export's loaded records to repeat.
        record_truth: Write the per-record truth (``False``: counts and totals only, for huge files).
        progress: Called with the number of records written so far, now and then.

    Returns:
        The manifest as written, without its records (stream them with ``iter_records(out)``).

    Raises:
        DataError: ``overlap_from`` is not a usable earlier export.
    """
    if rows < 0 or not 0.0 <= dirty_rate <= 1.0 or not 0.0 <= overlap_share <= 1.0:
        raise ValueError("rows must be >= 0, dirty_rate and overlap_share in [0, 1]")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    stream_seed, stream_rate, start, known_end, earlier = seed, dirty_rate, 0, 0, None
    if overlap_from is not None:
        earlier = _earlier_export(dataset, overlap_from, out)
        assert earlier.stream is not None
        stream_seed, stream_rate = earlier.stream.seed, earlier.stream.dirty_rate
        known_end = earlier.stream.end
        start = known_end - round(overlap_share * (known_end - earlier.stream.start))
    gen = dataset_generator(dataset, seed=stream_seed, dirty_rate=stream_rate)
    for name, text in gen.reference_files().items():
        _write_atomically(out / name, text.encode("utf-8"))

    writer = _Writer(gen, out, seed=seed, dirty_rate=dirty_rate, record_truth=record_truth)
    try:
        writer.run(rows, _stream(gen, start), start=start, known_end=known_end, progress=progress)
    except BaseException:
        writer.tmp.unlink(missing_ok=True)
        writer.truth_tmp.unlink(missing_ok=True)
        raise

    head = Manifest(
        dataset=dataset,  # type: ignore[arg-type]
        seed=seed,
        rows=rows,
        dirty_rate=dirty_rate,
        reference_time=REFERENCE_TIME,
        files=[gen.data_file],
        reference_files=sorted(gen.reference_files()),
        record_truth=record_truth,
        stream=StreamInfo(seed=stream_seed, dirty_rate=stream_rate, start=start, end=start + writer.output),
        overlap_from=None
        if earlier is None
        else OverlapInfo(seed=earlier.seed, rows=earlier.rows, share=overlap_share, repeated=writer.already),
        file_dirt={gen.data_file: writer.file_dirt},
        dirt=dict(sorted(writer.dirt.items())),
        expected=writer.expected(),
    )
    write_manifest(out, head, writer.truth_lines())
    logger.info(
        "generated %d %s records (%s) in %.1fs", rows, dataset, gen.data_file, time.perf_counter() - started
    )
    return head


def _earlier_export(dataset: str, directory: Path, out: Path) -> Manifest:
    if directory.resolve() == out.resolve():
        raise DataError(
            f"--overlap-from {directory} is the output directory; write the later export elsewhere"
        )
    try:
        earlier = Manifest.read_head(directory)
    except FileNotFoundError as exc:
        raise DataError(
            f"--overlap-from {directory}: no {MANIFEST_NAME} there (run `dotjoin sample` first)"
        ) from exc
    except ValueError as exc:
        raise DataError(f"--overlap-from {directory}: {MANIFEST_NAME} is not a generator manifest") from exc
    if earlier.dataset != dataset:
        raise DataError(f"--overlap-from {directory} holds a {earlier.dataset} export, not {dataset}")
    if earlier.stream is None:
        raise DataError(f"--overlap-from {directory}: the manifest does not say which records it holds")
    return earlier


def _stream(gen: DatasetGenerator, start: int) -> Iterator[Rec]:
    chunk, skip = divmod(start, CHUNK)
    while True:
        yield from gen.base_chunk(chunk)[skip:]
        chunk, skip = chunk + 1, 0


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


class _Ring:
    """The last ``POOL`` items, for drawing duplicates and repeats from."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.n = 0

    def add(self, item: Any) -> None:
        if len(self.items) < POOL:
            self.items.append(item)
        else:
            self.items[self.n % POOL] = item
        self.n += 1

    def pick(self, rng: Random) -> Any:
        return self.items[int(rng.random() * len(self.items))]


class _Sink:
    """A file-like target for ``csv.writer`` that keeps each written row as one string."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def write(self, text: str) -> None:
        self.rows.append(text)


class _Writer:
    """Writes one data file record by record, tracking physical lines, truth, counts and totals."""

    def __init__(
        self, gen: DatasetGenerator, out: Path, *, seed: int, dirty_rate: float, record_truth: bool
    ) -> None:
        self.gen, self.rate, self.record_truth = gen, dirty_rate, record_truth
        self.rng = Random(f"dotjoin-csv/dirt/{gen.dataset}/{seed}")  # noqa: S311 - test data
        p_file = min(1.0, dirty_rate * FILE_DIRT_FACTOR)
        self.file_dirt = [k for k in ("bom", "crlf", "header_variant") if self.rng.random() < p_file]
        self.eol = "\r\n" if "crlf" in self.file_dirt else "\n"
        self.sink = _Sink()
        self.minimal = csv.writer(self.sink, lineterminator=self.eol)
        self.quote_all = csv.writer(self.sink, lineterminator=self.eol, quoting=csv.QUOTE_ALL)
        self.parts: list[str] = []
        self.truth: list[str] = []
        self.line = 1
        self.output = self.quarantined = self.duplicates = self.already = 0
        self.by_reason: Counter[str] = Counter()
        self.dirt: Counter[str] = Counter({k: 1 for k in self.file_dirt})
        self.totals: list[int | Decimal] = [0] * len(gen.totals_names)
        self.new_totals: list[int | Decimal] = [0] * len(gen.totals_names)
        self.loaded, self.merges, self.junk = _Ring(), _Ring(), _Ring()
        self.singles = tuple((k, w) for k, w in gen.defects if k not in _META_DEFECTS)
        self.path = out / gen.data_file
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.truth_tmp = out / (MANIFEST_NAME + ".records.part")

    # --- the loop ----------------------------------------------------------------------------------

    def run(
        self,
        rows: int,
        stream: Iterator[Rec],
        *,
        start: int,
        known_end: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        rng, rate = self.rng, self.rate
        p_defect = rate * DEFECT_SHARE
        p_dup = p_defect + rate * DUP_SHARE
        p_empty = rate * EMPTY_LINE_SHARE
        index = start
        with self.tmp.open("wb") as fh, self.truth_tmp.open("w", encoding="utf-8", newline="\n") as truth_fh:
            self.fh, self.truth_fh = fh, truth_fh
            if "bom" in self.file_dirt:
                fh.write(BOM)
            header = list(self.gen.header)
            if "header_variant" in self.file_dirt:
                header = [header_variant(rng, name) for name in header]
            self.minimal.writerow(header)
            self.parts.append(self.sink.rows.pop())
            self.line = 2
            self._empty_lines(p_empty)
            for n in range(rows):
                u = rng.random()
                if u < p_defect:
                    self._quarantine(self._defective())
                elif u < p_dup and self.loaded.items:
                    self._duplicate()
                else:
                    rec = next(stream)
                    self._load(rec, already=index < known_end)
                    index += 1
                self._empty_lines(p_empty)
                if len(self.parts) >= FLUSH_EVERY:
                    self._flush()
                    if progress is not None:
                        progress(n + 1)
            self._flush()
        self.tmp.replace(self.path)
        if progress is not None:
            progress(rows)

    def _empty_lines(self, p_empty: float) -> None:
        if p_empty and self.rng.random() < p_empty:
            n = 1 + (self.rng.random() < 0.3)
            self.parts.append(self.eol * n)
            self.line += n
            self.dirt["empty_line"] += n

    def _flush(self) -> None:
        self.fh.write("".join(self.parts).encode("utf-8", "surrogateescape"))
        self.parts.clear()
        if self.truth:
            self.truth_fh.write("\n".join(self.truth) + "\n")
            self.truth.clear()

    def _emit(self, rec: Rec) -> int:
        """Append the record's text; returns the line it starts on."""
        (self.quote_all if rec.quote_all else self.minimal).writerow(rec.fields)
        text = self.sink.rows.pop()
        if rec.encoding != "utf-8":
            text = _reencode(rec, text)
        start = self.line
        self.line += text.count("\n")
        self.parts.append(text)
        for kind in rec.dirt:
            self.dirt[kind] += 1
        return start

    # --- fates -------------------------------------------------------------------------------------

    def _load(self, rec: Rec, *, already: bool) -> None:
        line = self._emit(rec)
        self.output += 1
        for i, v in enumerate(rec.values):
            self.totals[i] += v
            if not already:
                self.new_totals[i] += v
        self.loaded.add((rec, line))
        if rec.merge:
            self.merges.add((rec, line))
        if already:
            self.already += 1
        if not self.record_truth:
            return
        if rec.dirt or rec.imputed or already:
            self.truth.append(
                _json(
                    file=self.gen.data_file,
                    line=line,
                    fate="load",
                    key=rec.key,
                    already_loaded=already or None,
                    imputed=list(rec.imputed) or None,
                    dirt=rec.dirt or None,
                )
            )
        else:
            self.truth.append(
                f'{{"file":"{self.gen.data_file}","line":{line},"fate":"load","key":"{rec.key}"}}'
            )

    def _duplicate(self) -> None:
        rng = self.rng
        kind = weighted(rng, self.gen.duplicates)
        if kind == "merge_per_branch" and self.merges.items:
            orig, orig_line = self.merges.pick(rng)
            dup = orig.copy()
        elif kind == "near_duplicate":
            orig, orig_line = self.loaded.pick(rng)
            dup = self.gen.near_duplicate(rng, orig)
        else:
            kind = "exact_duplicate"
            orig, orig_line = self.loaded.pick(rng)
            dup = orig.copy()
        dup.dirt = [kind, *orig.dirt]
        line = self._emit(dup)
        self.duplicates += 1
        if self.record_truth:
            self.truth.append(
                _json(
                    file=self.gen.data_file,
                    line=line,
                    fate="duplicate",
                    key=orig.key,
                    duplicate_of_line=orig_line,
                    dirt=dup.dirt,
                )
            )

    def _quarantine(self, rec: Rec) -> None:
        line = self._emit(rec)
        assert rec.reason is not None
        self.quarantined += 1
        self.by_reason[rec.reason] += 1
        self.junk.add(rec)
        if self.record_truth:
            self.truth.append(
                _json(file=self.gen.data_file, line=line, fate="quarantine", reason=rec.reason, dirt=rec.dirt)
            )

    def _defective(self) -> Rec:
        """A record a pipeline must quarantine: one defect, or two when testing the precedence."""
        rng, gen = self.rng, self.gen
        kind = weighted(rng, gen.defects)
        if kind == "bad_repeat" and self.junk.items:
            orig = self.junk.pick(rng)
            rec = orig.copy()
            rec.dirt = ["bad_repeat", *(d for d in orig.dirt if d != "bad_repeat")]
            return rec
        if kind == "defect_on_loaded_key" and self.loaded.items:
            orig, _ = self.loaded.pick(rng)
            rec = orig.copy()
            defect = pick(rng, gen.loaded_key_defects)
            if gen.apply_defect(rng, rec, defect, set()) is not None:
                rec.reason, rec.dirt = defect, ["defect_on_loaded_key", defect, *orig.dirt]
                return rec
        if kind == "precedence":
            pair = gen.precedence_pairs[int(rng.random() * len(gen.precedence_pairs))]
            for _ in range(20):
                rec, avoid = gen.fresh(rng), set[int]()
                for defect in pair:
                    touched = gen.apply_defect(rng, rec, defect, avoid)
                    if touched is None:
                        break
                    avoid |= touched | {-1}  # non-empty: later defects must not undo earlier ones
                else:
                    rec.reason, rec.dirt = primary_reason(pair), ["precedence", *pair]  # type: ignore[arg-type]
                    return rec
        if kind in _META_DEFECTS:
            kind = weighted(rng, self.singles)
        rec = gen.fresh(rng)
        if gen.apply_defect(rng, rec, kind, set()) is None:
            raise AssertionError(f"{gen.dataset}: defect {kind} does not apply to a fresh record")
        rec.reason, rec.dirt = kind, [kind]
        return rec

    # --- results -----------------------------------------------------------------------------------

    def expected(self) -> Expected:
        return Expected(
            input=self.output + self.quarantined + self.duplicates,
            output=self.output,
            quarantined=self.quarantined,
            duplicates=self.duplicates,
            quarantined_by_reason={r: self.by_reason[r] for r in REASON_PRECEDENCE if self.by_reason[r]},
            totals=_finish(self.gen.totals_names, self.totals),
            already_loaded=self.already,
            new_totals=_finish(self.gen.totals_names, self.new_totals) if self.already else {},
        )

    def truth_lines(self) -> Iterator[str]:
        """The per-record truth written during :meth:`run`, streamed (and the temporary file removed)."""
        try:
            if self.record_truth:
                with self.truth_tmp.open(encoding="utf-8") as fh:
                    for line in fh:
                        yield line.rstrip("\n")
        finally:
            self.truth_tmp.unlink(missing_ok=True)


def _reencode(rec: Rec, text: str) -> str:
    """The record's text in its legacy encoding, carried as UTF-8 with surrogate escapes.

    A ``cp1252`` record whose bytes happen to be valid UTF-8 (or that cp1252 cannot encode) is written as
    UTF-8 instead and loses its ``cp1252`` dirt, so the manifest never claims a repair that is not needed.
    """
    try:
        data = text.encode(rec.encoding)
    except UnicodeEncodeError:
        data = b""
    if rec.encoding == "cp1252":
        if data and not _decodes(data, "utf-8"):
            return data.decode("utf-8", "surrogateescape")
        rec.encoding = "utf-8"
        rec.dirt = [d for d in rec.dirt if d != "cp1252"]
        return text
    if not data or _decodes(data, "utf-8") or _decodes(data, "cp1252"):
        raise AssertionError(f"a {rec.encoding} record must decode neither as UTF-8 nor cp1252: {text!r}")
    return data.decode("utf-8", "surrogateescape")


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _json(**fields: Any) -> str:
    return json.dumps(
        {k: v for k, v in fields.items() if v is not None}, separators=(",", ":"), ensure_ascii=False
    )


def _finish(names: tuple[str, ...], values: list[int | Decimal]) -> dict[str, float]:
    out = {}
    for name, value in zip(names, values, strict=True):
        if isinstance(value, Decimal):
            value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        out[name] = float(value)
    return out
