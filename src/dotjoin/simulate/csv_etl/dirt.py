"""Building blocks of the messy-data generator: the record type, value renderers (clean and dirty) and
the text pools.

Every rule a pipeline must apply to what is rendered here is written down in the pipeline's
``src/dotjoin/pipelines/csv_etl/FORMATS.md``; ``tests/unit/pipelines/test_csv_generator.py`` re-derives
every manifest entry from the files with those rules alone.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random

logger = logging.getLogger(__name__)

# Valid timestamps lie in [PERIOD_START, PERIOD_END): 2024-01-01 .. 2025-12-31, UTC.
PERIOD_START = calendar.timegm((2024, 1, 1, 0, 0, 0))
PERIOD_END = calendar.timegm((2026, 1, 1, 0, 0, 0))
# "Now" for the future_timestamp rule. Any reference time in [REFERENCE_TIME, 2099-01-01) (the real clock
# included) classifies every generated record the same way.
REFERENCE_TIME = "2026-01-01T00:00:00Z"
# future_timestamp defects lie in [FUTURE_START, FUTURE_END): years 2099 .. 2149.
FUTURE_START = calendar.timegm((2099, 1, 1, 0, 0, 0))
FUTURE_END = calendar.timegm((2150, 1, 1, 0, 0, 0))
# retail no_fx_rate defects: valid sale times in 2022-2023, before the first rate in fx_rates.csv.
STALE_START = calendar.timegm((2022, 1, 1, 0, 0, 0))

CHUNK = 1024  # records per chunk of the clean stream (each chunk has its own seeded RNG: random access)


@dataclass(slots=True)
class Rec:
    """One data record as the writer emits it, with its truth.

    Attributes:
        fields: The rendered field values (CSV quoting is the writer's job).
        key: The normalised natural key (records that can load).
        reason: The quarantine reason; ``None`` for a record that loads (or is a duplicate).
        encoding: How the record's text is encoded in the file: ``utf-8``, ``cp1252`` or ``shift_jis``.
        quote_all: Quote every field, not only those that need it.
        dirt: What the generator did to the record (manifest ``dirt``).
        imputed: Fields the pipeline must impute (manifest ``imputed``).
        values: Dataset numbers summed into the clean totals when the record loads.
        ts: The instants (epoch seconds) of the record's timestamp columns, in column order.
        merge: A merge commit (two or more parents).
    """

    fields: list[str]
    key: str | None = None
    reason: str | None = None
    encoding: str = "utf-8"
    quote_all: bool = False
    dirt: list[str] = field(default_factory=list)
    imputed: tuple[str, ...] = ()
    values: tuple[int | Decimal, ...] = ()
    ts: tuple[int, ...] = ()
    merge: bool = False

    def copy(self) -> Rec:
        """A copy whose fields and dirt can be changed without touching this record."""
        return Rec(
            list(self.fields),
            self.key,
            self.reason,
            self.encoding,
            self.quote_all,
            list(self.dirt),
            self.imputed,
            self.values,
            self.ts,
            self.merge,
        )


def pick(rng: Random, items: Sequence[str]) -> str:
    """A uniformly chosen item (faster than ``Random.choice``)."""
    return items[int(rng.random() * len(items))]


def weighted(rng: Random, table: Sequence[tuple[str, float]]) -> str:
    """A name from ``(name, weight)`` pairs, chosen in proportion to its weight."""
    total = sum(w for _, w in table)
    x = rng.random() * total
    for name, w in table:
        x -= w
        if x < 0:
            return name
    return table[-1][0]


# --- timestamps ------------------------------------------------------------------------------------

TS_FORMATS = ("ts_iso_offset", "ts_rfc2822", "ts_epoch", "ts_dmy")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# UTC offsets in minutes, including the half- and three-quarter-hour zones.
OFFSETS = (60, 120, -300, -480, 330, 540, -180, 0, 345, -210, 600, -420)

BAD_TIMESTAMPS = (
    "0000-00-00 00:00:00",
    "2024-02-30T10:00:00Z",
    "31/13/2024 10:00",
    "2024-03-05T25:61:00Z",
    "Tue, 32 Mar 2024 10:00:00 +0000",
    "yesterday",
    "N/A",
    "2024-13-01T10:00:00Z",
)


def iso_z(ts: int) -> str:
    """The canonical rendering: ISO 8601 in UTC with ``Z``."""
    t = time.gmtime(ts)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"


def _offset_text(offset_min: int, colon: bool) -> str:
    sign = "-" if offset_min < 0 else "+"
    h, m = divmod(abs(offset_min), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def iso_offset(ts: int, offset_min: int, sep: str = "T") -> str:
    """ISO 8601 in local time with a ``+hh:mm`` offset (``sep`` is ``T`` or a space)."""
    t = time.gmtime(ts + offset_min * 60)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}{sep}{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f"{_offset_text(offset_min, colon=True)}"
    )


def rfc2822(ts: int, offset_min: int) -> str:
    """RFC 2822, e.g. ``Tue, 03 Mar 2026 14:05:00 +0100``."""
    t = time.gmtime(ts + offset_min * 60)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {_offset_text(offset_min, colon=False)}"
    )


def dmy(ts: int) -> str:
    """``dd/mm/yyyy hh:mm`` in UTC; only for instants on a whole minute (the format has no seconds)."""
    t = time.gmtime(ts)
    return f"{t.tm_mday:02d}/{t.tm_mon:02d}/{t.tm_year:04d} {t.tm_hour:02d}:{t.tm_min:02d}"


def render_ts(rng: Random, ts: int, fmt: str, offsets: Sequence[int] = OFFSETS) -> tuple[str, str]:
    """Render ``ts`` in the valid format ``fmt``; returns ``(text, format)``.

    ``ts_dmy`` falls back to ``ts_rfc2822`` when ``ts`` is not on a whole minute, so the text always
    denotes exactly ``ts``.
    """
    if fmt == "ts_dmy" and ts % 60:
        fmt = "ts_rfc2822"
    if fmt == "ts_iso_offset":
        return iso_offset(
            ts, offsets[int(rng.random() * len(offsets))], "T" if rng.random() < 0.7 else " "
        ), fmt
    if fmt == "ts_rfc2822":
        return rfc2822(ts, offsets[int(rng.random() * len(offsets))]), fmt
    if fmt == "ts_epoch":
        return str(ts), fmt
    if fmt == "ts_dmy":
        return dmy(ts), fmt
    return iso_z(ts), "ts_iso_z"


def other_ts_format(rng: Random, ts: int) -> tuple[str, str]:
    """``ts`` in a randomly chosen non-canonical valid format."""
    return render_ts(rng, ts, pick(rng, TS_FORMATS))


def future_ts(rng: Random) -> str:
    """A valid timestamp in 2099..2149, in any supported format."""
    ts = FUTURE_START + int(rng.random() * (FUTURE_END - FUTURE_START)) // 60 * 60
    return render_ts(rng, ts, pick(rng, (*TS_FORMATS, "ts_iso_z")))[0]


# --- numbers and money -----------------------------------------------------------------------------

BAD_INTEGERS = ("n/a", "12a", "1.5", "twelve", "?", "NaN", "1,5")
CURRENCY_DECIMALS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "INR": 2, "BRL": 2}
NBSP = "\u00a0"
# Per currency: (thousands separator, decimal separator, prefix, suffix, indian grouping).
# A style with neither prefix nor suffix carries no currency marker.
MoneyStyle = tuple[str, str, str, str, bool]
MONEY_STYLES: dict[str, tuple[MoneyStyle, ...]] = {
    "USD": ((",", ".", "$", "", False), (",", ".", "USD ", "", False), (",", ".", "US$", "", False),
            (",", ".", "", " USD", False), (",", ".", "", "", False)),
    "EUR": ((".", ",", "", " €", False), (",", ".", "€", "", False), (".", ",", "EUR ", "", False),
            (NBSP, ",", "", NBSP + "€", False), (".", ",", "", "", False)),
    "GBP": ((",", ".", "£", "", False), (",", ".", "GBP ", "", False), (",", ".", "", "", False)),
    "JPY": ((",", ".", "¥", "", False), (",", ".", "JPY ", "", False), (",", ".", "", "円", False),
            (",", ".", "", "", False)),
    "INR": ((",", ".", "₹", "", True), (",", ".", "INR ", "", True), (",", ".", "", "", True)),
    "BRL": ((".", ",", "R$ ", "", False), (".", ",", "R$", "", False), (".", ",", "BRL ", "", False),
            (".", ",", "", "", False)),
}  # fmt: skip
# Markers a unit_price may carry, longest first (US$ and R$ before $).
CURRENCY_MARKERS: tuple[tuple[str, str], ...] = (
    ("US$", "USD"), ("R$", "BRL"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"), ("円", "JPY"),
    ("₹", "INR"),
    *((code, code) for code in CURRENCY_DECIMALS),
)  # fmt: skip
BAD_AMOUNTS = ("N/A", "#VALUE!", "TBD", "1O.50", "$", "12;50", "free")
BAD_DISCOUNTS = ("abc", "N/A", "ten%", "-")


def money_plain(amount: Decimal, currency: str) -> str:
    """The canonical rendering: digits, a ``.`` and the currency's decimals (none for JPY)."""
    return f"{amount:.{CURRENCY_DECIMALS.get(currency, 2)}f}"


def _group(digits: str, sep: str, indian: bool) -> str:
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    size = 2 if indian else 3
    groups = []
    while len(head) > size:
        groups.append(head[-size:])
        head = head[:-size]
    groups.append(head)
    return sep.join(reversed(groups)) + sep + tail


def money_styled(amount: Decimal, currency: str, style: MoneyStyle) -> str:
    """``amount`` in a locale style, e.g. ``$1,234.50``, ``1.234,50 €``, ``₹1,23,456.50``."""
    thousands, decimal, prefix, suffix, indian = style
    whole, _, frac = money_plain(amount, currency).partition(".")
    text = _group(whole, thousands, indian) + (decimal + frac if frac else "")
    return prefix + text + suffix


def has_marker(style: MoneyStyle) -> bool:
    """Whether the style names the currency (symbol or ISO code)."""
    return bool(style[2] or style[3])


# --- text ------------------------------------------------------------------------------------------

# (name, email): plain ASCII, accented (every character in cp1252), and UTF-8-only scripts.
AUTHORS_ASCII = (
    ("Alice Smith", "alice.smith@example.com"),
    ("Bob Jones", "bob@example.org"),
    ("Carol Nguyen", "carol.nguyen@example.net"),
    ("Dmitri Ivanov", "dmitri@example.com"),
    ("Priya Patel", "priya.patel@example.in"),
    ("Wei Zhang", "wei.zhang@example.cn"),
    ("Kwame Mensah", "kwame@example.gh"),
    ("Sara Lee", "sara.lee@example.com"),
    ("Tom Baker", "tbaker@example.co.uk"),
    ("Yuki Tanaka", "yuki@example.jp"),
    ("Omar Haddad", "omar.haddad@example.com"),
    ("Lena Fischer", "lena.fischer@example.de"),
    ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com"),
)
AUTHORS_CP1252 = (
    ("José García", "jose.garcia@example.es"),
    ("Jürgen Müller", "juergen.mueller@example.de"),
    ("François Lefèvre", "francois@example.fr"),
    ("Zoë Brontë", "zoe@example.co.uk"),
    ("Søren Kjær", "soren@example.dk"),
    ("Ana Conceição", "ana.conceicao@example.br"),
    ("Björk Guðmundsdóttir", "bjork@example.is"),
    ("Renée Côté", "renee.cote@example.ca"),
    ("Ignacio Núñez", "ignacio@example.ar"),
)
AUTHORS_UTF8 = (
    ("Łukasz Nowak", "lukasz.nowak@example.pl"),
    ("王伟", "wangwei@example.cn"),
    ("Έλενα Παππά", "elena@example.gr"),
    ("Игорь Петров", "igor@example.ru"),
    ("山田太郎", "taro.yamada@example.jp"),
)
AUTHORS = AUTHORS_ASCII * 3 + AUTHORS_CP1252 + AUTHORS_UTF8
# A record from a Shift_JIS system: its bytes (0x81 in "、" and "ー") are invalid in UTF-8 *and* cp1252.
SJIS_AUTHOR = ("山田太郎", "taro.yamada@example.jp")
SJIS_MESSAGES = ("バグ修正、テスト追加", "ドキュメント更新、リンク修正", "パーサーのエラー処理を改善")

REPOS = (
    "apache/spark", "apache/kafka", "apache/airflow", "apache/iceberg", "apache/arrow", "duckdb/duckdb",
    "pola-rs/polars", "pandas-dev/pandas", "numpy/numpy", "python/cpython", "torvalds/linux",
    "rust-lang/rust", "golang/go", "kubernetes/kubernetes", "dbt-labs/dbt-core", "trinodb/trino",
    "postgres/postgres", "redis/redis", "fastapi/fastapi", "pydantic/pydantic", "astral-sh/ruff",
    "dotjoin/dotjoin", "grafana/grafana", "prometheus/prometheus", "debezium/debezium",
    "mlflow/mlflow", "scikit-learn/scikit-learn", "pytorch/pytorch", "huggingface/transformers",
    "openlineage/openlineage",
)  # fmt: skip
_VERBS = ("Fix", "Add", "Refactor", "Document", "Remove unused", "Speed up", "Simplify", "Test", "Rename")
_THINGS = (
    "null handling", "retry logic", "timezone parsing", "memory leak", "race condition", "CLI flag",
    "error message", "schema check", "cache eviction", "connection pool", "unicode escaping", "logging",
)  # fmt: skip
_MODULES = (
    "reader",
    "writer",
    "planner",
    "scheduler",
    "catalog",
    "executor",
    "parser",
    "sink",
    "api",
    "docs",
)
_DEPS = ("numpy", "pyarrow", "pydantic", "typer", "ruff", "pytest", "urllib3", "protobuf")


def commit_subject(rng: Random) -> str:
    """A one-line commit message without delimiters or quotes."""
    if rng.random() < 0.15:
        dep = pick(rng, _DEPS)
        a, b = 1 + int(rng.random() * 9), int(rng.random() * 30)
        return f"Bump {dep} from {a}.{b}.0 to {a}.{b + 1}.0"
    return f"{pick(rng, _VERBS)} {pick(rng, _THINGS)} in {pick(rng, _MODULES)}"


def multiline_message(rng: Random, subject: str, author: tuple[str, str]) -> str:
    """A message with embedded newlines, delimiters and double quotes (CSV-quoted, all valid)."""
    n = 1 + int(rng.random() * 9000)
    return (
        f'{subject}\n\nThe "{pick(rng, _THINGS)}" path was slow, so cache it, then retry.\n'
        f'Closes #{n}, see also "#{n + 1}".\n\nSigned-off-by: {author[0]} <{author[1]}>'
    )


def pad(rng: Random, text: str) -> str:
    """``text`` with surrounding spaces (trimmed by the pipeline)."""
    return " " * (1 + int(rng.random() * 2)) + text + " " * int(rng.random() * 3)


def mixed_case(rng: Random, text: str) -> str:
    """``text`` with its letters' case changed (the value is case-insensitive)."""
    variant = rng.random()
    if variant < 0.4:
        return text.upper()
    if variant < 0.7:
        return text.title()
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(text))


def header_variant(rng: Random, name: str) -> str:
    """A header name with its case and surrounding spaces changed, e.g. `` Repo `` or ``SHA``."""
    v = rng.random()
    out = name.upper() if v < 0.3 else name.title() if v < 0.6 else name
    if rng.random() < 0.5:
        out = " " + out + (" " if rng.random() < 0.5 else "")
    return out
