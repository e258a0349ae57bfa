"""Rebuild benchmark: dlbox against the tutorials' hand-written workflow, in one run.

Baseline (seed 001): `FROM <same base>`, Python from apt, `COPY . .`, `pip install -r
requirements.txt`, `CMD python train.py`, built with `docker build`. It gets what it needs to
build here at all — the host CA bundle as a BuildKit secret, and the local torch wheel served
on 127.0.0.1 — but none of dlbox's layering or caches.

Measured: cold build, rebuild after a one-line code edit, rebuild after adding one small
dependency, image sizes, and `dlbox up` overhead over the `docker run` it issues.
Cold means no layer reused, download caches warm (see fresh_layers: `--no-cache` would also
empty BuildKit's cache mounts; the baseline has none). For dlbox's cold build also the physical limit
(issue 14): unpacking the same wheels from a warm uv cache into a fresh venv on the host, plus the
engine's layer export as the same build reports it; ratio goal <= 1.3x.
Writes benchmarks/results/rebuild.json.

    .venv/bin/python benchmarks/rebuild.py               # everything
    .venv/bin/python benchmarks/rebuild.py --only=limit  # only the cold build against the limit

--only=limit builds through dlbox's own build path (engine.build.build: the tools image, secrets,
the staged Dockerfile, the lock) with every layer rebuilt, after one ordinary `dlbox build` made the
lock and the tools image and one cold build warmed the cache mounts (best of two); the limit
installs the lock's exact wheels with uv from a warm cache (best of three). `--also-no-cache` adds the
same with `--no-cache` (cache mounts emptied too). It updates only "near_the_limit" in
rebuild.json. Every run removes the images it built and the BuildKit records it left that no image
shares (about 1 GB per rebuild of the example).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from cold_limit import near_the_limit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "rebuild"
RESULTS = ROOT / "benchmarks" / "results" / "rebuild.json"
DLBOX = str(Path(sys.executable).with_name("dlbox"))
DOCKER = "/usr/bin/docker"
BASE = "debian:bookworm-slim"
WHEELS = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()[0]
CA = os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
PORT = 18765
BUILT: set[str] = set()   # image IDs of the baseline builds, removed at the end

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
    argv = [DOCKER, "build", "-q", "--network", "host", "--secret", f"id=ca,src={CA}", "-t", "bench/baseline:1"]
    t, image = timed(argv + (["--no-cache"] if no_cache else []) + [str(base)], env=env)
    BUILT.add(image)   # a later build of the tag leaves this one untagged
    return t


def remove_bench_images(*, baseline: bool = True) -> None:
    """This benchmark's images, also those a later build of the same tag left untagged."""
    refs = sh([DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    ours = [r for r in refs if r.startswith(("dlbox/benchdigits-",) + (("bench/",) if baseline else ()))]
    ours += sh([DOCKER, "image", "ls", "-q", "--filter", "label=org.dlbox.project=benchdigits"]).stdout.split()
    ours += sorted(BUILT) if baseline else []
    if ours:
        subprocess.run([DOCKER, "rmi", *dict.fromkeys(ours)], capture_output=True)


def after_cold_run(before: set[str]) -> Callable[[], None]:
    """Between two cold builds of ours: their images and records (the baseline's stay, it is rebuilt next)."""
    return lambda: (remove_bench_images(baseline=False), prune_new_cache(before))


def cache_records() -> list[dict]:
    out = sh([DOCKER, "system", "df", "-v", "--format", "{{json .BuildCache}}"]).stdout
    return json.loads(out or "[]") or []


def prune_new_cache(before: set[str]) -> None:
    """BuildKit records this run made that no image shares (each rebuild leaves ~1 GB that nothing
    reuses: the disk filled up here once). Cache mounts are kept: they are everybody's download cache."""
    for _ in range(4):   # a record is freed once the records made on top of it are gone
        new = [r["ID"] for r in cache_records() if r["ID"] not in before and str(r["Shared"]).lower() == "false"
               and str(r["InUse"]).lower() == "false" and r["CacheType"] != "exec.cachemount"]
        if not new:
            return
        for rid in new:
            subprocess.run([DOCKER, "builder", "prune", "-f", "--filter", f"id={rid}"], capture_output=True)


def limit_only() -> None:
    sh([DOCKER, "image", "inspect", BASE])
    ours, _ = prepare()
    before = {r["ID"] for r in cache_records()}
    try:
        near = near_the_limit(ours, after_run=after_cold_run(before))
    finally:
        remove_bench_images()
        prune_new_cache(before)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["near_the_limit"] = near
    results.setdefault("ratios", {})["cold_build_over_physical_limit"] = near["ratio_build_over_limit"]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(near, indent=2))


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
    before = {r["ID"] for r in cache_records()}
    try:
        cold_base = baseline_build(base, no_cache=True)
        results["near_the_limit"] = near_the_limit(ours, after_run=after_cold_run(before))
        cold_ours = results["near_the_limit"]["dlbox_cold_build"]["seconds"]
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
        remove_bench_images()
        prune_new_cache(before)
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
    if "--only=limit" in sys.argv:
        limit_only()
    else:
        main()
