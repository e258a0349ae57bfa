"""`dlbox plan --json` latency (issue target: under 0.3 s, no network, no Docker call).

Baseline in the same run: the interpreter's own start-up (`python -c pass`), the floor any
Python CLI pays, and a what-if plan from a recorded nvidia-smi output. Wall-clock medians
depend on how busy the machine is, so each figure also has its CPU time (user+sys of the
child, median), which does not. Writes benchmarks/results/plan_speed.json.

The children run as an installed dlbox runs: with its bytecode compiled (pip compiles an
installed package's .pyc; an editable install writes them on first run). This sandbox sets
PYTHONDONTWRITEBYTECODE=1, which makes every run compile dlbox's ~150 modules from source
(about 0.25 s of CPU here): the benchmark compiles them once and drops that variable for the
children. A second baseline is the import of the three libraries every verb needs (typer,
pydantic, packaging): the floor under any dlbox verb.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DLBOX = str(Path(sys.executable).with_name("dlbox"))
RUNS = 15


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_seconds(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of the child) over RUNS runs."""
    times, cpu = [], []
    for _ in range(RUNS):
        before = os.times()
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env or ENV)
        times.append(time.perf_counter() - t0)
        after = os.times()
        cpu.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
    return round(statistics.median(times), 3), round(statistics.median(cpu), 3)


def main() -> None:
    fixture = ROOT / "tests" / "fixtures" / "nvidia-smi" / "h100-570.133.20.txt"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "dlbox")], check=True,
                   capture_output=True)
    startup = median_seconds([sys.executable, "-c", "pass"])
    libraries = median_seconds([sys.executable, "-c", "import typer, pydantic, packaging.requirements"])
    plan = median_seconds([DLBOX, "plan", "--json", str(ROOT / "examples" / "digits")])
    whatif = median_seconds([DLBOX, "plan", "--json", "--nvidia-smi", str(fixture), str(ROOT / "examples" / "digits")])
    results = {
        "runs": RUNS,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python_startup_s": startup[0], "python_startup_cpu_s": startup[1],
        "import_typer_pydantic_packaging_s": libraries[0], "import_typer_pydantic_packaging_cpu_s": libraries[1],
        "plan_json_s": plan[0], "plan_json_cpu_s": plan[1],
        "plan_json_whatif_h100_s": whatif[0], "plan_json_whatif_h100_cpu_s": whatif[1],
        "target_s": 0.3,
    }
    results["plan_over_startup_s"] = round(results["plan_json_s"] - results["python_startup_s"], 3)
    out = ROOT / "benchmarks" / "results" / "plan_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
