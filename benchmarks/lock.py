"""`dlbox lock` time with a warm cache, and `init -> first successful run` time, per project.

    .venv/bin/python benchmarks/lock.py            # lock times only (seconds, no Docker)
    .venv/bin/python benchmarks/lock.py --run      # + init -> first run (builds images: minutes)
    .venv/bin/python benchmarks/lock.py --run --no-lock --only conda-env,uv-lock   # some projects
    (--heavy also runs the HEAVY ones; --only names them explicitly and implies it)

Projects: tests/fixtures/lock-projects/* and tests/projects/*/ (with their dlbox-test.toml entry),
plus the bundled examples/digits. For each:
- baseline: a bare `uv pip compile` of the same requirements (the resolver alone, same cache);
- `dlbox lock --force` (plan + resolve + write; warm: one untimed run first), median of 3;
  target < 10 s each;
- with --run: a fresh copy, `dlbox init` then `dlbox run -- <entry>`, wall time to its exit,
  split into init and run (lock + build + run). The BuildKit cache is left as it is (never pruned
  here: the machine is shared), so `built` says whether the run built its image and the figure is
  "warm layer cache" when the same project's layers were built before on this machine. The load
  average before and after each measurement is recorded: this machine has 2 cores shared with
  other work, so the figures are an upper bound. The image each run made is removed after it.
Writes benchmarks/results/lock.json, keeping the entries of projects not measured this time.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DLBOX = str(ROOT / ".venv" / "bin" / "dlbox")
ENTRIES = {"extpkg": "python demo.py", "pyprojpkg": "tinypkg-hello", "visionapp": "python detect.py",
           "digits": "python train.py"}
HEAVY = {"visionapp"}  # init -> first run only with --heavy (several GB of CUDA wheels), + `heavy = true` projects


def heavy() -> set[str]:
    return HEAVY | {m.parent.name for m in (ROOT / "tests" / "projects").glob("*/dlbox-test.toml")
                    if tomllib.loads(m.read_text()).get("heavy")}


def projects() -> list[tuple[str, Path, str]]:
    out = [(p.name, p, ENTRIES[p.name]) for p in sorted((ROOT / "tests" / "fixtures" / "lock-projects").iterdir())
           if p.is_dir() and p.name in ENTRIES]
    out.append(("digits", ROOT / "examples" / "digits", ENTRIES["digits"]))
    for meta in sorted((ROOT / "tests" / "projects").glob("*/dlbox-test.toml")):
        cfg = tomllib.loads(meta.read_text())
        out.append((meta.parent.name, meta.parent, cfg["entry"]))
    return out


def run(argv, cwd=None, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def timed(argv, cwd=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    proc = run(argv, cwd)
    return time.monotonic() - t0, proc


def fresh_copy(src: Path, tmp: Path) -> Path:
    d = tmp / src.name
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("dlbox-test.toml", ".dlbox", "dlbox-*.lock", "outputs"))
    if src.name != "digits":
        (d / "dlbox.toml").unlink(missing_ok=True)
    return d


def bench_lock(name: str, d: Path) -> dict:
    if not (d / "dlbox.toml").exists():
        run([DLBOX, "init", str(d)])
    first = run([DLBOX, "lock", str(d), "--force"])
    if first.returncode != 0:
        return {"project": name, "error": first.stderr.strip().splitlines()[-2:]}
    times = []
    for _ in range(3):
        t, proc = timed([DLBOX, "lock", str(d), "--force"])
        times.append(t)
    lock = next(d.glob("dlbox-*.lock"))
    pins = [ln.split(" ")[0] for ln in lock.read_text().splitlines() if ln and not ln[0].isspace() and not ln.startswith("#")]
    # baseline: the resolver alone on the pins' names (same index, same cache)
    req = d / ".bench-requirements.in"
    req.write_text("\n".join(pins) + "\n")
    uv = str(ROOT / ".venv" / "bin" / "uv")
    base = []
    for _ in range(3):
        t, proc = timed([uv, "pip", "compile", str(req), "--python-version", "3.11", "--python-platform",
                         "x86_64-manylinux_2_36", "--find-links", "/opt/wheels", "--quiet", "--no-header"])
        base.append(t)
    req.unlink()
    return {"project": name, "lock_file": lock.name, "packages": len(pins),
            "dlbox_lock_warm_s": round(statistics.median(times), 2), "runs_s": [round(t, 2) for t in times],
            "baseline_uv_compile_warm_s": round(statistics.median(base), 2),
            "under_10_s": statistics.median(times) < 10}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def images(prefix: str) -> set[str]:
    out = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    return {i for i in out if i.startswith(prefix)}


def bench_first_run(name: str, src: Path, entry: str, tmp: Path) -> dict:
    d = fresh_copy(src, tmp)
    prefix = f"dlbox/{name}-"
    before_images = images(prefix)
    load_before = load()
    t0 = time.monotonic()
    init = run([DLBOX, "init", str(d)]) if not (d / "dlbox.toml").exists() else None
    t1 = time.monotonic()
    proc = run([DLBOX, "run", "-C", str(d), "--", *shlex.split(entry)])
    t2 = time.monotonic()
    made = sorted(images(prefix) - before_images)
    if made:
        run(["docker", "rmi", *made])     # disk is shared: the layers stay in the build cache
    return {"project": name, "entry": entry, "init_to_first_run_s": round(t2 - t0, 1),
            "init_s": round(t1 - t0, 1), "lock_build_run_s": round(t2 - t1, 1),
            "ok": proc.returncode == 0, "init_ok": init is None or init.returncode == 0,
            "built": "built " in proc.stderr, "load_before": load_before, "load_after": load(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tail": (proc.stdout + proc.stderr).strip().splitlines()[-1:] if proc.returncode else []}


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """Earlier entries of projects not measured this time are kept."""
    fresh = {r["project"] for r in new}
    return [r for r in old if r.get("project") not in fresh] + new


def main() -> None:
    with_run = "--run" in sys.argv
    only = set(sys.argv[sys.argv.index("--only") + 1].split(",")) if "--only" in sys.argv else None
    chosen = [p for p in projects() if only is None or p[0] in only]
    out = ROOT / "benchmarks" / "results" / "lock.json"
    old = json.loads(out.read_text()) if out.is_file() else {}
    results = {"machine": f"{platform.node()} ({os.cpu_count()} cores, shared)",
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cache": "first_run: the BuildKit layer cache is left as it is (shared machine, never pruned here): "
                        "base, venv and torch layers are usually warm, a project's own layers may be too; "
                        "load_before/load_after are os.getloadavg() on 2 shared cores",
               "lock": [], "first_run": []}
    with tempfile.TemporaryDirectory(prefix="dlbox-bench-lock-") as tmp:
        for name, src, entry in chosen if "--no-lock" not in sys.argv else ():
            d = fresh_copy(src, Path(tmp))
            r = {**bench_lock(name, d), "load_after": load()}
            print(json.dumps(r))
            results["lock"].append(r)
        if with_run:
            for name, src, entry in chosen:
                if name in heavy() and "--heavy" not in sys.argv and only is None:
                    continue
                r = bench_first_run(name, src, entry, Path(tmp) / "run")
                print(json.dumps(r), flush=True)
                results["first_run"].append(r)
    results["lock"] = merged(old.get("lock", []), results["lock"])
    results["first_run"] = merged(old.get("first_run", []), results["first_run"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
