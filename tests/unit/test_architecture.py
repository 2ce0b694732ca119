"""The dependency rules of ARCHITECTURE.md, enforced: pipelines reach engines only through platform/."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dotjoin"
DRIVERS = {"psycopg", "psycopg2", "confluent_kafka", "pyspark", "boto3", "redis", "duckdb", "sqlalchemy"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pipelines_never_import_a_driver() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "pipelines").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in DRIVERS
    ]
    assert offenders == []


def test_platform_never_imports_a_pipeline_or_the_cli() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "platform").rglob("*.py")
        for name in _imports(path)
        if name.startswith(("dotjoin.pipelines", "dotjoin.cli", "dotjoin.web"))
    ]
    assert offenders == []


def test_modules_stay_small() -> None:
    big = [
        f"{p.relative_to(SRC)}: {n} lines"
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    ]
    assert big == []
