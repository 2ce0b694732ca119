"""Pollock-style robustness benchmark: polluted variants of clean tables, read by dotjoin and DuckDB.

Our own rebuild of the Pollock benchmark (HPI; Vitagliano et al., VLDB 2023; github.com/HPI-Information-
Systems/Pollock: 2,290 polluted variants of one CSV file): no Pollock code or file is used; its
pollutions are re-created from its description, applied to our clean tables and scored like its
evaluation (``evaluate.py``/``metrics.py`` against its ``clean/`` files).

**Clean tables**: ``products`` (shaped like Pollock's source: 9 columns, dd/mm dates, prices, quoted
descriptions with commas and ``""``, an always-empty last column), ``sensors`` (numbers, accents, empty
cells), ``people`` (text only), and, when ``../shared`` exists, the first FOCUS 1.0 sample rows and the
GTFS demo ``stops.txt``. Each is written like Pollock's base file (``,``, ``"`` doubled, CRLF after every
record, a mostly-quoted column quoted throughout); quoting never changes afterwards (a new delimiter does
not re-quote, so Pollock's space-delimited file splits cells).

**Pollock families** (file counts and summed real-world weights from Pollock): source; empty file; no /
double trailing newline; no header (truth: the first data row is the header, as Pollock compares the
clean file's first row); header repeated 2/3 times (truth: names joined by spaces, ``DATE DATE``);
``PREAMBLE,,,`` + ``,,,`` above the header; the table appended again with one column fewer/same/more
(truth: the first table); header only; one data row; LF / CR records; ``;``, tab, ``, ``, space
delimiters; ``'`` quotes (embedded ``""`` and apostrophes left as written); backslash / no escapes; and,
sampled and re-weighted to Pollock's counts, per row *i* (0 = header) and cell *j*: an extra delimiter
(``row_more_sep``), a missing one (``row_less_sep``), an unescaped ``"`` before the cell (truth keeps it),
the row delimited by spaces. **Extras** (``x_*``, Pollock's earlier polluters and common exports):
encodings, preambles/footnotes, ``#`` comments, blank lines, odd header names, junk rows above the
header, ragged rows, trailing delimiters, all-quoted, ``'``-quoted, ``" x "`` quotes, one row with LF /
``;`` / ``'`` / backslash escapes, 1 or 1,024 columns, 70,000 rows, ``.tsv``, multi-line values.

**Systems**: ``DelimitedReader(path, options=DialectOptions())``; DuckDB ``read_csv(all_varchar=true)``
with ``ignore_errors=true`` (Pollock's ``duckdb`` SUT) and with also ``strict_mode=false,
null_padding=true`` (its ``duckdbauto`` SUT). An exception scores 0 (message kept).

**Score per file, 0-10** (Pollock's): success + header P/R/F1 (multiset of normalised names, clean first
row vs loaded names) + record P/R/F1 (multiset of records; a record is its normalised cells
*concatenated*, as in Pollock) + cell P/R/F1 (multiset of raw cells, header row included). An empty
clean table scores 10 for any successful read. Normalised: numbers, true/false canonical, text lowered.
Overall: **Pollock simple (est.)** = families averaged with Pollock's file counts (2,268 of its 2,290
files are row-level), **weighted (est.)** = with its frequency weights, and the plain mean here.

Usage: .venv/bin/python benchmarks/reader_robustness.py [--tables products,people] [--no-extras]
       [--worst 8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOCUS = SHARED / "focus" / "focus_1.0_sample.csv"
STOPS = SHARED / "gtfs" / "transitfeed_tests_data" / "good_feed" / "stops.txt"
FOCUS_ROWS = 150

#: Pollock family -> (files in Pollock's benchmark, summed real-world weight in its weights file).
POLLOCK: dict[str, tuple[int, float]] = {
    "source": (1, 1),
    "file_no_payload": (1, 15),
    "file_no_trailing_newline": (1, 184),
    "file_double_trailing_newline": (1, 5),
    "file_no_header": (1, 470),
    "file_header_multirow_2": (1, 47),
    "file_header_multirow_3": (1, 47),
    "file_preamble": (1, 282),
    "file_multitable_less": (1, 62.7),
    "file_multitable_same": (1, 62.7),
    "file_multitable_more": (1, 62.7),
    "file_header_only": (1, 3),
    "file_one_data_row": (1, 4),
    "file_record_delimiter_LF": (1, 1691),
    "file_record_delimiter_CR": (1, 7),
    "file_field_delimiter_semicolon": (1, 834),
    "file_field_delimiter_tab": (1, 4),
    "file_field_delimiter_comma_space": (1, 101),
    "file_field_delimiter_space": (1, 4),
    "file_quotation_char_apostrophe": (1, 11),
    "file_escape_char_backslash": (1, 1),
    "file_escape_char_none": (1, 7),
    "row_less_sep": (672, 247.1),
    "row_more_sep": (756, 278.0),
    "row_extra_quote": (756, 7.0),
    "row_field_delimiter_space": (84, 12.0),
}
MEASURES: tuple[str, ...] = ("success", "header_p", "header_r", "header_f1", "record_p", "record_r")
MEASURES += ("record_f1", "cell_p", "cell_r", "cell_f1")


# -- clean tables ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    header: list[str]
    rows: list[list[str]]


def products(n: int = 83) -> Table:
    """A table shaped like Pollock's source file (our own content)."""
    rng = random.Random(7)
    adjectives = ["Men's", "Women's", "Kids'", "Organic", "Waterproof", "Heated", "Classic", "Travel"]
    nouns = ["Hiking Boots", "Rain Jacket", "Fly Rod", "Fleece", "Duffle", "Sandals", "Wool Hat", "Tee"]
    extras = ["", "", "", ", Short-Sleeve", ", Plaid", ', 24"', ", Leather/Nubuck", ', 5" Inseam']
    phrases = [
        "built for the trail, light and quick",
        "warm, dry and comfortable whatever the weather",
        "our best-value pick, even when wet",
        "you'll never want to take it off",
        "made in the USA to our exacting standards",
        "a crisp 8'9\" action, designed for her",
        "soft, breathable and easy to wash",
    ]
    header = ["DATE", "TIME", "Qty", "PRODUCTID", "Price", "ProductType", "ProductDescription", "URL"]
    header.append("Comments")
    rows = []
    for i in range(n):
        pid = f"{rng.choice(['MG', 'RI', 'CC', 'BH', 'HK', 'AN'])}-{rng.randint(1000, 9999)}"
        price = f"{rng.uniform(0.5, 95):.2f}".rstrip("0") if i % 5 == 0 else f"{rng.uniform(0.5, 95):.2f}"
        kind = f"{rng.choice(adjectives)} {rng.choice(nouns)}{rng.choice(extras)}"
        text = " ".join(rng.sample(phrases, 2)).capitalize() + "."
        day, month = 1 + i % 28, 1 + i // 28
        when = [f"{day:02d}/{month:02d}/2018", f"{i // 4 % 24:02d}:{15 * (i % 4):02d}"]
        url = f"https://www.example.com/product/{pid.replace('-', '_')}.html"
        rows.append([*when, str(rng.randint(0, 33)), pid, f"${price}", kind, text, url, ""])
    return Table("products", header, rows)


