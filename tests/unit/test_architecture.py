"""The dependency rules of ARCHITECTURE.md, enforced on the source (AST: module-level and function-level
imports, relative imports resolved, and ``"dotjoin.x.y:attr"`` strings a registry hands to ``import_module``).

Layers, imports pointing down only::

    cli/, web/          entry points; the flow and demo registries (cli/registry.py)
    simulate/           fake APIs, data generators, ground truth: wired in by the entry layer and the tests
    pipelines/<name>/   declared schemas, pure transforms, run(); flows declared with orchestration.steps
    orchestration/      the step declarations, the local runner, the Airflow DAG builder
    platform/, services/  adapters over the engines; the native service manager
    config, exceptions, logging
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dotjoin"
#: Client libraries of engines and services: a pipeline reaches them only through ``dotjoin.platform``.
DRIVERS = {
    "psycopg",
    "psycopg2",
    "confluent_kafka",
    "pyspark",
    "boto3",
    "redis",
    "duckdb",
    "sqlalchemy",
    "httpx",  # through dotjoin.platform.http (retries, rate limits, failed-request records)
}
#: Rank of each top-level part of the package: no module imports a part of a higher rank.
LAYERS = {
    "cli": 5,
    "web": 5,
    "__main__": 5,
    "simulate": 4,
    "pipelines": 3,
    "orchestration": 2,
    "platform": 1,
    "services": 1,
    "config": 0,
    "exceptions": 0,
    "logging": 0,
    "__init__": 0,
}
_MODULE_STRING = re.compile(r"dotjoin(\.\w+)+(:\w+)?")


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. dotjoin.pipelines.nightly.flow
    target: str  # imported module (or a "module:attr" string's module)
    line: int
    how: str  # "module-level", "in a function" or "by name" (a string for import_module)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target} ({self.how})"


def _module_name(path: Path) -> str:
    parts = ["dotjoin", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    if not name.startswith("dotjoin."):
        return False
    path = SRC.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_of(path: Path) -> list[Import]:
    return _imports_in(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")


def _imports_in(source: str, module: str, *, is_package: bool) -> list[Import]:
    tree = ast.parse(source)
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        how = "in a function" if in_function else "module-level"
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno, how) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            found.append(Import(module, target, node.lineno, how))
            # ``from dotjoin.pipelines.lakehouse import raw`` imports a submodule too
            subs = (f"{target}.{a.name}" for a in node.names)
            found.extend(Import(module, sub, node.lineno, how) for sub in subs if _is_module(sub))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.fullmatch(node.value)
            and _is_module(node.value.partition(":")[0])
        ):
            found.append(Import(module, node.value.partition(":")[0], node.lineno, "by name"))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


@cache
def _all_imports() -> tuple[Import, ...]:
    return tuple(imp for path in sorted(SRC.rglob("*.py")) for imp in _imports_of(path))


def _part(module: str) -> str:
    """The top-level part of ``dotjoin`` a module belongs to (``dotjoin`` itself is ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _internal(imp: Import) -> bool:
    return imp.target == "dotjoin" or imp.target.startswith("dotjoin.")


def _from(part: str) -> list[Import]:
    return [imp for imp in _all_imports() if _part(imp.source) == part]


def test_pipelines_never_import_a_driver() -> None:
    offenders = [str(imp) for imp in _from("pipelines") if imp.target.split(".")[0] in DRIVERS]
    assert offenders == []


def test_pipelines_and_platform_never_import_the_simulators() -> None:
    """A pipeline takes its input (a URL, a directory, a source object) as a parameter; the entry layer and
    the tests wire the simulators in."""
    offenders = [
        str(imp)
        for part in ("pipelines", "platform", "orchestration")
        for imp in _from(part)
        if _internal(imp) and _part(imp.target) == "simulate"
    ]
    assert offenders == []


def test_no_import_cycle_between_pipelines_and_orchestration() -> None:
    """Pipelines declare their flows with orchestration.steps; orchestration never imports a pipeline, not
    even inside a function or by name (the flow registry lives at the entry layer)."""
    up = [str(imp) for imp in _from("pipelines") if _internal(imp) and _part(imp.target) == "orchestration"]
    down = [str(imp) for imp in _from("orchestration") if _internal(imp) and _part(imp.target) == "pipelines"]
    assert up, "the rule is vacuous: no pipeline declares a flow any more"
    assert down == []


def test_platform_never_imports_a_pipeline_or_an_entry_point() -> None:
    offenders = [
        str(imp)
        for imp in _from("platform")
        if _internal(imp) and _part(imp.target) in {"pipelines", "orchestration", "simulate", "cli", "web"}
    ]
    assert offenders == []


def test_imports_point_down_the_layers_only() -> None:
    parts = {_part(_module_name(p)) for p in SRC.rglob("*.py")}
    assert parts <= set(LAYERS), f"place {sorted(parts - set(LAYERS))} in LAYERS"
    offenders = [
        str(imp)
        for imp in _all_imports()
        if _internal(imp)
        and _part(imp.source) != _part(imp.target)
        and LAYERS.get(_part(imp.target), 0) > LAYERS[_part(imp.source)]
    ]
    assert offenders == []


def test_the_scanner_sees_relative_function_level_and_by_name_imports() -> None:
    """The old runtime cycle, as it looked: orchestration/registry.py naming the flows it imports."""
    source = (
        "from . import steps\n"
        "def get_flow():\n"
        "    from dotjoin.pipelines.nightly import flow\n"
        "    return import_module('dotjoin.pipelines.stocks.flow:FLOW'.partition(':')[0])\n"
    )
    found = {
        (i.target, i.how) for i in _imports_in(source, "dotjoin.orchestration.registry", is_package=False)
    }
    assert ("dotjoin.orchestration.steps", "module-level") in found
    assert ("dotjoin.pipelines.nightly.flow", "in a function") in found
    assert ("dotjoin.pipelines.stocks.flow", "by name") in found


def test_modules_stay_small() -> None:
    big = [
        f"{p.relative_to(SRC)}: {n} lines"
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    ]
    assert big == []
