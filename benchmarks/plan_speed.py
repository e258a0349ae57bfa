"""`dlbox plan --json` latency (issue target: under 0.3 s, no network, no Docker call).

Baseline in the same run: the interpreter's own start-up (`python -c pass`), the floor any
Python CLI pays, and a what-if plan from a recorded nvidia-smi output. Writes
benchmarks/results/plan_speed.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DLBOX = str(Path(sys.executable).with_name("dlbox"))
RUNS = 15


def median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def main() -> None:
    fixture = ROOT / "tests" / "fixtures" / "nvidia-smi" / "h100-570.133.20.txt"
    results = {
        "runs": RUNS,
        "python_startup_s": median_seconds([sys.executable, "-c", "pass"]),
        "plan_json_s": median_seconds([DLBOX, "plan", "--json", str(ROOT / "examples" / "digits")]),
        "plan_json_whatif_h100_s": median_seconds([DLBOX, "plan", "--json", "--nvidia-smi", str(fixture),
                                                   str(ROOT / "examples" / "digits")]),
        "target_s": 0.3,
    }
    results["plan_over_startup_s"] = round(results["plan_json_s"] - results["python_startup_s"], 3)
    out = ROOT / "benchmarks" / "results" / "plan_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