def sensors(n: int = 60) -> Table:
    rng = random.Random(11)
    stations = ["Zürich", "São Paulo", "Kraków", "Reykjavík", "Montréal", "Łódź", "Málaga"]
    header = ["station_id", "station", "observed_at", "temperature_c", "humidity_pct", "status"]
    rows = []
    for i in range(n):
        temp = "" if i % 17 == 5 else f"{rng.uniform(-20, 35):.1f}"
        status = rng.choice(["ok", "ok", "ok", "maintenance", ""])
        when = f"2024-03-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"
        rows.append([str(100 + i % 7), stations[i % 7], when, temp, str(rng.randint(10, 100)), status])
    return Table("sensors", header, rows)


def people(n: int = 50) -> Table:
    rng = random.Random(13)
    first = ["Ada", "Grace", "Linus", "Margaret", "Seán", "Zoë", "Omar", "Mei", "Kwame", "Ines"]
    last = ["Lovelace", "Hopper", "O'Brien", "Hamilton", "Ng", "García", "Okafor", "Dubois"]
    cities = [("Washington, D.C.", "United States"), ("Lyon", "France"), ("Cork", "Ireland")]
    cities += [("Accra", "Ghana"), ("Osaka", "Japan"), ("Porto", "Portugal")]
    jobs = ["engineer", "analyst", "manager", "nurse", "teacher", "designer"]
    header = ["first_name", "last_name", "city", "country", "email", "job"]
    rows = []
    for _ in range(n):
        f, la = rng.choice(first), rng.choice(last)
        city, country = rng.choice(cities)
        email = f"{f.lower()}.{la.lower().replace(chr(39), '')}@example.org"
        rows.append([f, la, city, country, email, rng.choice(jobs)])
    return Table("people", header, rows)


