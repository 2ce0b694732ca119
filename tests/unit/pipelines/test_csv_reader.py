"""The streaming CSV reader: detection with a confidence, framing, line numbers, decoding, bad input.

The reference for every record decision is Python's csv module plus the per-record decoding rule of
FORMATS.md (the generator's reference reader in test_csv_generator.py): the fast vectorised framing
must agree with it on every input, whatever the block size.
"""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotjoin.exceptions import DataError, DotjoinError
from dotjoin.pipelines.csv_etl.config import COMMITS_FILE, SALES_FILE, FileSpec
from dotjoin.platform.files import AmbiguousInputError, DelimitedReader, DialectOptions, InputFileError
from dotjoin.platform.files.encoding import detect_encoding
from dotjoin.platform.files.encoding import invalid_utf8_records as _invalid_utf8_records
from dotjoin.platform.files.framing import frame, frame_slow
from dotjoin.platform.files.header import detect_dialect, header_key
from dotjoin.platform.files.reader import BLOCK_BYTES
from dotjoin.simulate.csv_etl.generator import generate
from tests.unit.pipelines.test_csv_generator import COMMITS_HEADER, SALES_HEADER, decode

ABC = FileSpec("t", ("a", "b", "c"))


def CsvReader(
    path: Path,
    spec: FileSpec,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> DelimitedReader:
    return DelimitedReader(
        path,
        columns=spec.columns,
        options=DialectOptions(delimiter=delimiter),
        encoding=encoding,
        block_bytes=block_bytes,
        allow_empty=False,
    )


def read_all(path: Path, spec: FileSpec = ABC, **kwargs: object) -> dict[int, tuple[str, ...]]:
    """{start line: field values (canonical order) or (reason,)} for every record of the file."""
    out: dict[int, tuple[str, ...]] = {}
    with CsvReader(path, spec, **kwargs) as reader:  # type: ignore[arg-type]
        for chunk in reader:
            for row, line in zip(chunk.table.to_pylist(), chunk.line.tolist(), strict=True):
                out[line] = tuple(row[c] for c in spec.columns)
            for rej in chunk.rejected:
                out[rej.line] = (rej.reason,)
    return out


def reference(path: Path, width: int) -> dict[int, tuple[str, ...]]:
    """The same map from the reference reader of FORMATS.md: the csv module over physical lines, per-record
    decoding, and one rule on top: a record spanning several lines with the wrong width is a quote that
    never closed, so only its first line is a (ragged) record and reading goes on at the next line."""
    text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("latin-1")  # latin-1: bytes 1:1
    lines = [m.group() for m in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)]
    out: dict[int, tuple[str, ...]] = {}
    i, header = 0, True
    while i < len(lines):
        reader = csv.reader(lines[i:], strict=False)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            row, used = None, 1
        else:
            used = reader.line_num
        if row == []:
            i += used
            continue
        if row is not None and used > 1 and len(row) != width and not header:
            row, used = None, 1  # a stray quote
        if header:
            header = False
        elif row is None:
            out[i + 1] = ("ragged_row",)
        else:
            fields = decode([f.encode("latin-1") for f in row])
            if fields is None:
                out[i + 1] = ("bad_encoding",)
            elif len(fields) != width:
                out[i + 1] = ("ragged_row",)
            else:
                out[i + 1] = tuple(fields)
        i += used
    return out


# -- detection ---------------------------------------------------------------------------------------


def test_encoding_detection_decides_with_a_confidence() -> None:
    assert detect_encoding(b"a,b\n1,2\n", path="x").evidence == "ASCII only"
    assert detect_encoding("é,ü\n".encode(), path="x").confidence == 1.0
    bom = detect_encoding(b"\xef\xbb\xbfa,b\n", path="x")
    assert (bom.encoding, bom.bom, bom.confidence) == ("utf-8", 3, 1.0)
    assert detect_encoding("a,b\n".encode("utf-16"), path="x").encoding == "utf-16-le"
    # mostly UTF-8 with a few legacy records: UTF-8, repaired record by record
    mixed = ("Zoë,Łukasz,王伟\n" * 20).encode() + "José\n".encode("cp1252")
    guess = detect_encoding(mixed, path="x")
    assert guess.encoding == "utf-8" and 0.75 < guess.confidence < 1.0 and "cp1252" in guess.evidence


