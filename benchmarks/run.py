"""Run every benchmark in this folder, one after the other (one heavy thing at a time on small machines).

Each benchmark is a script that prints its figures and a ratio against a named baseline run in the same
invocation. Benchmarks are not tests: they never fail the build.

Usage: .venv/bin/python benchmarks/run.py [NAME ...]     e.g. benchmarks/run.py bulk_load
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
    if names:
        scripts = [p for p in scripts if p.stem in names]
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        subprocess.run([sys.executable, str(script)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