def read_table(name: str, path: Path, limit: int | None = None) -> Table:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        records = list(csv.reader(fh))
    return Table(name, records[0], records[1 : None if limit is None else limit + 1])


def clean_tables() -> list[Table]:
    tables = [products(), sensors(), people()]
    if FOCUS.exists():
        tables.append(read_table("focus", FOCUS, FOCUS_ROWS))
    if STOPS.exists():
        tables.append(read_table("gtfs_stops", STOPS))
    return tables


# -- the file model: cells as written, rows with a role ---------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: str
    quoted: bool = False
    stray: str = ""  # written raw (unescaped) after the opening quote; part of the value's truth


@dataclass
class Row:
    cells: list[Cell]
    role: str  # "header", "data" or "junk" (preamble, footnote, second table: not in the truth)
    raw: str | None = None  # written verbatim instead of the cells
    delimiter: str | None = None
    terminator: str | None = None
    quote: str | None = None
    escape: str | None = None

    def truth(self) -> list[str]:
        return [c.stray + c.value for c in self.cells]


@dataclass
class Doc:
    rows: list[Row]
    delimiter: str = ","
    quote: str = '"'  # opening quote; the closing one is its reverse (Pollock's '" ' quote)
    escaped: str = '"'  # the character escaped inside values
    escape: str = '"'  # written before it ('"' doubles it, "\\" backslash, "" nothing)
    terminator: str = "\r\n"
    last_terminator: str | None = None
    encoding: str = "utf-8"

    def copy(self, **changes: object) -> Doc:
        rows = [replace(r, cells=list(r.cells)) for r in self.rows]
        return replace(self, rows=rows, **changes)  # type: ignore[arg-type]

    def cell_text(self, cell: Cell, row: Row) -> str:
        quote = row.quote if row.quote is not None else self.quote
        escape = row.escape if row.escape is not None else self.escape
        body = cell.value.replace(self.escaped, escape + self.escaped) if self.escaped else cell.value
        if cell.quoted:
            return f"{quote}{cell.stray}{body}{quote[::-1]}"
        return cell.stray + body

    def row_cells(self, row: Row) -> list[str]:
        return [self.cell_text(c, row) for c in row.cells]

    def text(self) -> str:
        out = []
        for k, row in enumerate(self.rows):
            body = (
                row.raw
                if row.raw is not None
                else (row.delimiter or self.delimiter).join(self.row_cells(row))
            )
            end = row.terminator if row.terminator is not None else self.terminator
            if k == len(self.rows) - 1 and self.last_terminator is not None:
                end = self.last_terminator
            out.append(body + end)
        return "".join(out)

    def truth(self) -> list[list[str]]:
        """The clean table as Pollock writes it: header rows merged with spaces, then the data rows."""
        headers = [r.truth() for r in self.rows if r.role == "header"]
        out: list[list[str]] = []
        if len(headers) == 1:
            out.append(headers[0])
        elif headers:
            width = max(len(h) for h in headers)
            out.append([" ".join(h[k] for h in headers if k < len(h)) for k in range(width)])
        return out + [r.truth() for r in self.rows if r.role == "data"]


def needs_quotes(value: str) -> bool:
    return any(ch in value for ch in ',"\r\n')


def base_doc(table: Table) -> Doc:
    width = len(table.header)
    always = [
        sum(needs_quotes(r[j]) for r in table.rows if j < len(r)) * 2 > len(table.rows) for j in range(width)
    ]

    def row(values: list[str], role: str) -> Row:
        cells = [Cell(v, (j < width and always[j]) or needs_quotes(v)) for j, v in enumerate(values)]
        return Row(cells, role)

    return Doc([row(table.header, "header"), *(row(r, "data") for r in table.rows)])


