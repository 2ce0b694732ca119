"""Airflow stays in its own virtualenv: the platform never imports the DAG builder, which imports
Airflow only inside ``build_dag``; without Airflow it fails in one line naming the fix."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "dotjoin"
BUILDER = SRC / "orchestration" / "airflow.py"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_platform_module_imports_the_dag_builder() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path != BUILDER and "dotjoin.orchestration.airflow" in _imports(path)
    ]
    assert offenders == []


def test_the_dag_builder_imports_airflow_only_inside_functions() -> None:
    names: list[str] = []
    for node in ast.parse(BUILDER.read_text()).body:  # module level (TYPE_CHECKING blocks never run)
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    assert "dotjoin.orchestration.steps" in names
    assert [n for n in names if n.split(".")[0] == "airflow"] == []


@pytest.mark.skipif(importlib.util.find_spec("airflow") is not None, reason="Airflow is installed here")
def test_without_airflow_build_dag_says_how_to_get_it(tmp_path: Path) -> None:
    from datetime import date

    from dotjoin.config import load_settings
    from dotjoin.exceptions import TerminalError
    from dotjoin.orchestration.airflow import build_dag
    from dotjoin.orchestration.steps import Flow, Step

    flow = Flow("f", "", (Step("a", print),), date(2024, 1, 1))
    with pytest.raises(TerminalError, match=r"run `make airflow`"):
        build_dag(flow, settings=load_settings(cwd=tmp_path, env={}))
