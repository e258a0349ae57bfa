"""Rebuild benchmark: dlbox against the tutorials' hand-written workflow, in one run.

Baseline (seed 001): `FROM <same base>`, Python from apt, `COPY . .`, `pip install -r
requirements.txt`, `CMD python train.py`, built with `docker build`. It gets what it needs to
build here at all — the host CA bundle as a BuildKit secret, and the local torch wheel served
on 127.0.0.1 — but none of dlbox's layering or caches.

Measured: cold build, rebuild after a one-line code edit, rebuild after adding one small
dependency, image sizes, and `dlbox up` overhead over the `docker run` it issues.
Cold means `--no-cache` (no layer reused; download caches warm: the machine's BuildKit cache is
shared by other sessions and is not pruned). For dlbox's cold build also the physical limit
(issue 14): unpacking the same wheels from a warm uv cache into a fresh venv on the host, plus the
engine's layer export as the same build reports it; ratio goal <= 1.3x.
Writes benchmarks/results/rebuild.json.

    .venv/bin/python benchmarks/rebuild.py
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "rebuild"
RESULTS = ROOT / "benchmarks" / "results" / "rebuild.json"
DLBOX = str(Path(sys.executable).with_name("dlbox"))
DOCKER = "/usr/bin/docker"
BASE = "debian:bookworm-slim"
WHEELS = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()[0]
CA = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
PORT = 18765

BASELINE_DOCKERFILE = f"""FROM {BASE}
RUN apt-get update && apt-get install -y python3 python3-venv python3-pip && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY . .
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip install --find-links http://127.0.0.1:{PORT}/ -r requirements.txt
CMD ["python", "train.py"]
"""


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def timed(argv: list[str], **kw) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = sh(argv, **kw)
    return time.perf_counter() - t0, proc.stdout.strip()


def serve_wheels() -> http.server.ThreadingHTTPServer:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=WHEELS)
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def image_size(ref: str) -> int:
    return int(sh([DOCKER, "image", "inspect", "--format", "{{.Size}}", ref]).stdout)


def prepare() -> tuple[Path, Path]:
    shutil.rmtree(WORK, ignore_errors=True)
    ours, base = WORK / "dlbox", WORK / "baseline"
    for d in (ours, base):
        shutil.copytree(ROOT / "examples" / "digits", d, ignore=shutil.ignore_patterns(".dlbox", "outputs"))
    (ours / "dlbox.toml").write_text((ours / "dlbox.toml").read_text().replace('name = "digits"', 'name = "benchdigits"'))
    torch = next(p.name for p in Path(WHEELS).glob("torch-*.whl"))
    version = torch.split("-")[1]
    (base / "requirements.txt").write_text(f"torch=={version}\n" + (base / "requirements.txt").read_text())
    (base / "Dockerfile").write_text(BASELINE_DOCKERFILE)
    return ours, base


def baseline_build(base: Path, no_cache: bool = False) -> float:
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    t, _ = timed([DOCKER, "build", "-q", "--network", "host", "--secret", f"id=ca,src={CA}", "-t", "bench/baseline:1"]
                 + (["--no-cache"] if no_cache else []) + [str(base)], env=env)
    return t


def dlbox_cold(ours: Path) -> dict:
    """What `dlbox build` runs, with --no-cache: the staged Dockerfile, its secret, the tools image."""
    sh([DLBOX, "render", str(ours)])
    argv = [DOCKER, "build", "--no-cache", "--progress", "plain", "-f", ".dlbox/Dockerfile",
            "--secret", f"id=dlbox_ca,src={CA}", "-t", "bench/dlbox-cold:1", "."]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ours, env=dict(os.environ, DOCKER_BUILDKIT="1"), capture_output=True, text=True,
                          check=True)
    total = time.perf_counter() - t0
    log = proc.stderr
    done = {m[1]: float(m[2]) for m in re.finditer(r"^#(\d+) DONE ([0-9.]+)s", log, re.M)}
    steps = {}
    for m in re.finditer(r"^#(\d+) \[[^\]]*\] (.*)$", log, re.M):
        text = m[2]
        kind = ("venv+torch" if "-m venv" in text else "project deps" if "requirements" in text
                else "apt (python)" if "apt-get" in text else None)
        if kind and m[1] in done:
            steps[kind] = done[m[1]]
    export = re.search(r"^#(\d+) exporting to image", log, re.M)
    steps["export"] = done.get(export[1], 0.0) if export else 0.0
    return {"seconds": round(total, 2), "steps_s": steps}


def venv_unpack() -> float:
    """The same wheels from a warm uv cache into a fresh venv on the host (run twice: the first warms)."""
    import uv

    torch = next(p.name for p in Path(WHEELS).glob("torch-*.whl")).split("-")[1]
    req = ROOT / "examples" / "digits" / "requirements.txt"
    best = None
    for _ in range(2):
        d = WORK / "limit-venv"
        shutil.rmtree(d, ignore_errors=True)
        t0 = time.perf_counter()
        sh([sys.executable, "-m", "venv", "--without-pip", str(d)])
        sh([uv.find_uv_bin(), "pip", "install", "--python", str(d / "bin/python"), "--link-mode", "copy",
            "--find-links", WHEELS, f"torch=={torch}", "-r", str(req)])
        t = time.perf_counter() - t0
        best = t if best is None else min(best, t)
    shutil.rmtree(WORK / "limit-venv", ignore_errors=True)
    return best


def dlbox_build(ours: Path) -> float:
    t, _ = timed([DLBOX, "build", "-q", str(ours)])
    return t


def edit_code(d: Path) -> None:
    (d / "train.py").write_text((d / "train.py").read_text() + "\n# one-line edit\n")


def add_dependency(d: Path) -> None:
    (d / "requirements.txt").write_text((d / "requirements.txt").read_text() + "six\n")


def up_overhead(ours: Path, runs: int = 5) -> dict:
    """`dlbox up --detach` on an unchanged project vs the `docker run -d` it issues."""
    sys.path.insert(0, str(ROOT / "src"))
    from dlbox import workflow
    from dlbox.engine.docker import Docker
    from dlbox.engine.run import RunOptions, ca_for, run_argv, run_env

    p = workflow.load_project(ours, docker=Docker())
    image = sh([DLBOX, "build", "-q", str(ours)]).stdout.strip()
    argv = run_argv(p.plan, RunOptions(image=image, command=("sleep", "infinity"), name="bench-direct", detach=True,
                                       remove=False, ca_bundle=ca_for(p.plan)))
    env = dict(os.environ, **run_env(p.plan))
    ups, runs_direct = [], []
    for _ in range(runs):
        sh([DLBOX, "down", str(ours)])
        ups.append(timed([DLBOX, "up", "--detach", str(ours)])[0])
        subprocess.run([DOCKER, "rm", "-f", "bench-direct"], capture_output=True)
        runs_direct.append(timed([DOCKER, *argv], env=env)[0])
    subprocess.run([DOCKER, "rm", "-f", "bench-direct"], capture_output=True)
    sh([DLBOX, "down", str(ours)])
    up_m, run_m = statistics.median(ups), statistics.median(runs_direct)
    return {"dlbox_up_median_s": round(up_m, 3), "docker_run_median_s": round(run_m, 3),
            "overhead_s": round(up_m - run_m, 3), "runs": runs}


def main() -> None:
    sh([DOCKER, "image", "inspect", BASE])  # the base must be there (dlbox build bootstraps it otherwise)
    ours, base = prepare()
    srv = serve_wheels()
    results: dict = {"base": BASE, "machine": {"cpus": os.cpu_count()}}
    try:
        cold_base = baseline_build(base, no_cache=True)
        cold = dlbox_cold(ours)
        cold_ours = cold["seconds"]
        unpack = venv_unpack()
        limit = unpack + cold["steps_s"]["export"]
        pip_part = cold["steps_s"].get("venv+torch", 0) + cold["steps_s"].get("project deps", 0) + cold["steps_s"]["export"]
        results["near_the_limit"] = {
            "dlbox_cold_build": cold, "host_venv_unpack_warm_cache_s": round(unpack, 2),
            "engine_layer_export_s": cold["steps_s"]["export"], "limit_s": round(limit, 2),
            "ratio_build_over_limit": round(cold_ours / limit, 2),
            "ratio_python_steps_over_limit": round(pip_part / limit, 2),
            "note": "the limit leaves out the base's apt step for Python (debian:bookworm-slim has none)",
        }
        dlbox_build(ours)
        results["cold_build_s"] = {"baseline": round(cold_base, 2), "dlbox": round(cold_ours, 2)}

        edit_code(base), edit_code(ours)
        edit_base, edit_ours = baseline_build(base), dlbox_build(ours)
        results["code_edit_rebuild_s"] = {"baseline": round(edit_base, 2), "dlbox": round(edit_ours, 2),
                                          "dlbox_rebuilt": False}

        add_dependency(base), add_dependency(ours)
        dep_base, dep_ours = baseline_build(base), dlbox_build(ours)
        results["add_dependency_rebuild_s"] = {"baseline": round(dep_base, 2), "dlbox": round(dep_ours, 2),
                                               "speedup": round(dep_base / dep_ours, 1)}
        ours_image = sh([DLBOX, "build", "-q", str(ours)]).stdout.strip()
        results["image_size_mb"] = {"baseline": round(image_size("bench/baseline:1") / 1e6, 1),
                                    "dlbox": round(image_size(ours_image) / 1e6, 1)}
        results["up_overhead"] = up_overhead(ours)
    finally:
        srv.shutdown()
    results["ratios"] = {
        "code_edit": f"dlbox {results['code_edit_rebuild_s']['dlbox']} s (no rebuild, bind mount) vs baseline "
                     f"{results['code_edit_rebuild_s']['baseline']} s",
        "add_dependency_speedup": results["add_dependency_rebuild_s"]["speedup"],
        "cold_build_ratio_baseline_over_dlbox": round(cold_base / cold_ours, 2),
        "cold_build_over_physical_limit": results["near_the_limit"]["ratio_build_over_limit"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