def plain_row(values: list[str], role: str = "junk") -> Row:
    return Row([Cell(v, needs_quotes(v)) for v in values], role)


# -- variants ---------------------------------------------------------------------------------------------


@dataclass
class Variant:
    table: str
    family: str
    name: str
    data: bytes
    truth: list[list[str]]
    share: float = 1.0  # the fraction of its Pollock family (in this table) this variant stands for
    suffix: str = ".csv"


def variant(table: Table, family: str, doc: Doc, *, name: str = "", share: float = 1.0) -> Variant:
    data = doc.text().encode(doc.encoding)
    return Variant(table.name, family, name or family, data, doc.truth(), share)


def pollock_variants(table: Table) -> Iterator[Variant]:
    base = base_doc(table)
    width, n = len(table.header), len(base.rows)
    yield variant(table, "source", base)
    yield Variant(table.name, "file_no_payload", "file_no_payload", b"", [])
    yield variant(table, "file_no_trailing_newline", base.copy(last_terminator=""))
    yield variant(table, "file_double_trailing_newline", base.copy(last_terminator="\r\n\r\n"))
    doc = base.copy()
    doc.rows = doc.rows[1:]
    yield variant(table, "file_no_header", doc)
    for k in (2, 3):
        doc = base.copy()
        doc.rows = [replace(doc.rows[0]) for _ in range(k - 1)] + doc.rows
        yield variant(table, f"file_header_multirow_{k}", doc)
    doc = base.copy()
    pre = ["PREAMBLE"] + [""] * (width - 1)
    doc.rows = [plain_row(pre), plain_row([""] * width), *doc.rows]
    yield variant(table, "file_preamble", doc)
    for family, cols in (("less", width - 1), ("same", width), ("more", width + 1)):
        doc = base.copy()
        again = [r.truth() for r in doc.rows[: n - 1]]
        again = [
            r[:cols] if cols <= width else [*r, "col1" if k == 0 else r[-1]] for k, r in enumerate(again)
        ]
        doc.rows += [plain_row(r) for r in again]
        yield variant(table, f"file_multitable_{family}", doc)
    doc = base.copy()
    doc.rows = doc.rows[:1]
    yield variant(table, "file_header_only", doc)
    doc = base.copy()
    doc.rows = doc.rows[:2]
    yield variant(table, "file_one_data_row", doc)
    yield variant(table, "file_record_delimiter_LF", base.copy(terminator="\n"))
    yield variant(table, "file_record_delimiter_CR", base.copy(terminator="\r"))
    for label, delim in (("semicolon", ";"), ("tab", "\t"), ("comma_space", ", "), ("space", " ")):
        yield variant(table, f"file_field_delimiter_{label}", base.copy(delimiter=delim))
    yield variant(table, "file_quotation_char_apostrophe", base.copy(quote="'"))
    yield variant(table, "file_escape_char_backslash", base.copy(escape="\\"))
    yield variant(table, "file_escape_char_none", base.copy(escape=""))
    yield from row_level(table, base)


def extra_delimiter(cells: list[str], at: int) -> str:
    return ",".join([*cells[:at], "", *cells[at:]])


def missing_delimiter(cells: list[str], at: int) -> str:
    return ",".join([*cells[: at - 1], cells[at - 1] + cells[at], *cells[at + 1 :]])


