"""Declared schemas: a YAML file naming a table's columns, their types, formats, rules and checks.

The vocabulary is the Open Data Contract Standard's (ODCS v3) where it has a word for the thing:
``apiVersion``, ``kind``, ``name``, ``version``, ``status``, ``schema`` (one object per table) with
``properties`` holding ``name``, ``logicalType``, ``required``, ``primaryKey``, ``unique``,
``description``, ``examples`` and ``logicalTypeOptions``. What ODCS has no word for (how the source
file is written, the source header of a column, normalisers, the dedup policy) is ours: ``source``,
``header``, ``normalise``, ``dedup``. The checks of the table once written are ODCS too: ``quality``
rules (on a property or the table), ``relationships`` and ``slaProperties`` (latency), run by
:mod:`dotjoin.platform.quality.checks` with those the schema implies. An example::

    apiVersion: v3.0.2
    kind: DataContract
    name: orders
    version: 1.0.0
    status: draft
    source: {delimiter: ";", header: true}
    schema:
      - name: orders
        dedup: first           # first | last | none (needs a primaryKey)
        properties:
          - {name: order_id, logicalType: string, required: true, primaryKey: true}
          - name: ordered_at
            logicalType: timestamp
            logicalTypeOptions: {format: [iso8601, epoch_s], timezone: Europe/Paris}
          - {name: amount, logicalType: number, logicalTypeOptions: {decimalSeparator: ","}}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dotjoin.platform.files.dialect import DialectOptions
from dotjoin.platform.files.errors import InputFileError
from dotjoin.platform.files.types import TIMESTAMP_FORMATS
from dotjoin.platform.quality.reasons import REASONS

LogicalType = Literal["string", "integer", "number", "boolean", "date", "timestamp"]
LOGICAL_TYPES: tuple[str, ...] = get_args(LogicalType)
Normaliser = Literal["trim", "lower", "upper", "squeeze"]
#: What a value can break: its type (parse) or a declared rule.
Rule = Literal["parse", "pattern", "minimum", "maximum", "exclusiveMaximum"]
DATE_FORMATS = ("iso8601", "dmy", "mdy")
#: Values read as NULL (after trimming) unless a property says otherwise.
NULL_VALUES = ("", "NULL", "null", "NA", "N/A", "n/a", "None", "none", "NaN", "nan")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TypeOptions(_Model):
    """``logicalTypeOptions``: how values of a type are written."""

    format: list[str] | None = None  # timestamp: TIMESTAMP_FORMATS; date: DATE_FORMATS
    timezone: str = "UTC"  # naive timestamps are read in this zone (and flagged)
    decimalSeparator: str = "."
    groupSeparator: str | None = None
    currencySymbols: bool = False  # strip a leading/trailing $ € £ ¥ or USD/EUR/GBP from numbers
    trueValues: list[str] = Field(default=["true", "t", "yes", "y", "1"])
    falseValues: list[str] = Field(default=["false", "f", "no", "n", "0"])
    # Rules a parsed value must keep (ODCS names). A string must match ``pattern`` (RE2, whole value); a
    # number lie in [minimum, maximum]; a timestamp be before ``exclusiveMaximum`` ("now": the run's time).
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusiveMaximum: Literal["now"] | None = None


Metric = Literal["nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount"]
THRESHOLDS = ("mustBe", "mustNotBe", "mustBeGreaterThan", "mustBeGreaterOrEqualTo", "mustBeLessThan",
              "mustBeLessOrEqualTo", "mustBeBetween", "mustNotBeBetween")  # fmt: skip


class QualityRule(_Model):
    """An ODCS ``quality`` entry (v3.1): a library metric or a SQL query, and a threshold on its value.

    ``metric`` (``type: library``): ``nullValues``, ``missingValues`` (``arguments.missingValues``),
    ``invalidValues`` (``arguments.validValues`` and/or ``arguments.pattern``), ``duplicateValues``
    (of the property, or of ``arguments.properties`` on a table), ``rowCount``; in ``rows`` or ``percent``.
    ``query`` (``type: sql``): one value; ``${object}`` is the table, ``${property}`` the column.
    Without a threshold a library metric must be 0 (``rowCount``: above 0). ``text`` rules document.
    ``type: custom, engine: dotjoin, implementation: volumeAnomaly`` (``arguments.column``: a timestamp or
    date) scores the newest day's row count against the days before it
    (:mod:`dotjoin.platform.quality.anomaly`).
    """

    name: str | None = None
    type: Literal["library", "sql", "text", "custom"] = "library"
    metric: Metric | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    query: str | None = None
    engine: str | None = None  # type custom: the tool that runs it (``dotjoin``: volumeAnomaly)
    implementation: str | None = None
    description: str | None = None
    dimension: str | None = None
    severity: str = "error"
    unit: Literal["rows", "percent"] = "rows"
    mustBe: float | None = None
    mustNotBe: float | None = None
    mustBeGreaterThan: float | None = None
    mustBeGreaterOrEqualTo: float | None = None
    mustBeLessThan: float | None = None
    mustBeLessOrEqualTo: float | None = None
    mustBeBetween: tuple[float, float] | None = None
    mustNotBeBetween: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _complete(self) -> QualityRule:
        if self.type == "library" and self.metric is None:
            raise ValueError("a library quality rule needs a metric (nullValues, invalidValues, ...)")
        if self.type == "sql" and not self.query:
            raise ValueError("a sql quality rule needs a query")
        if self.type == "sql" and not any(getattr(self, t) is not None for t in THRESHOLDS):
            raise ValueError(f"a sql quality rule needs a threshold ({', '.join(THRESHOLDS)})")
        return self


class Relationship(_Model):
    """An ODCS ``relationships`` entry of a property: its values must exist in ``to`` (``table.column``)."""

    type: Literal["foreignKey"] = "foreignKey"
    to: str


class SlaProperty(_Model):
    """An ODCS ``slaProperties`` entry; ``latency`` (or ``freshness``) on ``element`` (``table.column``)
    is checked: the newest value is at most ``value`` ``unit`` old."""

    property: str
    value: float | str
    unit: str | None = None
    element: str | None = None
    description: str | None = None


class Property(_Model):
    """One column."""

    name: str
    logicalType: LogicalType = "string"
    required: bool = False
    primaryKey: bool = False
    unique: bool = False
    header: str | None = None  # the file's name for the column, when it differs from ``name``
    normalise: list[Normaliser] = Field(default=["trim"])
    nullValues: list[str] = Field(default=list(NULL_VALUES))
    logicalTypeOptions: TypeOptions = Field(default_factory=TypeOptions)
    description: str | None = None
    examples: list[str] | None = None
    confidence: float | None = None  # inference only: share of sampled values of this type
    # The reason code when this column breaks a rule, if not the default (parse: bad_<type>; pattern:
    # bad_value; minimum/maximum: out_of_range; exclusiveMaximum: future_timestamp).
    reasons: dict[Rule, str] = Field(default_factory=dict)
    quality: list[QualityRule] = Field(default_factory=list)
    relationships: list[Relationship] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reasons_known(self) -> Property:
        unknown = [code for code in self.reasons.values() if code not in REASONS]
        if unknown:
            raise ValueError(f"unknown reason code {unknown[0]!r} (see docs/reasons.md)")
        return self

    @model_validator(mode="after")
    def _formats_known(self) -> Property:
        formats = self.logicalTypeOptions.format
        known = TIMESTAMP_FORMATS if self.logicalType == "timestamp" else DATE_FORMATS
        if formats and self.logicalType in ("timestamp", "date"):
            unknown = [f for f in formats if f not in known]
            if unknown:
                raise ValueError(
                    f"unknown {self.logicalType} format {unknown[0]!r} (known: {', '.join(known)})"
                )
        return self

    @property
    def source_name(self) -> str:
        return self.header or self.name


class Table(_Model):
    """One ``schema`` object: a table and its columns."""

    name: str
    physicalName: str | None = None  # the table in the warehouse, when not ``name``
    properties: list[Property]
    dedup: Literal["first", "last", "none"] = "first"
    quality: list[QualityRule] = Field(default_factory=list)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties if p.primaryKey)


class Source(_Model):
    """How the source files are written; unset parts are detected."""

    format: Literal["delimited", "jsonl"] | None = None  # None: JSON lines by name or content, else delimited
    delimiter: str | None = None
    quote: str | None = None
    escape: str | None = None
    header: bool | None = None
    skipLines: int | None = None
    comment: str | None = None
    encoding: str | None = None
    padShortRows: bool | None = None

    def options(self) -> DialectOptions:
        return DialectOptions(
            delimiter=self.delimiter,
            quote=self.quote,
            escape=self.escape,
            header=self.header,
            skip_lines=self.skipLines,
            comment=self.comment,
            pad_short_rows=self.padShortRows,
        )


class Schema(_Model):
    """A schema file: one table read from delimited files."""

    apiVersion: str = "v3.0.2"
    kind: Literal["DataContract"] = "DataContract"
    id: str | None = None
    name: str
    version: str = "1.0.0"
    status: str = "draft"
    source: Source = Field(default_factory=Source)
    schema_: list[Table] = Field(alias="schema", min_length=1, max_length=1)
    slaProperties: list[SlaProperty] = Field(default_factory=list)

    @property
    def table(self) -> Table:
        return self.schema_[0]

    def to_yaml(self) -> str:
        data = self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def load_schema(path: Path) -> Schema:
    """Read and validate a schema file.

    Raises:
        InputFileError: unreadable YAML or a field that breaks the rules, naming the file and field.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such schema file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: not a YAML schema file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: a schema file is a YAML mapping (apiVersion, name, schema...)")
    try:
        return Schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputFileError(f"{path}: {where}: {first['msg']}") from None


def column_name(header: str) -> str:
    """A table column name for a header: snake_case, letters, digits and underscores.

    >>> [column_name(h) for h in ("BilledCost", "temperature_2m (°C)", "lineItem/tenantId", " Age ", "1st")]
    ['billed_cost', 'temperature_2m_c', 'line_item_tenant_id', 'age', 'c_1st']
    """
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", header.strip())
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not name:
        return "column"
    return f"c_{name}" if name[0].isdigit() else name
