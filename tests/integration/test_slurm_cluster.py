"""dlbox on a real Slurm 22.05 cluster: two nodes in network namespaces, each with its own Docker
engine and sshd (scripts/slurm-world.sh, started by scripts/test.sh).

- `dlbox submit -N 2` trains examples/digits/train_ddp.py with DDP (gloo on CPU) across both nodes
  inside containers, with the Docker runtime and with Slurm's own OCI runtime (the shared
  content-addressed squashfs, squashfuse-mounted per node); every rank ends with the same parameters.
- `dlbox cancel` leaves no container on any node (the node wrapper removes it on scancel's TERM).
- A node with a broken /dev/shm fails `dlbox verify --cluster` by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.docker, pytest.mark.slurm]
LABEL = "org.dlbox.slurm_job"


@pytest.fixture(scope="module")
def world(docker_engine, tmp_path_factory):
    w = os.environ.get("DLBOX_TEST_SLURM")
    if not w:
        if os.environ.get("CI"):
            pytest.fail("no Slurm test cluster: scripts/test.sh starts one (scripts/slurm-world.sh up)")
        pytest.skip("no Slurm test cluster (bash scripts/slurm-world.sh up; source /tmp/dlbox-slurm/env)")
    env = dict(os.environ)
    env.update(DLBOX_CONFIG=str(tmp_path_factory.mktemp("dlbox-config")),
               DLBOX_SSH_CONFIG=os.environ["DLBOX_TEST_SLURM_SSH_CONFIG"], EPOCHS="2")
    project = tmp_path_factory.mktemp("slurm") / "digits"
    shutil.copytree(ROOT / "examples" / "digits", project, ignore=shutil.ignore_patterns(".dlbox", "outputs"))
    toml = project / "dlbox.toml"
    toml.write_text(toml.read_text().replace('shm = "host"', 'shm = "host"\nenv = { EPOCHS = "2" }'))
    dlbox("cluster", "add", "t", "--slurm", "local", "--shared-dir", os.environ["DLBOX_TEST_SLURM_SHARED"], env=env)
    return {"env": env, "project": project, "dir": Path(w)}


def dlbox(*args: str, env: dict, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "dlbox"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dlbox {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def node_containers(world, node: str, job: str) -> list[str]:
    pid = (world["dir"] / "nodes" / node / "holder.pid").read_text().strip()
    out = subprocess.run(["nsenter", "-t", pid, "-m", "-u", "-n", "docker", "ps", "-aq", "--filter", f"label={LABEL}={job}"],
                         capture_output=True, text=True, timeout=60).stdout
    return out.split()


def wait_job(world, job: str, timeout: float = 600) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
        m = re.search(r"JobState=(\S+)", out)
        if m and m.group(1) not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            return m.group(1)
        time.sleep(1)
    raise AssertionError(f"job {job} still running after {timeout} s")


def submit(world, *args: str) -> str:
    proc = dlbox("submit", "-c", "t", "-N", "2", "-C", str(world["project"]), *args, env=world["env"])
    return proc.stdout.strip().splitlines()[-1]


def test_probe_names_nodes_and_runtimes(world):
    out = dlbox("cluster", "probe", "t", env=world["env"]).stdout
    assert "Slurm 22.05" in out
    assert re.search(r"n1\s+docker, oci", out) and re.search(r"n2\s+docker, oci", out), out
    assert "runtime dlbox uses: docker" in out
    plan = json.loads(dlbox("plan", "--cluster", "t", "--json", str(world["project"]), env=world["env"]).stdout)
    assert plan["gpu"] is False   # the test nodes have no NVIDIA driver: the image for them is a CPU one


def check_ddp(world, job: str) -> str:
    state = wait_job(world, job)
    log = dlbox("logs", job, env=world["env"]).stdout
    assert state == "COMPLETED", log[-3000:]
    ranks = re.findall(r"rank=(\d)/2 host=(n\d) .* params_sum=(\S+) params_equal_across_ranks=(\w+)", log)
    assert sorted(r[0] for r in ranks) == ["0", "1"] and {r[1] for r in ranks} == {"n1", "n2"}, log[-3000:]
    assert all(r[3] == "True" for r in ranks) and len({r[2] for r in ranks}) == 1
    assert "first step done" in log
    return log


def test_two_node_ddp_in_docker_with_preflight(world):
    job = submit(world, "--runtime", "docker", "--", "python", "train_ddp.py")
    log = check_ddp(world, job)
    for node in ("n1", "n2"):
        assert f"DLBOX-PREFLIGHT|{node}|shm|ok" in log and f"DLBOX-PREFLIGHT|{node}|iface|ok|eth0" in log
        assert node_containers(world, node, job) == []
    assert "allreduce|ok|gloo all-reduce" in log


def test_two_node_ddp_in_slurm_oci_from_the_shared_squashfs(world):
    job = submit(world, "--runtime", "oci", "--no-preflight", "--", "python", "train_ddp.py")
    log = check_ddp(world, job)
    assert "runtime oci" in log
    images = list((Path(world["env"]["DLBOX_TEST_SLURM_SHARED"]) / "images").glob("*.sqsh"))
    assert images, "the squashfs is content-addressed on the shared directory"
    again = dlbox("cluster", "push", "t", "--runtime", "oci", "-C", str(world["project"]), env=world["env"])
    assert "is already on t" in again.stderr   # made once per image ID, skipped when present


def test_cancel_leaves_no_container_on_any_node(world):
    job = submit(world, "--runtime", "docker", "--no-preflight", "--", "sleep", "600")
    end = time.monotonic() + 180
    while time.monotonic() < end and not all(node_containers(world, n, job) for n in ("n1", "n2")):
        time.sleep(1)
    assert all(node_containers(world, n, job) for n in ("n1", "n2")), "the job's containers never started"
    subprocess.run(["scancel", job], check=True)          # plain scancel, as a user would
    assert wait_job(world, job, timeout=120) == "CANCELLED"
    end = time.monotonic() + 30                           # the wrapper's trap runs `docker rm -f` on TERM
    while time.monotonic() < end and any(node_containers(world, n, job) for n in ("n1", "n2")):
        time.sleep(1)
    assert node_containers(world, "n1", job) == [] and node_containers(world, "n2", job) == []
    out = dlbox("cancel", job, env=world["env"])          # dlbox cancel still checks every node
    assert "no container left" in out.stderr, out.stderr


def test_login_node_over_ssh_and_render_only(world):
    """The login node reached with ssh (sshd on the test cluster's head address): probe, jobs, --render."""
    env = world["env"]
    dlbox("cluster", "add", "s", "--slurm", os.environ["DLBOX_TEST_SLURM_LOGIN"], "--shared-dir",
          os.environ["DLBOX_TEST_SLURM_SHARED"], "--no-probe", env=env)
    assert re.search(r"n2\s+docker, oci", dlbox("cluster", "probe", "s", env=env).stdout)
    dlbox("jobs", "--cluster", "s", env=env)
    script = dlbox("submit", "-c", "s", "-N", "2", "--runtime", "oci", "--render", "-C", str(world["project"]),
                   "--", "python", "train_ddp.py", env=env).stdout
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=dlbox-digits\n#SBATCH --nodes=2")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "export EPOCHS=2" in script


def test_broken_node_fails_preflight_by_name(world):
    holder = (world["dir"] / "nodes" / "n2" / "holder.pid").read_text().strip()
    # n2's /dev/shm becomes 1 MiB (what a default Docker --shm-size 64m or a full tmpfs look like to NCCL)
    subprocess.run(["nsenter", "-t", holder, "-m", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", "/dev/shm"], check=True)
    try:
        proc = dlbox("verify", "--cluster", "t", "-N", "2", str(world["project"]), env=world["env"], check=False)
    finally:
        subprocess.run(["nsenter", "-t", holder, "-m", "umount", "/dev/shm"], check=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "preflight failed on n2" in proc.stderr and "--exclude n2" in proc.stderr, proc.stderr
    assert re.search(r"fail\s+n2\s+shm", proc.stdout), proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_input_is_one_line(world):
    env = world["env"]
    for args, message in [
        (("submit", "-c", "nope", "-N", "2", "--", "python", "x.py"), "no cluster named 'nope'"),
        (("submit", "-c", "t", "-N", "5", "-C", str(world["project"]), "--", "python", "x.py"), "-N 5 asks for more nodes than t has up (2)"),
        (("submit", "-c", "t", "-N", "2", "--runtime", "pyxis", "-C", str(world["project"]), "--", "python", "x.py"),
         "runtime pyxis is missing on node(s) n1, n2 of cluster t"),
        (("cluster", "add", "x", "--slurm", "root@10.253.0.99", "--shared-dir", "/tmp"), "Cannot reach root@10.253.0.99 over SSH"),
        (("cluster", "logs", "999999", "--cluster", "t"), "no log for job 999999 on t: slurm_load_jobs error: Invalid job id"),
    ]:
        proc = dlbox(*args, env=env, check=False, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
