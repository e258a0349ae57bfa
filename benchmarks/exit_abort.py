"""How often torch's exit-time abort hits a 2-node gloo run that ends the usual way, on the test cluster.

    source /tmp/dlbox-slurm/env && .venv/bin/python benchmarks/exit_abort.py [RUNS]

Each run: `srun -N2 docker run … torchrun` of a tiny DDP script whose ranks all print success, then
return normally (destroy_process_group, interpreter teardown) — no barrier, no os._exit. A run counts
as an abort when every rank printed success and the job still failed with "terminate called without
an active exception" / SIGABRT. dlbox's own preflight and examples/digits/train_ddp.py end with a
barrier and os._exit instead; their runs are counted from the job logs of the same cluster.
Writes benchmarks/results/exit_abort.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W = Path(os.environ.get("DLBOX_TEST_SLURM", "/tmp/dlbox-slurm"))
SHARED = Path(os.environ.get("DLBOX_TEST_SLURM_SHARED", W / "shared"))
SCRIPT = """import torch, torch.distributed as dist
dist.init_process_group("gloo")
x = torch.ones(4); dist.all_reduce(x)
print(f"rank {dist.get_rank()} ok {x[0].item()}", flush=True)
dist.destroy_process_group()
"""
SBATCH = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --output={out}
head=$(getent ahostsv4 $(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1) | awk 'NR==1{{print $1}}')
srun --kill-on-bad-exit=1 docker run --rm --network host --ipc host -v {work}:/w -w /w -e GLOO_SOCKET_IFNAME=eth0 \\
  -e OMP_NUM_THREADS=1 {image} torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d \\
  --rdzv-endpoint=$head:$((29700 + SLURM_JOB_ID % 200)) --rdzv-id=$SLURM_JOB_ID plain.py
"""


def node_image() -> str:
    pid = (W / "nodes" / "n1" / "holder.pid").read_text().strip()
    out = subprocess.run(["nsenter", "-t", pid, "-m", "-u", "-n", "docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True).stdout.split()
    imgs = [i for i in out if i.startswith("dlbox/digits")]
    if not imgs:
        sys.exit("no dlbox/digits image on the nodes: run the cluster tests or benchmarks/cluster.py first")
    return imgs[0]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    work = SHARED / "exit-abort"
    work.mkdir(parents=True, exist_ok=True)
    (work / "plain.py").write_text(SCRIPT)
    image = node_image()
    results = []
    for i in range(runs):
        out = work / f"run-{i}.out"
        out.unlink(missing_ok=True)
        job = subprocess.run(["sbatch", "--parsable"], input=SBATCH.format(out=out, work=work, image=image),
                             capture_output=True, text=True, check=True).stdout.strip()
        while re.search(r"JobState=(PENDING|RUNNING|COMPLETING|CONFIGURING)",
                        subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout):
            time.sleep(1)
        log = out.read_text(errors="replace")
        ok_ranks = len(re.findall(r"rank \d ok 2.0", log))
        state = re.search(r"JobState=(\S+)", subprocess.run(["scontrol", "-o", "show", "job", job],
                                                           capture_output=True, text=True).stdout)
        results.append({"job": job, "ranks_ok": ok_ranks, "state": state.group(1) if state else "?",
                        "abort": "terminate called without an active exception" in log or "SIGABRT" in log})
        print(results[-1], flush=True)
    guarded = [p for p in (SHARED / "logs").glob("dlbox-*.out")
               if "params_equal_across_ranks=True" in p.read_text(errors="replace") or "allreduce|ok" in p.read_text(errors="replace")]
    guarded_aborts = [p.name for p in guarded if "terminate called without an active exception" in p.read_text(errors="replace")]
    r = {"torch_image": image, "plain_runs": runs, "plain_aborts_after_success": sum(1 for x in results if x["abort"] and x["ranks_ok"] == 2),
         "plain_failed": sum(1 for x in results if x["state"] != "COMPLETED"), "plain": results,
         "guarded_runs_in_logs": len(guarded), "guarded_aborts": len(guarded_aborts)}
    (ROOT / "benchmarks" / "results" / "exit_abort.json").write_text(json.dumps(r, indent=2) + "\n")
    print(json.dumps({k: v for k, v in r.items() if k != "plain"}, indent=2))


if __name__ == "__main__":
    main()
