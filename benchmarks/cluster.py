"""dlbox on the 2-node Slurm test cluster against a hand-written sbatch with `docker save | ssh node
docker load` to each node, same run, same cluster (scripts/slurm-world.sh).

    source /tmp/dlbox-world/env && source /tmp/dlbox-slurm/env && .venv/bin/python benchmarks/cluster.py

Measures:
1. image distribution to both nodes, first time (nodes without the image) and second time:
   baseline `docker save IMG | ssh nK docker load` per node; dlbox's layer deploy to every node
   (`dlbox cluster push`, Docker runtime); dlbox's content-addressed squashfs (Slurm OCI runtime);
2. time from submission to the first training step of examples/digits/train_ddp.py on 2 nodes:
   baseline sbatch (srun docker run … torchrun, no checks), dlbox submit with and without preflight.
Writes benchmarks/results/cluster.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DLBOX = str(ROOT / ".venv" / "bin" / "dlbox")
W = Path(os.environ.get("DLBOX_TEST_SLURM", "/tmp/dlbox-slurm"))
SHARED = Path(os.environ.get("DLBOX_TEST_SLURM_SHARED", W / "shared"))
SSH = ["ssh", "-F", os.environ.get("DLBOX_TEST_SLURM_SSH_CONFIG", str(W / "ssh" / "config"))]
NODES = ("n1", "n2")


def sh(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw)


def dlbox(*args, env) -> subprocess.CompletedProcess:
    return sh([DLBOX, *args], env=env, timeout=1800)


def timed(fn) -> float:
    t0 = time.monotonic()
    fn()
    return round(time.monotonic() - t0, 2)


def clear_nodes(image: str) -> None:
    for n in NODES:
        subprocess.run(SSH + [n, f"docker rmi -f {image} >/dev/null 2>&1; docker image prune -af >/dev/null 2>&1; "
                               "rm -rf ~/.cache/dlbox/incoming"], check=False)


def baseline_ship(image: str) -> None:
    for n in NODES:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(SSH + [n, "docker load -q"], stdin=save.stdout, check=True, capture_output=True)
        save.wait()


def first_step(job: str, t0_wall: float, timeout: float = 900) -> float:
    """Seconds from submission (wall clock t0) to rank 0's 'first step done at T' in the log."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for log in (SHARED / "logs").glob(f"*-{job}.out"):
            m = re.search(r"first step done at ([0-9.]+)", log.read_text(errors="replace"))
            if m:
                return round(float(m.group(1)) - t0_wall, 2)
        out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
        if re.search(r"JobState=(FAILED|CANCELLED|TIMEOUT|NODE_FAIL)", out):
            raise SystemExit(f"job {job} failed: {out[:300]}")
        time.sleep(0.5)
    raise SystemExit(f"job {job}: no first step within {timeout} s")


def wait_done(job: str) -> None:
    while True:
        out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
        if not re.search(r"JobState=(PENDING|RUNNING|COMPLETING|CONFIGURING)", out):
            return
        time.sleep(1)


BASELINE_SBATCH = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --output={shared}/logs/baseline-%j.out
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
srun docker run --rm --network host --ipc host -v {work}:/workspace -w /workspace \\
  -e GLOO_SOCKET_IFNAME=eth0 -e OMP_NUM_THREADS=1 -e EPOCHS=2 {image} \\
  torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint=$head:29400 \\
  --rdzv-id=$SLURM_JOB_ID train_ddp.py
"""


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="dlbox-bench-cluster-"))
    env = dict(os.environ, DLBOX_CONFIG=str(tmp / "config"), EPOCHS="2",
               DLBOX_SSH_CONFIG=os.environ.get("DLBOX_TEST_SLURM_SSH_CONFIG", str(W / "ssh" / "config")))
    project = tmp / "digits"
    shutil.copytree(ROOT / "examples" / "digits", project, ignore=shutil.ignore_patterns(".dlbox", "outputs"))
    dlbox("cluster", "add", "bench", "--slurm", "local", "--shared-dir", str(SHARED), env=env)
    image = dlbox("build", str(project), env=env).stdout.strip().splitlines()[-1]
    size = int(sh(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout)
    r: dict = {"image": image, "image_mb": round(size / 1e6), "nodes": len(NODES), "machine": f"{os.cpu_count()} vCPU, shared"}

    clear_nodes(image)
    r["ship_baseline_first_s"] = timed(lambda: baseline_ship(image))
    r["ship_baseline_second_s"] = timed(lambda: baseline_ship(image))
    clear_nodes(image)
    push = ["cluster", "push", "bench", "--runtime", "docker", "-C", str(project)]
    r["ship_dlbox_layers_first_s"] = timed(lambda: dlbox(*push, env=env))
    r["ship_dlbox_layers_second_s"] = timed(lambda: dlbox(*push, env=env))
    for f in list((SHARED / "images").glob("*.sqsh")) + list(Path(os.environ.get("DLBOX_CACHE", Path.home() / ".cache/dlbox")).glob("sqsh/*.sqsh")):
        f.unlink()
    sq = ["cluster", "push", "bench", "--runtime", "oci", "-C", str(project)]
    r["ship_dlbox_squashfs_first_s"] = timed(lambda: dlbox(*sq, env=env))
    r["ship_dlbox_squashfs_second_s"] = timed(lambda: dlbox(*sq, env=env))
    r["squashfs_mb"] = round(sum(f.stat().st_size for f in (SHARED / "images").glob("*.sqsh")) / 1e6)

    work = SHARED / "bench-baseline"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(project, work)
    (SHARED / "logs").mkdir(parents=True, exist_ok=True)
    script = BASELINE_SBATCH.format(shared=SHARED, work=work, image=image)
    t0 = time.time()
    job = sh(["sbatch", "--parsable"], input=script).stdout.strip()
    r["first_step_baseline_s"] = first_step(job, t0)
    wait_done(job)
    for label, extra in (("first_step_dlbox_no_preflight_s", ["--no-preflight"]), ("first_step_dlbox_s", [])):
        t0 = time.time()
        out = dlbox("submit", "-c", "bench", "-N", "2", "--runtime", "docker", *extra, "-C", str(project), "--",
                    "python", "train_ddp.py", env=env)
        job = out.stdout.strip().splitlines()[-1]
        r[label] = first_step(job, t0)
        wait_done(job)
    out = ROOT / "benchmarks" / "results" / "cluster.json"
    out.write_text(json.dumps(r, indent=2) + "\n")
    print(json.dumps(r, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