def row_level(table: Table, base: Doc) -> Iterator[Variant]:
    """Pollock's per-row/column families on sampled rows and columns, weighted by what each stands for."""
    width, n = len(table.header), len(base.rows)
    rows = sorted({0, 1, n // 2, n - 1})
    cols = sorted({0, 1, width // 2, width - 1})

    def share(i: int, ncols: int) -> float:
        return (1 / n if i == 0 else (n - 1) / n / (len(rows) - 1)) / ncols

    def with_raw(i: int, make: Callable[[list[str]], str]) -> Doc:
        doc = base.copy()
        doc.rows[i] = replace(doc.rows[i], raw=make(doc.row_cells(doc.rows[i])))
        return doc

    def emit(family: str, doc: Doc, i: int, j: int, ncols: int) -> Variant:
        return variant(table, family, doc, name=f"{family}_row{i}_col{j}", share=share(i, ncols))

    for i in rows:
        less = [j for j in cols if j > 0]
        for j in cols:
            yield emit("row_more_sep", with_raw(i, partial(extra_delimiter, at=j)), i, j, len(cols))
            doc = base.copy()
            doc.rows[i].cells[j] = replace(doc.rows[i].cells[j], stray='"' + doc.rows[i].cells[j].stray)
            yield emit("row_extra_quote", doc, i, j, len(cols))
            if j in less:
                yield emit("row_less_sep", with_raw(i, partial(missing_delimiter, at=j)), i, j, len(less))
        yield emit("row_field_delimiter_space", with_raw(i, " ".join), i, 0, 1)


def extra_variants(table: Table) -> Iterator[Variant]:
    """Pollutions outside Pollock's final set (its earlier polluters, and what real exports do)."""
    base = base_doc(table)
    width, n = len(table.header), len(base.rows)
    mid = n // 2

    def x(family: str, doc: Doc) -> Variant:
        return variant(table, f"x_{family}", doc)

    def inserted(at: int, *rows: Row) -> Doc:
        doc = base.copy()
        doc.rows[at:at] = list(rows)
        return doc

    def raw(text: str) -> Row:
        return Row([], "junk", raw=text)

    for label, encoding in (("latin1", "latin-1"), ("utf16", "utf-16"), ("utf8_bom", "utf-8-sig")):
        with contextlib.suppress(UnicodeEncodeError):
            yield x(f"encoding_{label}", base.copy(encoding=encoding))
    yield x("preamble_text_3", inserted(0, *(raw(f"PREAMBLE line {k}") for k in range(3))))
    yield x(
        "preamble_delimited_3",
        inserted(0, *(plain_row([f"PREAMBLE {k}"] + [""] * (width - 1)) for k in range(3))),
    )
    yield x("preamble_text_blank", inserted(0, raw("Report exported 2024-05-01, all values in EUR"), raw("")))
    yield x("footnote_delimited", inserted(n, plain_row(["FOOTNOTE"] + [""] * (width - 1))))
    yield x("footnote_text_3", inserted(n, *(raw(f"FOOTNOTE {k}: source internal") for k in range(3))))
    yield x("footnote_blank_text", inserted(n, raw(""), raw("(c) 2024 Example Corp.")))
    yield x("comment_lines_top", inserted(0, raw("# exported by tool v2"), raw("# columns: see docs")))
    yield x("comment_line_middle", inserted(mid, raw("# page 2")))
    doc = base.copy()
    doc.rows = [out for k, r in enumerate(doc.rows) for out in ([r, raw("")] if k and k % 10 == 0 else [r])]
    yield x("blank_lines_between", doc)
    yield x("blank_line_top", inserted(0, raw("")))
    for label, col, name in (
        ("empty", width // 2, ""),
        ("nonalnum", width // 2, "HEAD/%R"),
        ("long", 0, "HEADER" * 20000),
    ):
        doc = base.copy()
        doc.rows[0].cells[col] = Cell(name, needs_quotes(name))
        yield x(f"header_{label}_name", doc)
    doc = base.copy()
    doc.rows[0].cells[0] = doc.rows[0].cells[1] = Cell("HEADER")
    yield x("header_duplicate_names", doc)
    junk = [""] * width
    junk[min(1, width - 1)] = "HEADER"
    yield x("header_junk_rows_above", inserted(0, plain_row(junk), plain_row(junk)))
    doc = base.copy()
    doc.rows[mid].cells = doc.rows[mid].cells[: max(1, round(width * 0.6))]
    yield x("row_fewer_cells", doc)
    doc = base.copy()
    doc.rows[mid].cells += [doc.rows[mid].cells[-1]] * max(1, width - 2)
    yield x("row_more_cells", doc)
    doc = base.copy()
    doc.rows[mid] = raw("")
    yield x("row_empty", doc)
    doc = base.copy()
    doc.rows = [replace(r, raw=",".join(doc.row_cells(r)) + ",") for r in doc.rows]
    yield x("trailing_delimiter", doc)
    doc = base.copy()
    doc.rows = [replace(r, cells=[replace(c, quoted=True) for c in r.cells]) for r in doc.rows]
    yield x("quote_all", doc)
    doc = base.copy(quote="'", escaped="'", escape="'")
    doc.rows = [
        replace(r, cells=[replace(c, quoted=c.quoted or "'" in c.value) for c in r.cells]) for r in doc.rows
    ]
    yield x("quote_apostrophe_doubled", doc)
    yield x("quote_space", base.copy(quote='" '))
    doc = base.copy()
    doc.rows[mid].terminator = "\n"
    yield x("row_record_delimiter_LF", doc)
    doc = base.copy()
    doc.rows[mid].delimiter = ";"
    yield x("row_field_delimiter_semicolon", doc)
    doc = base.copy()
    doc.rows[mid].quote = "'"
    yield x("row_quote_apostrophe", doc)
    doc = base.copy()
    doc.rows[mid] = replace(
        doc.rows[mid], escape="\\", cells=[Cell(c.value + '"', True) for c in doc.rows[mid].cells]
    )
    yield x("row_escape_backslash", doc)
    doc = base.copy()
    doc.rows = [replace(r, cells=r.cells[:1]) for r in doc.rows]
    yield x("single_column", doc)
    doc = base.copy(delimiter="|")
    doc.rows = [
        replace(r, cells=[replace(c, quoted=c.quoted or "|" in c.value) for c in r.cells]) for r in doc.rows
    ]
    yield x("field_delimiter_pipe", doc)
    doc = base.copy()
    for r in doc.rows[1::7]:
        r.cells[-2 if width > 1 else 0] = Cell(r.cells[-2 if width > 1 else 0].value + "\nsecond line", True)
    yield x("multiline_values", doc)
    doc = base.copy()
    doc.rows += [raw(""), *(plain_row(r.truth()) for r in base.rows[: n // 2])]
    yield x("multitable_blank_separated", doc)
    for suffix in (".tsv", ""):
        v = x(f"filename_{suffix.strip('.') or 'none'}", base)
        v.suffix = suffix
        yield v
    if table.name == "products":
        doc = base.copy()
        extra = [f"col{k}" for k in range(width, 1024)]
        doc.rows = [
            replace(r, cells=r.cells + [Cell(e if k == 0 else r.cells[-1].value) for e in extra])
            for k, r in enumerate(doc.rows)
        ]
        yield x("columns_1024", doc)
        doc = base.copy()
        doc.rows += [replace(doc.rows[-1]) for _ in range(70_000 - n)]
        yield x("rows_70000", doc)


# -- loading ----------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    error: str = ""
    note: str = ""


def load_dotjoin(path: Path) -> Loaded:
    from dotjoin.platform.files import DelimitedReader, DialectOptions

    rows: list[list[str]] = []
    rejected: Counter[str] = Counter()
    with DelimitedReader(path, options=DialectOptions()) as reader:
        for chunk in reader:
            columns = [c.to_pylist() for c in chunk.table.columns]
            rows.extend([v if v is not None else "" for v in r] for r in zip(*columns, strict=True))
            rejected.update(r.reason for r in chunk.rejected)
        d = reader.dialect
        note = (
            f"delim={d.delimiter!r} quote={d.quote!r} escape={d.escape!r} header={d.header} "
            f"skip={d.skip_lines} footer={d.footer_records} cols={len(d.columns)}"
        )
        if rejected:
            note += " rejected=" + ",".join(f"{k}:{v}" for k, v in rejected.items())
        return Loaded(list(reader.names), rows, note=note)


def duckdb_loader(options: str) -> Callable[[Path], Loaded]:
    import duckdb

    con = duckdb.connect()
    con.sql("SET threads = 1")

    def load(path: Path) -> Loaded:
        quoted = str(path).replace("'", "''")
        rel = con.sql(f"SELECT * FROM read_csv('{quoted}', all_varchar = true, {options})")
        rows = [[v if v is not None else "" for v in r] for r in rel.fetchall()]
        return Loaded(list(rel.columns), rows, note=f"cols={len(rel.columns)}")

    return load


def systems() -> dict[str, Callable[[Path], Loaded]]:
    return {
        "dotjoin": load_dotjoin,
        "duckdb": duckdb_loader("ignore_errors = true"),
        "duckdb-auto": duckdb_loader("ignore_errors = true, strict_mode = false, null_padding = true"),
    }


# -- scoring ----------------------------------------------------------------------------------------------


def normalize(value: str) -> str:
    if value == "":
        return ""
    low = value.strip().lower()
    if low in ("true", "false"):
        return "1" if low == "true" else "0"
    try:
        return str(int(low))
    except ValueError:
        pass  # not an integer: try a float below
    try:
        number = float(low)
    except ValueError:
        return value.lower()
    return repr(number) if math.isfinite(number) else value.lower()


def prf(source: Counter[str], loaded: Counter[str]) -> tuple[float, float, float]:
    n_source, n_loaded = sum(source.values()), sum(loaded.values())
    if not n_source:
        return 1.0, 1.0, 1.0
    common = sum((source & loaded).values())
    if not common:
        return 0.0, 0.0, 0.0
    p, r = common / n_source, common / n_loaded
    return p, r, 2 * p * r / (p + r)


def measures(truth: list[list[str]], got: Loaded) -> tuple[float, ...]:
    if got.error:
        return (0.0,) * len(MEASURES)
    if not truth:
        return (1.0,) * len(MEASURES)
    loaded = [got.header, *got.rows]
    header = prf(Counter(map(normalize, truth[0])), Counter(map(normalize, got.header)))
    records = prf(
        Counter("".join(map(normalize, r)) for r in truth[1:]),
        Counter("".join(map(normalize, r)) for r in loaded[1:]),
    )
    cells = prf(Counter(c for r in truth for c in r), Counter(c for r in loaded for c in r))
    return (1.0, *header, *records, *cells)


@dataclass
class Result:
    variant: Variant
    system: str
    measures: tuple[float, ...]
    got: Loaded
    seconds: float

    @property
    def score(self) -> float:
        return sum(self.measures)


def run(variants: list[Variant], readers: dict[str, Callable[[Path], Loaded]], folder: Path) -> list[Result]:
    results = []
    for k, v in enumerate(variants):
        path = folder / f"{k:04d}_{v.table}_{v.name}{v.suffix}"
        path.write_bytes(v.data)
        for system, load in readers.items():
            start = time.perf_counter()
            try:
                got = load(path)
            except Exception as exc:  # a reader failure scores 0, like Pollock's "Application Error"
                got = Loaded(error=f"{type(exc).__name__}: {exc}".replace(str(path), "<file>"))
            results.append(Result(v, system, measures(v.truth, got), got, time.perf_counter() - start))
    return results


# -- report -----------------------------------------------------------------------------------------------


def family_scores(results: list[Result]) -> dict[tuple[str, str, str], float]:
    """(system, table, family) -> the share-weighted mean score of the family's variants."""
    total: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        acc = total.setdefault((r.system, r.variant.table, r.variant.family), [0.0, 0.0])
        acc[0] += r.score * r.variant.share
        acc[1] += r.variant.share
    return {k: s / w for k, (s, w) in total.items()}


def overall(fam: dict[tuple[str, str, str], float], system: str, weight: Callable[[str], float]) -> float:
    tables = sorted({t for s, t, _ in fam if s == system})
    per_table = []
    for t in tables:
        scores = {f: v for (s, tt, f), v in fam.items() if s == system and tt == t and f in POLLOCK}
        per_table.append(sum(weight(f) * v for f, v in scores.items()) / sum(weight(f) for f in scores))
    return sum(per_table) / len(per_table)


def describe(r: Result) -> str:
    if r.got.error:
        return "FAILED " + r.got.error.splitlines()[0][:160]
    truth = r.variant.truth
    expected = max(0, len(truth) - 1)
    want_header = truth[0] if truth else []
    hit = sum((Counter(map(normalize, want_header)) & Counter(map(normalize, r.got.header))).values())
    want = Counter("".join(map(normalize, row)) for row in truth[1:])
    got = Counter("".join(map(normalize, row)) for row in r.got.rows)
    return (
        f"{r.got.note}; header {hit}/{len(want_header)} names match; rows {len(r.got.rows)} "
        f"(expected {expected}), {sum((want & got).values())} match"
    )


def head(data: bytes, lines: int = 4, width: int = 110) -> str:
    text = data.decode("utf-8", "replace") if not data.startswith((b"\xff\xfe", b"\xfe\xff")) else "<utf-16>"
    out = [repr(line)[1:-1][:width] for line in text.splitlines(keepends=True)[:lines]]
    return "\n      ".join(out) if out else "<empty file>"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def report(results: list[Result], names: list[str], worst: int) -> None:
    fam = family_scores(results)
    families = list(dict.fromkeys(r.variant.family for r in results))
    families.sort(key=lambda f: (f not in POLLOCK, list(POLLOCK).index(f) if f in POLLOCK else 0, f))
    count = Counter(r.variant.family for r in results if r.system == names[0])
    print(f"{'pollution family':36} {'files':>6} {'here':>5} " + " ".join(f"{s:>11}" for s in names))
    for f in families:
        cells = [
            f"{_mean([v for (ss, _, ff), v in fam.items() if ss == s and ff == f]):11.2f}" for s in names
        ]
        files = str(POLLOCK[f][0]) if f in POLLOCK else "-"
        print(f"{f:36} {files:>6} {count[f]:5d} " + " ".join(cells))
    print()
    lines = [
        ("Pollock simple (est., file counts)", lambda f: POLLOCK[f][0]),
        ("Pollock weighted (est., weights)", lambda f: POLLOCK[f][1]),
        ("Pollock families, unweighted", lambda f: 1.0),
    ]
    for label, weight in lines:
        print(f"{label:47} " + " ".join(f"{overall(fam, s, weight):11.3f}" for s in names))
    means = [sum(r.score for r in results if r.system == s) / count.total() for s in names]
    print(
        f"{f'mean over all {count.total()} variants (extras included)':47} "
        + " ".join(f"{m:11.3f}" for m in means)
    )
    secs = [sum(r.seconds for r in results if r.system == s) for s in names]
    print(f"{'reading time, s':47} " + " ".join(f"{t:11.1f}" for t in secs))
    mean = {
        (s, f): _mean([v for (ss, _, ff), v in fam.items() if ss == s and ff == f])
        for s in names
        for f in families
    }
    gaps = sorted(families, key=lambda f: mean[names[0], f] - max(mean[s, f] for s in names[1:]))[:worst]
    print(f"\nLargest deficits of {names[0]} against the best other system:")
    for f in gaps:
        best = max(names[1:], key=lambda s: mean[s, f])
        print(f"  {f:36} {mean[names[0], f]:6.2f} vs {mean[best, f]:6.2f} ({best})")
    print(f"\nWorst {worst} families for {names[0]} (its worst variant in each; the other systems on it):")
    ranked = sorted(families, key=lambda f: mean[names[0], f])[:worst]
    by_variant = {(r.variant.table, r.variant.name, r.system): r for r in results}
    for f in ranked:
        own = [r for r in results if r.system == names[0] and r.variant.family == f]
        bad = min(own, key=lambda r: r.score)
        print(f"\n  {f}: {mean[names[0], f]:.2f}  (example {bad.variant.table}/{bad.variant.name})")
        print(f"      {head(bad.variant.data)}")
        for s in names:
            other = by_variant[(bad.variant.table, bad.variant.name, s)]
            print(f"    {s:11} {other.score:5.2f}  {describe(other)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", help="comma-separated clean tables to use (default: all)")
    parser.add_argument("--no-extras", action="store_true", help="only Pollock's families")
    parser.add_argument("--worst", type=int, default=8, help="worst families to explain")
    parser.add_argument("--keep", type=Path, help="write the polluted files here and keep them")
    args = parser.parse_args(argv)
    tables = clean_tables()
    if args.tables:
        wanted = set(args.tables.split(","))
        tables = [t for t in tables if t.name in wanted]
    variants = [v for t in tables for v in pollock_variants(t)]
    if not args.no_extras:
        variants += [v for t in tables for v in extra_variants(t)]
    readers = systems()
    print(f"{len(variants)} variants of {len(tables)} clean tables ({', '.join(t.name for t in tables)}), "
          f"{len(readers)} systems\n")  # fmt: skip
    start = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = run(variants, readers, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="reader_robustness_") as tmp:
            results = run(variants, readers, Path(tmp))
    report(results, list(readers), args.worst)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
