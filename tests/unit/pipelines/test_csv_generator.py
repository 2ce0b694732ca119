"""The messy-data generator: deterministic, reconciled, and its manifest agrees with FORMATS.md.

The strongest test here re-derives every manifest entry from the written files with a small reference
reader that knows only the rules documented in FORMATS.md (per-record decoding, header matching, the
timestamp and money grammars, reason precedence, the duplicate rule, imputation, fx as-of lookup).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dotjoin.cli.sample import sample
from dotjoin.exceptions import DataError
from dotjoin.pipelines.csv_etl.reasons import REASON_PRECEDENCE, REASONS, primary_reason
from dotjoin.simulate.csv_etl.generator import generate
from dotjoin.simulate.csv_etl.manifest import Manifest, iter_records

COMMITS_HEADER = [
    "repo", "sha", "author_name", "author_email", "authored_at", "committer_name", "committed_at",
    "message", "parents", "additions", "deletions",
]  # fmt: skip
SALES_HEADER = [
    "invoice_id", "line_no", "sold_at", "store_code", "sku", "customer_id", "quantity", "unit_price",
    "currency", "discount",
]  # fmt: skip
BOM = b"\xef\xbb\xbf"
HEX40 = re.compile(r"[0-9a-fA-F]{40}")
INTEGER = re.compile(r"[+-]?\d+")
SYMBOLS = (("US$", "USD"), ("R$", "BRL"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"),
           ("円", "JPY"), ("₹", "INR"))  # fmt: skip
SPACES = " \t\u00a0"


# --- a reference reader that knows only FORMATS.md --------------------------------------------------


def read_records(path: Path) -> tuple[list[str], list[tuple[int, list[bytes]]]]:
    """Header names and (start line, raw field bytes) per record; empty lines are not records."""
    data = path.read_bytes().removeprefix(BOM)
    reader = csv.reader(io.StringIO(data.decode("latin-1"), newline=""))  # latin-1: bytes 1:1
    header = next(reader)
    records = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return header, records
        if row:
            records.append((start, [field.encode("latin-1") for field in row]))


def decode(fields: list[bytes]) -> list[str] | None:
    """The per-record rule: UTF-8, else cp1252 (a repair), else bad_encoding (None)."""
    raw = b"\x00".join(fields)
    for codec in ("utf-8", "cp1252"):
        try:
            return raw.decode(codec).split("\x00")
        except UnicodeDecodeError:
            continue
    return None


def parse_ts(text: str) -> int | None:
    s = text.strip(" \t")
    if re.fullmatch(r"\d{9,10}", s):
        return int(s)
    formats = []
    if re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", s):
        formats.append("%d/%m/%Y %H:%M")
    elif re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}", s):
        formats.append("%a, %d %b %Y %H:%M:%S %z")
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})", s):
        try:
            return int(datetime.fromisoformat(s).timestamp())
        except ValueError:
            return None
    for fmt in formats:
        try:
            dt = datetime.strptime(s, fmt)
        except ValueError:
            return None
        return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())
    return None


def parse_money(text: str) -> tuple[Decimal, str | None] | None:
    s, marker = text.strip(SPACES), None
    for symbol, currency in SYMBOLS:
        if s.startswith(symbol) or s.endswith(symbol):
            s, marker = s.removeprefix(symbol).removesuffix(symbol), currency
            break
    else:
        m = re.fullmatch(r"([A-Z]{3})?[ \u00a0]*(.*?)[ \u00a0]*([A-Z]{3})?", s)
        if m and (m.group(1) or m.group(3)) and not (m.group(1) and m.group(3)):
            s, marker = m.group(2), m.group(1) or m.group(3)
    s = s.strip(SPACES).replace(" ", "").replace("\u00a0", "")
    if not re.fullmatch(r"[\d.,]*\d[\d.,]*", s):
        return None
    if "." in s and "," in s:
        decimal = "." if s.rindex(".") > s.rindex(",") else ","
        s = s.replace("," if decimal == "." else ".", "").replace(decimal, ".")
    else:
        for sep in ".,":
            if sep in s:
                decimal_like = s.count(sep) == 1 and len(s) - s.index(sep) - 1 in (1, 2)
                s = s.replace(sep, "." if decimal_like else "")
    if not re.fullmatch(r"\d+(\.\d+)?", s):
        return None
    return Decimal(s), marker


def parse_discount(text: str) -> Decimal | None:
    s = text.strip(" \t")
    if not s:
        return Decimal(0)
    if re.fullmatch(r"\d+(\.\d+)?%", s):
        return Decimal(s[:-1]) / 100
    return Decimal(s) if re.fullmatch(r"\d+(\.\d+)?", s) else None


class Reference:
    """Fates and totals of one data file, derived from the files alone."""

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.dir = directory
        self.now = int(datetime.fromisoformat(manifest.reference_time).timestamp())
        self.dataset = manifest.dataset
        if self.dataset == "retail":
            self.stores = {r["store_code"]: r["currency"] for r in _dict_rows(directory / "stores.csv")}
            self.skus = {r["sku"] for r in _dict_rows(directory / "products.csv")}
            self.fx: dict[str, dict[str, Decimal]] = {}
            for r in _dict_rows(directory / "fx_rates.csv"):
                self.fx.setdefault(r["currency"], {})[r["date"]] = Decimal(r["rate_to_usd"])

    def run(self, file: str) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
        header, records = read_records(self.dir / file)
        expected_header = COMMITS_HEADER if self.dataset == "commits" else SALES_HEADER
        assert [h.strip(" \t").lower() for h in header] == expected_header
        truths, seen = [], {}
        totals: dict[str, Decimal] = {}
        for line, raw in records:
            fields = decode(raw)
            if fields is None:
                reason, key, values, imputed = "bad_encoding", None, {}, []
            elif len(fields) != len(expected_header):
                reason, key, values, imputed = "ragged_row", None, {}, []
            else:
                f = [x.strip(" \t") for x in fields]
                check = self.commit if self.dataset == "commits" else self.sale
                reason, key, values, imputed = check(f)
            truth: dict[str, Any] = {"line": line}
            if reason is not None:
                truth.update(fate="quarantine", reason=reason)
            elif key in seen:
                truth.update(fate="duplicate", key=key, duplicate_of_line=seen[key])
            else:
                seen[key] = line
                truth.update(fate="load", key=key, imputed=sorted(imputed))
                for name, value in values.items():
                    totals[name] = totals.get(name, Decimal(0)) + value
            truths.append(truth)
        return truths, totals

    def commit(self, f: list[str]) -> tuple[str | None, str, dict[str, Decimal], list[str]]:
        defects = []
        if any(not f[i] for i in (0, 1, 4, 6, 9, 10)):
            defects.append("missing_field")
        if (f[1] and not HEX40.fullmatch(f[1])) or any(not HEX40.fullmatch(p) for p in f[8].split()):
            defects.append("bad_sha")
        times = [parse_ts(f[i]) for i in (4, 6)]
        if any(t is None and f[i] for t, i in zip(times, (4, 6), strict=True)):
            defects.append("bad_timestamp")
        if any(f[i] and not INTEGER.fullmatch(f[i]) for i in (9, 10)):
            defects.append("bad_number")
        if any(t is not None and t >= self.now for t in times):
            defects.append("future_timestamp")
        if any(INTEGER.fullmatch(f[i]) and int(f[i]) < 0 for i in (9, 10)):
            defects.append("negative_count")
        if defects:
            return primary_reason(defects), "", {}, []
        values = {
            "additions": Decimal(int(f[9])),
            "deletions": Decimal(int(f[10])),
            "merge_commits": Decimal(len(f[8].split()) >= 2),
            "commits": Decimal(1),
        }
        return None, f"{f[0].lower()}/{f[1].lower()}", values, []

    def sale(self, f: list[str]) -> tuple[str | None, str, dict[str, Decimal], list[str]]:
        invoice, line_no, sold_at, store, sku, customer, qty, price, currency, discount = f
        defects = []
        if any(not f[i] for i in (0, 1, 2, 3, 4, 6, 7)):
            defects.append("missing_field")
        ts = parse_ts(sold_at)
        if sold_at and ts is None:
            defects.append("bad_timestamp")
        if any(x and not INTEGER.fullmatch(x) for x in (line_no, qty)):
            defects.append("bad_number")
        money, disc = parse_money(price) if price else None, parse_discount(discount)
        if (price and money is None) or disc is None:
            defects.append("bad_amount")
        if ts is not None and ts >= self.now:
            defects.append("future_timestamp")
        if INTEGER.fullmatch(qty) and int(qty) <= 0:
            defects.append("non_positive_quantity")
        if store and store.upper() not in self.stores:
            defects.append("unknown_store")
        if sku and sku.upper() not in self.skus:
            defects.append("unknown_sku")
        imputed = [] if customer else ["customer_id"]
        cur = currency.upper() or (money[1] if money else None)
        if not cur and store.upper() in self.stores:
            cur = self.stores[store.upper()]
            imputed.append("currency")
        rate = None
        if cur and cur not in self.fx:
            defects.append("unknown_currency")
        elif cur and ts is not None:
            day = datetime.fromtimestamp(ts, UTC).date().isoformat()
            dates = [d for d in self.fx[cur] if d <= day]
            if not dates:
                defects.append("no_fx_rate")
            else:
                rate = self.fx[cur][max(dates)]
        if defects:
            return primary_reason(defects), "", {}, []
        assert money is not None and disc is not None and rate is not None
        revenue = int(qty) * money[0] * (1 - disc) * rate
        values = {"revenue_usd": revenue, "quantity": Decimal(int(qty)), "lines": Decimal(1)}
        return None, f"{invoice.upper()}/{int(line_no)}", values, imputed


def _dict_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def manifest_truths(directory: Path) -> list[dict[str, Any]]:
    out = []
    for r in iter_records(directory):
        truth: dict[str, Any] = {"line": r.line, "fate": r.fate}
        if r.fate == "quarantine":
            truth["reason"] = r.reason
        else:
            truth["key"] = r.key
        if r.fate == "duplicate":
            truth["duplicate_of_line"] = r.duplicate_of_line
        if r.fate == "load":
            truth["imputed"] = sorted(r.imputed)
        out.append(truth)
    return out


def rounded(totals: dict[str, Decimal]) -> dict[str, float]:
    return {k: float(v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) for k, v in totals.items()}


# --- tests -------------------------------------------------------------------------------------------


def test_reason_precedence_orders_every_reason_once() -> None:
    assert sorted(REASON_PRECEDENCE) == sorted(REASONS)
    assert primary_reason(["no_fx_rate", "ragged_row", "bad_amount"]) == "ragged_row"


@pytest.mark.parametrize(
    ("dataset", "dirty_rate", "seed"),
    [("commits", 0.3, 1), ("commits", 0.9, 2), ("retail", 0.3, 1), ("retail", 0.9, 2)],
)
def test_manifest_matches_the_documented_rules_row_for_row(
    tmp_path: Path, dataset: str, dirty_rate: float, seed: int
) -> None:
    head = generate(dataset, rows=2500, dirty_rate=dirty_rate, seed=seed, out=tmp_path)
    truths, totals = Reference(tmp_path, head).run(head.files[0])
    assert truths == manifest_truths(tmp_path)
    assert rounded(totals) == head.expected.totals


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_counts_reconcile(tmp_path: Path, dataset: str) -> None:
    head = generate(dataset, rows=3000, dirty_rate=0.4, seed=5, out=tmp_path)
    exp = head.expected
    assert exp.input == head.rows == exp.output + exp.quarantined + exp.duplicates == 3000
    assert sum(exp.quarantined_by_reason.values()) == exp.quarantined
    records = Manifest.read(tmp_path).records
    assert len(records) == 3000
    fates = {fate: sum(r.fate == fate for r in records) for fate in ("load", "duplicate", "quarantine")}
    assert fates == {"load": exp.output, "duplicate": exp.duplicates, "quarantine": exp.quarantined}
    assert exp.totals[{"commits": "commits", "retail": "lines"}[dataset]] == exp.output
    assert head.stream is not None and head.stream.end - head.stream.start == exp.output


def test_line_numbers_point_at_the_record_with_that_key(tmp_path: Path) -> None:
    head = generate("commits", rows=1500, dirty_rate=0.5, seed=3, out=tmp_path)
    assert "crlf" in head.file_dirt["commits.csv"] and head.dirt["empty_line"] > 0
    _, records = read_records(tmp_path / "commits.csv")
    at_line = {line: fields for line, fields in records}
    multiline = 0
    for truth in iter_records(tmp_path):
        fields = at_line[truth.line]  # a record starts exactly there (not an empty or continuation line)
        multiline += any(b"\n" in f for f in fields)
        if truth.key is not None:
            repo, sha = (f.decode("utf-8", "replace").strip().lower() for f in fields[:2])
            assert truth.key == f"{repo}/{sha}"
    assert len(at_line) == head.rows and multiline > 10


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, dataset: str) -> None:
    def files(directory: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}

    for name, seed in (("a", 9), ("b", 9), ("c", 10)):
        generate(dataset, rows=1200, dirty_rate=0.3, seed=seed, out=tmp_path / name)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a")["manifest.json"] != files(tmp_path / "c")["manifest.json"]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".part")]


COMMON_DIRT = {"bom", "crlf", "header_variant", "empty_line", "exact_duplicate", "near_duplicate",
               "precedence", "bad_repeat", "defect_on_loaded_key", "cp1252", "padded_whitespace",
               "quoted_all", "ts_iso_offset", "ts_rfc2822", "ts_epoch", "ts_dmy"}  # fmt: skip
DIRT = {
    "commits": COMMON_DIRT | {"multiline_message", "upper_sha", "email_case", "merge_per_branch"},
    "retail": COMMON_DIRT
    | {"money_locale", "currency_from_symbol", "currency_from_store", "missing_customer_id",
       "discount_percent", "discount_empty", "code_case"},
}  # fmt: skip
REASONS_OF = {
    "commits": {"ragged_row", "missing_field", "bad_sha", "bad_timestamp", "future_timestamp", "bad_number",
                "negative_count", "bad_encoding"},
    "retail": {"ragged_row", "missing_field", "bad_timestamp", "future_timestamp", "bad_number", "bad_amount",
               "non_positive_quantity", "unknown_store", "unknown_sku", "unknown_currency", "no_fx_rate"},
}  # fmt: skip


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_every_dirt_kind_and_reason_appears_at_a_high_dirty_rate(tmp_path: Path, dataset: str) -> None:
    head = generate(dataset, rows=4000, dirty_rate=0.6, seed=4, out=tmp_path)
    assert DIRT[dataset] <= set(head.dirt), DIRT[dataset] - set(head.dirt)
    assert set(head.expected.quarantined_by_reason) == REASONS_OF[dataset]
    records = Manifest.read(tmp_path).records
    # precedence records carry two defects and the reason that comes first
    pairs = [r for r in records if r.dirt[:1] == ["precedence"]]
    assert pairs and all(r.reason == primary_reason(r.dirt[1:3]) for r in pairs)  # type: ignore[arg-type]
    # a repeat of a quarantined record is quarantined again; a defective repeat of a loaded key too
    assert all(
        r.fate == "quarantine" for r in records if r.dirt[:1] in (["bad_repeat"], ["defect_on_loaded_key"])
    )


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_zero_dirty_rate_is_pristine_and_everything_loads(tmp_path: Path, dataset: str) -> None:
    head = generate(dataset, rows=1000, dirty_rate=0.0, seed=1, out=tmp_path)
    exp = head.expected
    assert (exp.output, exp.quarantined, exp.duplicates) == (1000, 0, 0)
    assert head.dirt == {} and head.file_dirt == {head.files[0]: []}
    data = (tmp_path / head.files[0]).read_bytes()
    assert not data.startswith(BOM) and b"\r\n" not in data and b"\n\n" not in data
    assert data.split(b"\n", 1)[0].decode() == ",".join(
        COMMITS_HEADER if dataset == "commits" else SALES_HEADER
    )
    assert len(data.splitlines()) == 1001
    assert all(r.fate == "load" and not r.dirt and not r.imputed for r in iter_records(tmp_path))


@pytest.mark.parametrize("dataset", ["commits", "retail"])
def test_overlap_export_repeats_loaded_records_and_continues_with_new_ones(
    tmp_path: Path, dataset: str
) -> None:
    first = generate(dataset, rows=2000, dirty_rate=0.2, seed=1, out=tmp_path / "a")
    later = generate(
        dataset,
        rows=1500,
        dirty_rate=0.3,
        seed=2,
        out=tmp_path / "b",
        overlap_from=tmp_path / "a",
        overlap_share=0.3,
    )
    repeated = round(0.3 * first.expected.output)
    assert later.expected.already_loaded == repeated
    assert later.overlap_from is not None and later.overlap_from.repeated == repeated
    assert (tmp_path / "b" / "stores.csv").exists() == (dataset == "retail")
    for ref in first.reference_files:  # the same reference data
        assert (tmp_path / "a" / ref).read_bytes() == (tmp_path / "b" / ref).read_bytes()

    ref_a, ref_b = Reference(tmp_path / "a", first), Reference(tmp_path / "b", later)
    truths_a, _ = ref_a.run(first.files[0])
    truths_b, totals_b = ref_b.run(later.files[0])
    assert truths_b == manifest_truths(tmp_path / "b") and rounded(totals_b) == later.expected.totals
    keys_a = {t["key"] for t in truths_a if t["fate"] == "load"}
    already = {r.key for r in iter_records(tmp_path / "b") if r.already_loaded}
    new = {r.key for r in iter_records(tmp_path / "b") if r.fate == "load" and not r.already_loaded}
    assert already <= keys_a and len(already) == repeated and not new & keys_a

    # same keys, same content: the repeated records' fields are byte-identical in both files
    def content(directory: Path, file: str, keys: set[str | None]) -> dict[str, list[bytes]]:
        by_line = dict(read_records(directory / file)[1])
        return {r.key: by_line[r.line] for r in iter_records(directory) if r.fate == "load" and r.key in keys}  # type: ignore[misc]

    assert content(tmp_path / "a", first.files[0], already) == content(
        tmp_path / "b", later.files[0], already
    )

    # loading both: the table holds first.totals + later.new_totals
    new_only = {k: totals_b[k] - sum_already for k, sum_already in _totals_of(ref_b, later, already).items()}
    assert rounded(new_only) == later.expected.new_totals
    assert first.expected.totals.keys() == later.expected.new_totals.keys()


def _totals_of(ref: Reference, head: Manifest, keys: set[str | None]) -> dict[str, Decimal]:
    """Totals over the given keys only (re-running the reference check on those records)."""
    _, records = read_records(ref.dir / head.files[0])
    lines = {r.line for r in iter_records(ref.dir) if r.fate == "load" and r.key in keys}
    totals: dict[str, Decimal] = {}
    for line, raw in records:
        if line in lines:
            fields = [x.strip(" \t") for x in decode(raw) or []]
            _, _, values, _ = (ref.commit if head.dataset == "commits" else ref.sale)(fields)
            for k, v in values.items():
                totals[k] = totals.get(k, Decimal(0)) + v
    return totals


def test_overlap_from_must_be_an_earlier_export_of_the_same_dataset(tmp_path: Path) -> None:
    generate("commits", rows=50, dirty_rate=0.1, seed=1, out=tmp_path / "a")
    with pytest.raises(DataError, match=r"no manifest\.json"):
        generate("commits", rows=50, dirty_rate=0.1, seed=1, out=tmp_path / "b", overlap_from=tmp_path / "x")
    with pytest.raises(DataError, match="holds a commits export, not retail"):
        generate("retail", rows=50, dirty_rate=0.1, seed=1, out=tmp_path / "b", overlap_from=tmp_path / "a")
    with pytest.raises(DataError, match="is the output directory"):
        generate("commits", rows=50, dirty_rate=0.1, seed=1, out=tmp_path / "a", overlap_from=tmp_path / "a")


def test_no_record_truth_writes_the_same_data_and_counts_only(tmp_path: Path) -> None:
    full = generate("retail", rows=1500, dirty_rate=0.3, seed=8, out=tmp_path / "full")
    lean = generate("retail", rows=1500, dirty_rate=0.3, seed=8, out=tmp_path / "lean", record_truth=False)
    assert (tmp_path / "full" / "sales.csv").read_bytes() == (tmp_path / "lean" / "sales.csv").read_bytes()
    assert lean.expected == full.expected and not lean.record_truth
    on_disk = Manifest.read(tmp_path / "lean")
    assert on_disk.records == [] and on_disk.record_truth is False


def test_manifest_layout_reads_whole_by_head_and_streamed(tmp_path: Path) -> None:
    generate("commits", rows=300, dirty_rate=0.5, seed=2, out=tmp_path)
    whole = Manifest.read(tmp_path)
    head = Manifest.read_head(tmp_path)
    assert head.records == [] and head.model_dump(exclude={"records"}) == whole.model_dump(
        exclude={"records"}
    )
    assert list(iter_records(tmp_path)) == whole.records
    (tmp_path / "copy").mkdir()
    whole.write(tmp_path / "copy")
    assert Manifest.read(tmp_path / "copy") == whole


def test_retail_reference_files_cover_every_sale(tmp_path: Path) -> None:
    head = generate("retail", rows=500, dirty_rate=0.0, seed=3, out=tmp_path)
    fx = _dict_rows(tmp_path / "fx_rates.csv")
    assert {r["rate_to_usd"] for r in fx if r["currency"] == "USD"} == {"1.00000000"}
    assert {r["currency"] for r in fx} == {"USD", "EUR", "GBP", "JPY", "INR", "BRL"}
    dates = sorted({r["date"] for r in fx})
    assert (dates[0], dates[-1], len(dates)) == ("2024-01-01", "2025-12-31", 731)
    assert head.reference_files == ["fx_rates.csv", "products.csv", "stores.csv"]


def test_cli_sample_json_and_usage_errors(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(sample)
    runner = CliRunner()
    out = tmp_path / "s"
    result = runner.invoke(
        app,
        ["commits", "--rows", "200", "--dirty-rate", "0.2", "--seed", "3", "--out", str(out), "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["manifest"]["expected"]["input"] == 200 and (out / "commits.csv").exists()
    assert Manifest.read(out).expected.model_dump() == report["manifest"]["expected"]

    table = runner.invoke(app, ["retail", "--rows", "100", "--out", str(tmp_path / "r"), "--no-record-truth"])
    assert table.exit_code == 0, table.output
    assert (
        "Quarantined by reason" in table.stdout
        and not (tmp_path / "r" / "manifest.json.records.part").exists()
    )
    assert runner.invoke(app, ["orders", "--out", str(out)]).exit_code == 2
    assert runner.invoke(app, ["commits", "--out", str(out), "--dirty-rate", "2"]).exit_code == 2
    missing = runner.invoke(
        app, ["commits", "--out", str(tmp_path / "z"), "--overlap-from", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 1 and isinstance(missing.exception, DataError)
