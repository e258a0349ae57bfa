"""Time from `dlbox jupyter` to a ready server, against the tutorials' hand-written command.

Both sides start the same, already-built Jupyter image and are ready when the same probe
(`dlbox.apps.wait.wait_http` on /api: any HTTP answer) succeeds:

- dlbox:    `dlbox jupyter PROJECT --detach --port P` as a subprocess (Python start-up, spec,
            host probes, plan, image checks, port check, docker run, wait); it returns when ready.
- baseline: seed 003's `docker run -d --ipc=host -p P:8888 IMAGE jupyter lab --no-browser
            --ip=0.0.0.0 --allow-root --ServerApp.token=` then the same probe.

    python benchmarks/jupyter.py [--runs 5] [--project examples/webapp]

Writes benchmarks/results/jupyter.json. Target: median(dlbox) - median(baseline) < 1 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbox import workflow
from dlbox.workflow import containers
from dlbox.apps.jupyter import jupyter_image
from dlbox.apps.wait import wait_http
from dlbox.engine.docker import Docker
from dlbox.plan.layout import jupyter_name

ROOT = Path(__file__).resolve().parents[1]
DLBOX = [sys.executable, "-m", "dlbox.cli"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def time_dlbox(project: Path, docker: Docker, name: str) -> float:
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.run(DLBOX + ["jupyter", str(project), "--detach", "--port", str(port)],
                          capture_output=True, text=True)
    seconds = time.monotonic() - t0
    docker.run(["rm", "-f", name], check=False)
    if proc.returncode != 0:
        raise SystemExit(f"dlbox jupyter failed:\n{proc.stderr}")
    return seconds


def time_already_running(project: Path, docker: Docker, name: str) -> float:
    """A second `dlbox jupyter` while one runs: the CLI's own cost (it only reads the URL back)."""
    port = free_port()
    subprocess.run(DLBOX + ["jupyter", str(project), "--detach", "--port", str(port)], capture_output=True, check=True)
    t0 = time.monotonic()
    subprocess.run(DLBOX + ["jupyter", str(project), "--detach", "--port", str(port)], capture_output=True, check=True)
    seconds = time.monotonic() - t0
    docker.run(["rm", "-f", name], check=False)
    return seconds


def time_baseline(image: str, docker: Docker) -> float:
    port = free_port()
    name = f"dlbox-bench-baseline-{port}"
    t0 = time.monotonic()
    docker.run(["run", "-d", "--name", name, "--ipc=host", "-p", f"{port}:8888", image,
                "jupyter", "lab", "--no-browser", "--ip=0.0.0.0", "--allow-root", "--ServerApp.token="])
    wait_http(f"http://127.0.0.1:{port}/api", timeout=120)
    seconds = time.monotonic() - t0
    docker.run(["rm", "-f", name], check=False)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--project", default=str(ROOT / "examples" / "webapp"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "jupyter.json"))
    args = ap.parse_args()

    docker = Docker()
    with tempfile.TemporaryDirectory(prefix="dlbox-bench-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(args.project, project, ignore=shutil.ignore_patterns(".dlbox", ".devcontainer"))
        p = workflow.load_project(project, docker=docker, check_images=True)
        image = jupyter_image(p, containers.ensure_image(p, quiet=True).image)   # built once, not timed
        name = jupyter_name(p.plan)
        time_baseline(image, docker)              # warm the page cache for both sides
        dlbox_runs, base_runs = [], []
        for _ in range(args.runs):                # interleaved: drift hits both sides alike
            base_runs.append(time_baseline(image, docker))
            dlbox_runs.append(time_dlbox(project, docker, name))
        running = [time_already_running(project, docker, name) for _ in range(3)]

    result = {
        "benchmark": "dlbox jupyter → ready server, vs the tutorials' docker run … jupyter lab (same image, same probe)",
        "image": image,
        "runs": args.runs,
        "probe": "GET /api until any HTTP status (dlbox.apps.wait.wait_http, 50 ms interval)",
        "dlbox_seconds": [round(s, 3) for s in dlbox_runs],
        "baseline_seconds": [round(s, 3) for s in base_runs],
        "dlbox_median": round(statistics.median(dlbox_runs), 3),
        "baseline_median": round(statistics.median(base_runs), 3),
        "overhead_median": round(statistics.median(dlbox_runs) - statistics.median(base_runs), 3),
        "already_running_seconds": [round(s, 3) for s in running],
        "target_overhead": 1.0,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "docker": docker.run(["version", "--format", "{{.Server.Version}}"]).stdout.decode().strip()},
    }
    result["meets_target"] = result["overhead_median"] < result["target_overhead"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("dlbox_median", "baseline_median", "overhead_median",
                                             "already_running_seconds", "meets_target")}))


if __name__ == "__main__":
    main()