def test_an_ambiguous_encoding_is_refused_naming_the_file_unless_forced(tmp_path: Path) -> None:
    cyrillic = "repo,sha\nПривет мир,Здравствуйте\n".encode("cp1251") * 50  # noqa: RUF001
    with pytest.raises(AmbiguousInputError, match=r"^x\.csv: the encoding is ambiguous .* pass --encoding"):
        detect_encoding(cyrillic, path="x.csv")
    path = tmp_path / "c.csv"
    path.write_bytes("a,b,c\nПривет,мир,ёж\n".encode("cp1251"))  # noqa: RUF001
    with pytest.raises(AmbiguousInputError):
        CsvReader(path, ABC)
    assert read_all(path, encoding="cp1251") == {2: ("Привет", "мир", "ёж")}


def test_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="looks like a binary file"):
        detect_encoding(bytes(range(256)) * 10, path="x")
    path = tmp_path / "data.csv"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(random.Random(1).getrandbits(8) for _ in range(4000)))
    with pytest.raises(InputFileError, match=r"data\.csv: not a valid gzip file"):
        CsvReader(path, ABC)
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(InputFileError, match=r"data\.csv looks like a binary file"):
        CsvReader(path, ABC)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_detection(delimiter: str) -> None:
    text = delimiter.join(["A", " b ", "C"]) + "\n" + delimiter.join(["1", '"x,y;z|"', "3"]) + "\n"
    dialect = detect_dialect(text, ("a", "b", "c"), path="x")
    assert (dialect.delimiter, dialect.columns, dialect.confidence) == (delimiter, ("a", "b", "c"), 1.0)


def test_header_variants_map_to_the_canonical_columns() -> None:
    assert {header_key(h) for h in (" Author Name ", "AUTHOR_NAME", "authorName", "author-name")} == {
        "authorname"
    }
    dialect = detect_dialect(" SHA ,Repo\n", ("repo", "sha"), path="x")
    assert dialect.columns == ("sha", "repo") and dialect.header == (" SHA ", "Repo")


def test_an_unknown_column_set_names_missing_and_unknown_columns() -> None:
    with pytest.raises(InputFileError) as err:
        detect_dialect("a,b,zzz\n1,2,3\n", ("a", "b", "c"), path="f.csv")
    assert str(err.value) == (
        "f.csv: unknown column set in the header (line 1): missing c; unknown 'zzz'; expected: a, b, c"
    )


def test_a_wrong_delimiter_is_named() -> None:
    with pytest.raises(InputFileError, match=r"f\.csv: wrong delimiter ';'.* with ','"):
        detect_dialect("a,b,c\n1,2,3\n", ("a", "b", "c"), path="f.csv", forced=";")


def test_a_file_whose_records_disagree_with_its_header_is_ambiguous() -> None:
    text = "a,b,c\n" + "1;2;3\n" * 50
    with pytest.raises(AmbiguousInputError, match=r"the delimiter is ambiguous.*';'.*pass --delimiter"):
        detect_dialect(text, ("a", "b", "c"), path="f.csv")
    assert detect_dialect(text, ("a", "b", "c"), path="f.csv", forced=",").delimiter == ","


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"missing\.csv: no such file"),
        (b"", r"is empty: expected a header line with columns a, b, c"),
        (b"\xef\xbb\xbf\r\n\n", r"is empty"),
        (b"a,b,c\r\n", r"no data records after the header \(line 1\)"),
        (b"a,b,c\n\n\n", r"no data records after the header \(line 1\)"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_all(path)
    assert isinstance(err.value, DotjoinError) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a file"):
        CsvReader(tmp_path, ABC)


# -- framing and line numbers ------------------------------------------------------------------------


def test_line_numbers_count_physical_lines_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b,c\r\n1,2,3\r\n\r\n\n"multi\nline\r\nvalue",x,y\r\n4,5\n6,7,8\n\n')
    assert read_all(path) == {
        2: ("1", "2", "3"),
        5: ("multi\nline\r\nvalue", "x", "y"),
        8: ("ragged_row",),
        9: ("6", "7", "8"),
    }
    with CsvReader(path, ABC) as reader:
        list(reader)
    assert (reader.records, reader.lines, reader.empty_lines) == (4, 10, 3)


def test_quoted_fields_hold_delimiters_quotes_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'c,b,a\n"x,1","say ""hi""","a\nb"\n')
    assert read_all(path) == {2: ("a\nb", 'say "hi"', "x,1")}


