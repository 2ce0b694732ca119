"""Run every benchmark in this folder, one after the other (one heavy thing at a time on small machines).

Each benchmark is a script that prints its figures and a ratio against a named baseline run in the same
invocation. Benchmarks are not tests: they never fail the build. Lines a script prints starting with
``HEADLINE`` are repeated at the end, one summary for the whole run.

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
    headlines: list[str] = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if line.startswith("HEADLINE "):
                headlines.append(line.removeprefix("HEADLINE ").rstrip())
        if child.wait() != 0:
            headlines.append(f"{script.stem}: exited {child.returncode} (see its output above)")
    print("\n=== headlines ===")
    for line in headlines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
