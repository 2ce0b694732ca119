"""Checks on a written table, declared in its contract and compiled to SQL for DuckDB, PostgreSQL and Trino.

The checks of a dataset live where the dataset is declared, its ODCS contract
(:mod:`dotjoin.platform.files.schema`): the ``quality`` rules written there, and those the schema implies
— ``required`` → ``nullValues`` = 0, ``primaryKey`` / ``unique`` → ``duplicateValues`` = 0,
``minimum`` / ``maximum`` → ``invalidValues`` (out of range) = 0, ``relationships`` → every value
exists in the referenced column, ``slaProperties`` ``latency`` → the newest value is recent enough.

One statement scans the table for every row-level metric at once (``COUNT(*) FILTER (WHERE ...)``:
null, missing, invalid, range, and the row count); duplicates, relationships, SQL rules and latency are
one statement each. A failing check fetches a few failing rows' keys (the primary key, else the column;
the smallest first, so a sample is the same on every engine and run) as its sample. Values are bound as
parameters (``$n`` on the warehouse, ``?`` on Trino); names are quoted (psycopg's ``sql.Identifier`` on
PostgreSQL). Each result is one :class:`~dotjoin.platform.runs.report.Check`: observed value, threshold,
failed rows, sample, duration.

Example::

    with open_warehouse(settings) as wh:
        for check in run_checks(load_schema(path), CheckEngine.of(wh)):
            run.record(check)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from psycopg import sql as pg_sql

from dotjoin.exceptions import ConfigError
from dotjoin.platform.files.schema import Property, QualityRule, Schema, SlaProperty
from dotjoin.platform.runs.report import Check, Severity

Dialect = Literal["duckdb", "postgres", "trino"]
SAMPLE_SIZE = 5
_WARNING = {"warning", "warn", "info", "low", "minor"}
_UNITS_S = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_PLACEHOLDER = re.compile(r"\$\{(object|table|property|column)\}")


@dataclass(frozen=True)
class CheckEngine:
    """Where checks run: a dialect and its query function (SQL, parameters) → Arrow."""

    dialect: Dialect
    query: Callable[[str, Sequence[Any]], pa.Table]

    @classmethod
    def of(cls, warehouse: Any) -> CheckEngine:
        """The engine of a :class:`~dotjoin.platform.warehouse.Warehouse` (DuckDB or PostgreSQL)."""
        return cls(warehouse.dialect, lambda text, params: warehouse.query(text, list(params)))

    def quote(self, name: str) -> str:
        """A possibly qualified name (``schema.table``), quoted part by part."""
        parts = name.split(".")
        if self.dialect == "postgres":
            return pg_sql.Identifier(*parts).as_string()
        return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


@dataclass
class _Params:
    """Bound values in the order their placeholders appear."""

    dialect: Dialect
    values: list[Any] = field(default_factory=list)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self.dialect == "trino" else f"${len(self.values)}"


Predicate = Callable[[CheckEngine, _Params], str]
#: (engine, quoted table, the partition's WHERE or "", its parameters) → value or (value, failed, sample)
Measure = Callable[[CheckEngine, str, str, list[Any]], Any]


@dataclass(frozen=True)
class _Rule:
    """One compiled check."""

    name: str
    severity: Severity
    threshold: QualityRule  # its must* fields
    unit: Literal["rows", "percent"] = "rows"
    predicate: Predicate | None = None  # row-level: SQL true for a failing row
    keys: tuple[str, ...] = ()  # the columns a failing row's sample shows
    measure: Measure | None = None  # its own statement: value, or (value, failed rows, sample)
    row_count: bool = False  # rowCount: the scan's count


def run_checks(
    contract: Schema,
    engine: CheckEngine,
    *,
    table: str | None = None,
    partition: tuple[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Check]:
    """Every check of ``contract`` on ``table`` (default: the contract's ``physicalName`` or name).

    ``partition`` (``(column, value)``) restricts the row-level, duplicate and relationship checks to
    that partition and names it in each result. SQL rules see the whole table.

    Raises:
        ConfigError: a rule that cannot be compiled (an unknown column, a bad argument), naming it.
    """
    spec = contract.table
    target = table or spec.physicalName or spec.name
    now = now or datetime.now(UTC)
    rules = _compile(contract)
    label = f"{partition[0]}={partition[1]}" if partition else None
    scan = [r for r in rules if r.predicate is not None]
    results: list[Check] = []
    began = time.perf_counter()
    rows, counts = _scan(engine, target, scan, partition)
    scan_s = (time.perf_counter() - began) / max(1, len(scan))
    for rule, failing in zip(scan, counts, strict=True):
        value = 100.0 * failing / rows if rule.unit == "percent" and rows else failing
        result = _result(rule, target, label, value, failing, [], scan_s)
        if not result.passed and failing:  # a few failing rows' keys, for whoever looks into it
            sample = _sample(engine, target, rule, partition)
            result = _result(rule, target, label, value, failing, sample, scan_s)
        results.append(result)
    for rule in rules:
        if rule.row_count:
            results.append(_result(rule, target, label, rows, None, [], scan_s))
            continue
        if rule.measure is None:
            continue
        began = time.perf_counter()
        where, params = _where(engine, partition)
        measured = rule.measure(engine, engine.quote(target), where, params)
        if isinstance(measured, Check):  # a rule that judges itself (an anomaly score)
            duration = round(time.perf_counter() - began, 6)
            results.append(measured.model_copy(update={"dataset": target, "duration_s": duration}))
            continue
        value, failed, sample = measured if isinstance(measured, tuple) else (measured, None, [])
        if rule.unit == "percent" and rows and failed is not None:
            value = 100.0 * failed / rows
        results.append(_result(rule, target, label, value, failed, sample, time.perf_counter() - began))
    for sla in contract.slaProperties:
        if sla.property in ("latency", "freshness"):
            results.append(_freshness(engine, target, spec.name, sla, now))
    return results


def check_table(
    run: Any,
    warehouse: Any,
    contract_path: Path,
    *,
    table: str | None = None,
    partition: tuple[str, Any] | None = None,
    now: datetime | None = None,
) -> list[Check]:
    """:func:`run_checks` of the contract at ``contract_path`` on a warehouse table, each result recorded
    on ``run`` (a :class:`~dotjoin.platform.runs.report.Run`): what a pipeline calls after it writes."""
    from dotjoin.platform.files.schema import load_schema

    checks = run_checks(load_schema(contract_path), CheckEngine.of(warehouse), table=table,
                        partition=partition, now=now)  # fmt: skip
    for check in checks:
        run.record(check)
    return checks


# -- compiling ------------------------------------------------------------------------------------------


def _compile(contract: Schema) -> list[_Rule]:
    spec = contract.table
    columns = {p.name: p for p in spec.properties}
    key = spec.key
    rules: list[_Rule] = []
    implied = QualityRule(metric="nullValues")  # mustBe 0 by default
    for p in spec.properties:
        keys = key or (p.name,)
        if p.required:
            rules.append(_row_rule(f"nullValues:{p.name}", "error", implied, _null(p.name), keys))
        if p.unique:
            rules.append(_duplicates(f"duplicateValues:{p.name}", "error", implied, (p.name,)))
        low, high = p.logicalTypeOptions.minimum, p.logicalTypeOptions.maximum
        if low is not None or high is not None:
            rules.append(
                _row_rule(f"invalidValues:{p.name}", "error", implied, _range(p.name, low, high), keys)
            )
        for rel in p.relationships:
            rules.append(_relationship(p.name, rel.to))
        rules += [_explicit(q, p, key) for q in p.quality if q.type in ("library", "sql")]
    if key:
        rules.append(_duplicates(f"duplicateValues:{','.join(key)}", "error", implied, key))
    for q in spec.quality:
        if q.type == "custom" and q.engine == "dotjoin":
            rules.append(_custom(contract.name, q))
            continue
        if q.type not in ("library", "sql"):
            continue
        if q.metric not in (None, "rowCount", "duplicateValues"):
            raise ConfigError(f"{contract.name}: table quality metric {q.metric!r} needs a property")
        names = q.arguments.get("properties")
        if q.metric == "duplicateValues":
            unknown = [n for n in names or [] if n not in columns]
            if not names or unknown:
                raise ConfigError(
                    f"{contract.name}: duplicateValues on the table needs arguments.properties "
                    f"(columns of the table){f'; unknown: {unknown[0]}' if unknown else ''}"
                )
        rules.append(_explicit(q, None, key))
    unique = {r.name: r for r in reversed(rules)}  # a key column also marked unique: one check, the first
    return [r for r in rules if unique[r.name] is r]


def _custom(contract: str, q: QualityRule) -> _Rule:
    """A rule dotjoin runs itself: ``volumeAnomaly`` on ``arguments.column``."""
    column = q.arguments.get("column")
    if q.implementation != "volumeAnomaly" or not column:
        raise ConfigError(
            f"{contract}: a dotjoin custom rule is implementation volumeAnomaly with arguments.column"
        )

    def measure(e: CheckEngine, table: str, where: str, params: list[Any]) -> Check:
        from dotjoin.platform.quality.anomaly import as_check, score

        day = f"CAST({e.quote(column)} AS DATE)"
        counts = e.query(
            f"SELECT {day} AS day, COUNT(*) AS n FROM {table} {where} GROUP BY 1 ORDER BY 1", params
        )
        days, rows = counts.column("day").to_pylist(), counts.column("n").to_pylist()
        if not days:
            return Check(name=q.name or "anomaly:volume", passed=True, detail="no rows: nothing to score",
                         severity="warning")  # fmt: skip
        found = dict(zip(days, rows, strict=True))
        span = [days[0] + timedelta(days=n) for n in range((days[-1] - days[0]).days + 1)]
        series = [float(found.get(d, 0)) for d in span]  # a day without rows is a count of 0, not a gap
        check = as_check(score(series, multiplicative=True)[-1], dataset=table, metric="volume")
        severity = "warning" if check.severity == "warning" else _severity(q.severity)  # as the contract says
        return check.model_copy(
            update={"name": q.name or check.name, "partition": f"day={span[-1]}", "severity": severity}
        )

    return _Rule(q.name or "anomaly:volume", _severity(q.severity), q, measure=measure)


def _severity(text: str) -> Severity:
    return "warning" if text.lower() in _WARNING else "error"


def _explicit(q: QualityRule, p: Property | None, key: tuple[str, ...]) -> _Rule:
    column = p.name if p else None
    name = q.name or (f"{q.metric or 'sql'}:{column}" if column else (q.metric or "sql"))
    severity = _severity(q.severity)
    keys = key or ((column,) if column else ())
    if q.type == "sql":
        return _Rule(name, severity, q, q.unit, measure=_sql_rule(q.query or "", column))
    if q.metric == "rowCount":
        default = q if _has_threshold(q) else q.model_copy(update={"mustBeGreaterThan": 0.0})
        return _Rule(name, severity, default, row_count=True)
    if q.metric == "duplicateValues":
        return _duplicates(name, severity, q, tuple(q.arguments.get("properties") or [column]))
    assert column is not None  # checked by _compile for table rules
    if q.metric == "nullValues":
        return _row_rule(name, severity, q, _null(column), keys)
    if q.metric == "missingValues":
        missing = [v for v in q.arguments.get("missingValues", []) if v is not None]
        return _row_rule(name, severity, q, _missing(column, missing), keys)
    valid, pattern = q.arguments.get("validValues"), q.arguments.get("pattern")
    if valid is None and pattern is None:
        raise ConfigError(f"invalidValues on {column}: give arguments.validValues or arguments.pattern")
    return _row_rule(name, severity, q, _invalid(column, valid, pattern), keys)


def _has_threshold(q: QualityRule) -> bool:
    return any(getattr(q, t) is not None for t in _THRESHOLD_TEXT)


def _row_rule(
    name: str, severity: Severity, q: QualityRule, predicate: Predicate, keys: tuple[str, ...]
) -> _Rule:
    return _Rule(name, severity, q, q.unit, predicate=predicate, keys=keys)


def _null(column: str) -> Predicate:
    return lambda e, _: f"{e.quote(column)} IS NULL"


def _missing(column: str, missing: list[Any]) -> Predicate:
    def predicate(e: CheckEngine, bind: _Params) -> str:
        c = e.quote(column)
        values = ", ".join(bind(v) for v in missing)
        return f"{c} IS NULL OR {c} IN ({values})" if missing else f"{c} IS NULL"

    return predicate


def _invalid(column: str, valid: list[Any] | None, pattern: str | None) -> Predicate:
    def predicate(e: CheckEngine, bind: _Params) -> str:
        c = e.quote(column)
        parts = []
        if valid is not None:
            parts.append(f"{c} NOT IN ({', '.join(bind(v) for v in valid)})" if valid else "TRUE")
        if pattern is not None:
            if e.dialect == "duckdb":
                match = f"regexp_full_match({c}, {bind(pattern)})"
            else:  # PostgreSQL's ~ and Trino's regexp_like find a match anywhere: anchor it
                anchored = bind(f"^(?:{pattern})$")
                match = f"{c} ~ {anchored}" if e.dialect == "postgres" else f"regexp_like({c}, {anchored})"
            parts.append(f"NOT {match}")
        return f"{c} IS NOT NULL AND ({' OR '.join(parts)})"

    return predicate


def _range(column: str, low: float | None, high: float | None) -> Predicate:
    def predicate(e: CheckEngine, bind: _Params) -> str:
        c = e.quote(column)
        parts = ([f"{c} < {bind(low)}"] if low is not None else []) + (
            [f"{c} > {bind(high)}"] if high is not None else []
        )
        return " OR ".join(parts)

    return predicate


def _duplicates(name: str, severity: Severity, q: QualityRule, columns: tuple[str, ...]) -> _Rule:
    """Extra copies of a value of ``columns`` (rows with a NULL in them are not compared)."""

    def measure(e: CheckEngine, table: str, where: str, params: list[Any]) -> tuple[Any, Any, list[str]]:
        cols = ", ".join(e.quote(c) for c in columns)
        not_null = " AND ".join(f"{e.quote(c)} IS NOT NULL" for c in columns)
        filtered = f"{where} AND {not_null}" if where else f"WHERE {not_null}"
        groups = f"SELECT {cols}, COUNT(*) AS n FROM {table} {filtered} GROUP BY {cols} HAVING COUNT(*) > 1"
        extra = e.query(f"SELECT COALESCE(SUM(n - 1), 0) AS extra FROM ({groups}) d", params)
        value = int(extra.column(0)[0].as_py() or 0)
        sample = (
            _rows_text(e.query(f"{groups} ORDER BY {cols} LIMIT {SAMPLE_SIZE}", params), columns)
            if value
            else []
        )
        return value, value, sample

    return _Rule(name, severity, q, q.unit, keys=columns, measure=measure)


def _relationship(column: str, to: str) -> _Rule:
    ref_table, _, ref_column = to.rpartition(".")
    if not ref_table:
        raise ConfigError(f"relationship of {column}: 'to' is table.column, not {to!r}")

    def measure(e: CheckEngine, table: str, where: str, params: list[Any]) -> tuple[Any, Any, list[str]]:
        c = e.quote(column)
        orphan = (f"{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {e.quote(ref_table)} r "
                  f"WHERE r.{e.quote(ref_column)} = t.{c})")  # fmt: skip
        filtered = f"{where} AND {orphan}" if where else f"WHERE {orphan}"
        found = e.query(f"SELECT COUNT(*) FROM {table} t {filtered}", params)
        value = int(found.column(0)[0].as_py() or 0)
        sample: list[str] = []
        if value:
            distinct = f"SELECT DISTINCT t.{c} FROM {table} t {filtered} ORDER BY t.{c} LIMIT {SAMPLE_SIZE}"
            sample = _rows_text(e.query(distinct, params), (column,))
        return value, value, sample

    return _Rule(f"relationship:{column}", "error", QualityRule(metric="invalidValues"), keys=(column,),
                 measure=measure)  # fmt: skip


def _sql_rule(query: str, column: str | None) -> Measure:
    def measure(e: CheckEngine, table: str, where: str, params: list[Any]) -> Any:
        def fill(m: re.Match[str]) -> str:
            if m.group(1) in ("object", "table"):
                return table
            if column is None:
                raise ConfigError(f"quality query {query!r}: ${{{m.group(1)}}} outside a property")
            return e.quote(column)

        result = e.query(_PLACEHOLDER.sub(fill, query), [])
        return result.column(0)[0].as_py() if result.num_rows and result.num_columns else None

    return measure


# -- running --------------------------------------------------------------------------------------------


def _where(engine: CheckEngine, partition: tuple[str, Any] | None) -> tuple[str, list[Any]]:
    if partition is None:
        return "", []
    bind = _Params(engine.dialect)
    return f"WHERE {engine.quote(partition[0])} = {bind(partition[1])}", bind.values


def _scan(
    engine: CheckEngine, table: str, rules: list[_Rule], partition: tuple[str, Any] | None
) -> tuple[int, list[int]]:
    """The row count and each row-level rule's failing rows, in one statement."""
    bind = _Params(engine.dialect)
    counts = [f"COUNT(*) FILTER (WHERE {r.predicate(engine, bind)})" for r in rules if r.predicate]
    where = ""
    if partition is not None:
        where = f" WHERE {engine.quote(partition[0])} = {bind(partition[1])}"
    result = engine.query(
        f"SELECT {', '.join(['COUNT(*)', *counts])} FROM {engine.quote(table)}{where}", bind.values
    )
    values = [int(result.column(i)[0].as_py() or 0) for i in range(result.num_columns)]
    return values[0], values[1:]


def _sample(engine: CheckEngine, table: str, rule: _Rule, partition: tuple[str, Any] | None) -> list[str]:
    bind = _Params(engine.dialect)
    assert rule.predicate is not None
    condition = f"({rule.predicate(engine, bind)})"
    if partition is not None:
        condition += f" AND {engine.quote(partition[0])} = {bind(partition[1])}"
    cols = ", ".join(engine.quote(k) for k in rule.keys)
    text = f"SELECT {cols} FROM {engine.quote(table)} WHERE {condition} ORDER BY {cols} LIMIT {SAMPLE_SIZE}"
    found = engine.query(text, bind.values)
    return _rows_text(found, rule.keys)


def _rows_text(table: pa.Table, keys: Sequence[str]) -> list[str]:
    """Each row as ``value`` (one key) or ``k1=v1, k2=v2``."""
    out = []
    for row in table.select(list(range(len(keys)))).to_pylist():
        values = list(row.values())
        out.append(
            str(values[0])
            if len(keys) == 1
            else ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        )
    return out


_THRESHOLD_TEXT = {
    "mustBe": "= {}", "mustNotBe": "!= {}", "mustBeGreaterThan": "> {}", "mustBeGreaterOrEqualTo": ">= {}",
    "mustBeLessThan": "< {}", "mustBeLessOrEqualTo": "<= {}", "mustBeBetween": "between {} and {}",
    "mustNotBeBetween": "not between {} and {}",
}  # fmt: skip


_TESTS: dict[str, Callable[[float, Any], bool]] = {
    "mustBe": lambda v, b: v == b,
    "mustNotBe": lambda v, b: v != b,
    "mustBeGreaterThan": lambda v, b: v > b,
    "mustBeGreaterOrEqualTo": lambda v, b: v >= b,
    "mustBeLessThan": lambda v, b: v < b,
    "mustBeLessOrEqualTo": lambda v, b: v <= b,
    "mustBeBetween": lambda v, b: b[0] <= v <= b[1],
    "mustNotBeBetween": lambda v, b: not b[0] <= v <= b[1],
}


def _holds(q: QualityRule, value: float) -> tuple[bool, str]:
    """Whether ``value`` meets every threshold of ``q`` (none given: = 0), and the thresholds as text."""
    tests: list[tuple[bool, str]] = []
    for name, text in _THRESHOLD_TEXT.items():
        bound = getattr(q, name)
        if bound is not None:
            shown = [_num(b) for b in (bound if isinstance(bound, tuple) else (bound,))]
            tests.append((_TESTS[name](value, bound), text.format(*shown)))
    if not tests:
        return value == 0, "= 0"
    return all(ok for ok, _ in tests), " and ".join(text for _, text in tests)


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _result(
    rule: _Rule,
    table: str,
    partition: str | None,
    value: Any,
    failed: Any,
    sample: list[str],
    duration: float,
) -> Check:
    if value is None:
        return Check(name=rule.name, passed=False, observed=None, expected=_holds(rule.threshold, 0)[1],
                     detail="the query returned no value", dataset=table, partition=partition,
                     severity=rule.severity, duration_s=round(duration, 6))  # fmt: skip
    number = float(value)
    passed, expected = _holds(rule.threshold, number)
    failed_rows = int(failed) if failed is not None else (int(number) if rule.predicate else None)
    detail = None
    if not passed:
        unit = "% of rows" if rule.unit == "percent" else ""
        detail = f"{rule.name} on {table}: {_num(number)}{unit}, expected {expected}"
        if sample:
            detail += f" (e.g. {'; '.join(sample[:3])})"
    return Check(name=rule.name, passed=passed, observed=_num(number), expected=expected, detail=detail,
                 dataset=table, partition=partition, severity=rule.severity, failed_rows=failed_rows,
                 sample=sample, duration_s=round(duration, 6))  # fmt: skip


def _freshness(engine: CheckEngine, table: str, name: str, sla: SlaProperty, now: datetime) -> Check:
    """``latency``: the newest value of ``element``'s column is at most ``value unit`` before ``now``."""
    element = sla.element or ""
    owner, _, column = element.rpartition(".")
    if not column or (owner and owner not in (name, table)):
        raise ConfigError(f"{name}: slaProperties latency needs element {name}.<column>, not {element!r}")
    scale = _UNITS_S.get((sla.unit or "d").lower())
    if scale is None:
        raise ConfigError(f"{name}: slaProperties latency unit {sla.unit!r} (s, m, h or d)")
    limit = float(sla.value) * scale
    began = time.perf_counter()
    newest = (
        engine.query(f"SELECT MAX({engine.quote(column)}) FROM {engine.quote(table)}", [])
        .column(0)[0]
        .as_py()
    )
    rule = f"latency:{column}"
    expected = f"<= {_num(limit)} s"
    duration = round(time.perf_counter() - began, 6)
    if newest is None:
        return Check(name=rule, passed=False, expected=expected, detail=f"{table} has no {column}",
                     dataset=table, duration_s=duration)  # fmt: skip
    if isinstance(newest, date) and not isinstance(newest, datetime):
        newest = datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    age = round((now - newest).total_seconds(), 3)
    passed = age <= limit
    detail = (
        None
        if passed
        else f"{table}.{column}: newest {newest.isoformat()} is {age:.0f} s old, over {limit:.0f} s"
    )
    return Check(name=rule, passed=passed, observed=age, expected=expected, detail=detail, dataset=table,
                 duration_s=duration)  # fmt: skip