def test_bad_encoding_comes_before_ragged_row_and_cp1252_records_are_repaired(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,c\nJos\xe9,1,2\n\x81,1\nok,\xe9,\x81\nZo\xc3\xab,1,2\n")
    assert read_all(path) == {
        2: ("José", "1", "2"),
        3: ("bad_encoding",),
        4: ("bad_encoding",),
        5: ("Zoë", "1", "2"),
    }


def test_irregular_quoting_is_read_like_the_csv_module(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b,c\n5" screen,2,3\n"x"y,2,3\nlone\rcr,1,2\n"open,1,2\n')
    assert read_all(path) == reference(path, 3)


def test_utf8_validation_agrees_with_pythons_decoder() -> None:
    rng = random.Random(5)
    specials = [0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xED, 0xA0, 0xF4, 0x90, 0xF0, 0x8F, 0xE0, 0x80, 0xC0, 0xFF]
    for _ in range(2000):
        records = [
            b"k"
            + bytes(
                rng.choice([*specials, rng.randint(0x80, 0xFF), rng.randint(0x20, 0x7E)])
                for _ in range(rng.randint(0, 6))
            ).replace(b'"', b"x")
            for _ in range(rng.randint(1, 6))
        ]
        data = b"\n".join(records) + b"\n"
        framed = frame(data, ",", final=True)
        assert framed is not None
        expected = []
        for i, (s, e) in enumerate(zip(framed.start.tolist(), framed.end.tolist(), strict=True)):
            try:
                data[s:e].decode("utf-8")
            except UnicodeDecodeError:
                expected.append(i)
        assert _invalid_utf8_records(data, framed) == expected, records


PIECES = ["a", "1", " ", ",", ";", '"', '""', "\n", "\r\n", "\r", "é", "\t", "x,y", '"q,\nz"', ""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.sampled_from([1, 7, 64, 1 << 16]))
def test_fast_framing_agrees_with_the_csv_module_on_any_input(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[str], block: int
) -> None:
    path = tmp_path_factory.mktemp("f") / "t.csv"
    path.write_bytes(("a,b,c\n" + "".join(pieces)).encode())
    try:
        mine = read_all(path, block_bytes=block)
    except InputFileError as exc:
        assert "no data records" in str(exc) or "ambiguous" in str(exc)
        assert all(v[0] in ("ragged_row",) for v in reference(path, 3).values()) or "ambiguous" in str(exc)
        return
    assert mine == reference(path, 3)


def test_slow_framing_is_the_csv_module() -> None:
    data = b'a,"b\r\nc"\n\n"x""y",z\rlast'
    slow = frame_slow(data, ",", final=True)
    assert slow is not None
    expected = [r for r in csv.reader(io.StringIO(data.decode(), newline="")) if r]
    assert slow.values == expected
    assert slow.framed.line.tolist() == [1, 4, 5] and slow.framed.lines == 5


@pytest.mark.parametrize(
    ("dataset", "rate", "seed"), [("commits", 0.3, 1), ("commits", 1.0, 7), ("retail", 0.9, 2)]
)
@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_generated_files_read_like_the_reference_reader(
    tmp_path: Path, dataset: str, rate: float, seed: int, block: int
) -> None:
    head = generate(dataset, rows=3000, dirty_rate=rate, seed=seed, out=tmp_path)
    path = tmp_path / head.files[0]
    spec = COMMITS_FILE if dataset == "commits" else SALES_FILE
    width = len(COMMITS_HEADER if dataset == "commits" else SALES_HEADER)
    assert read_all(path, spec, block_bytes=block) == reference(path, width)


def test_memory_per_chunk_is_bounded_by_the_block_size(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,c\n" + b"1,2,3\n" * 200_000)
    with CsvReader(path, ABC, block_bytes=64 << 10) as reader:
        sizes = [len(chunk.data) for chunk in reader]
    assert len(sizes) > 10 and max(sizes) < 2 * (64 << 10)
    assert int(np.sum([s for s in sizes])) >= 6 * 200_000
