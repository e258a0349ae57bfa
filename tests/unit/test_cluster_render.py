"""The sbatch script, the cluster's Host and Slurm's outputs, without a cluster (pure functions).

Outputs under tests/fixtures/slurm/ were recorded from the project's own Slurm 22.05 test cluster
(scripts/slurm-world.sh); nvidia-smi texts are the real ones of tests/fixtures/nvidia-smi/.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from dlbox.cluster import runtime as rt
from dlbox.cluster.config import Cluster, ClusterError
from dlbox.cluster.probe import MARK, ClusterFacts, NodeFacts, parse_node_lines
from dlbox.cluster.sbatch import JobPlan, launch_words, render
from dlbox.cluster.slurm import (
    parse_job_id,
    parse_scontrol_job,
    parse_sinfo_nodes,
    parse_squeue,
    parse_version,
    require_version,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures"
SLURM = FIX / "slurm"
SMI = FIX / "nvidia-smi"


def job(**kw) -> JobPlan:
    base = dict(name="dlbox-digits", project="digits", nodes=2, gpus_per_node=8, runtime="docker",
                image="dlbox/digits:abc", image_id="sha256:abc", workdir="/shared/runs/digits-1",
                shared_dir="/shared", command=("python", "train.py", "--lr", "0.1"), user="1000:1000",
                partition="gpu", time="4:00:00")
    base.update(kw)
    return JobPlan(**base)


def exported(text: str, var: str) -> str:
    """The value the batch script gives VAR (its export lines run by bash, up to the first step)."""
    head = text.split("\nsrun ")[0].replace("set -uo pipefail", "")
    env = {"PATH": "/usr/bin:/bin", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2"}
    proc = subprocess.run(["bash", "-c", head + f'\nprintf %s "${var}"'], capture_output=True, env=env)
    return proc.stdout.decode("utf-8", "surrogateescape")   # bytes: text mode would turn \r into \n


def test_sbatch_directives_and_shell_syntax():
    text = render(job(exclude=("n7",)), preflight_py="print(1)\n")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --time=4:00:00", "#SBATCH --partition=gpu", "#SBATCH --exclude=n7",
                 "#SBATCH --output=/shared/logs/%x-%j.out"):
        assert line in text
    assert subprocess.run(["bash", "-n"], input=text.encode()).returncode == 0


@pytest.mark.parametrize("runtime", ["docker", "podman", "pyxis", "apptainer", "oci"])
def test_every_runtime_renders_valid_bash(runtime):
    text = render(job(runtime=runtime, image="/shared/images/abc.sqsh" if runtime not in ("docker", "podman") else "img:1"),
                  preflight_py="print(1)\n")
    assert subprocess.run(["bash", "-n"], input=text.encode()).returncode == 0
    assert "--kill-on-bad-exit=1" in text


def test_docker_container_dies_with_the_job():
    text = render(job(), preflight_py="")
    node = exported(text, "DLBOX_NODE")
    assert "trap 'cleanup; exit 143' TERM INT" in node and "trap cleanup EXIT" in node
    assert 'docker rm -f "$DLBOX_CTR"' in node
    assert f"--label {rt.LABEL_JOB}=" in node.replace('"', "")
    assert "--network host --ipc host" in node
    assert '--gpus "\\"device=$CUDA_VISIBLE_DEVICES\\""' in node   # a comma list needs the inner quotes


def test_rendezvous_and_interface_come_from_the_job():
    text = render(job(), preflight_py="")
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1' in text
    inner = exported(text, "DLBOX_INNER")
    assert "PET_RDZV_BACKEND=c10d" in inner and "PET_RDZV_ENDPOINT=$DLBOX_HEAD_IP:$DLBOX_PORT" in inner
    assert "GLOO_SOCKET_IFNAME=$DLBOX_IFACE NCCL_SOCKET_IFNAME=$DLBOX_IFACE" in inner
    assert "exec torchrun train.py --lr 0.1" in inner


def test_user_words_are_quoted_not_run():
    evil = ("python", "t.py", "$(touch /tmp/pwned)", "; rm -rf /")
    inner = exported(render(job(command=evil), preflight_py=""), "DLBOX_INNER")
    assert "exec torchrun t.py '$(touch /tmp/pwned)' '; rm -rf /'" in inner


def test_launch_words():
    assert launch_words(("python", "x.py", "-a")) == ("torchrun", "x.py", "-a")
    assert launch_words(("/opt/venv/bin/python3", "-m", "pkg.train")) == ("torchrun", "-m", "pkg.train")
    assert launch_words(("torchrun", "--nproc-per-node=2", "x.py"))[0] == "torchrun"
    assert launch_words(("bash", "run.sh")) == ("bash", "run.sh")
    assert launch_words(("python", "-c", "print(1)")) == ("python", "-c", "print(1)")


def test_oci_bundle_keeps_host_network_and_drops_privileges():
    cfg = rt.oci_config(workdir="/shared/runs/x", uid=1000, gid=1000)
    assert [n["type"] for n in cfg["linux"]["namespaces"]] == ["pid", "mount"]
    assert "hostname" not in cfg
    assert cfg["process"]["noNewPrivileges"] and cfg["process"]["capabilities"]["bounding"] == []
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    text = render(job(runtime="oci", image="/shared/images/abc.sqsh"), preflight_py="")
    assert "squashfuse -f" in text and "--container=/tmp/dlbox-oci-$SLURM_JOB_ID" in text


def test_slurm_outputs_recorded_from_22_05():
    assert parse_version((SLURM / "sinfo-version.txt").read_text()).release[:2] == (22, 5)
    assert parse_version("slurm 23.11.4").release == (23, 11, 4)
    rows = parse_sinfo_nodes((SLURM / "sinfo-nodes.txt").read_text())
    assert [(r.name, r.state, r.cpus) for r in rows] == [("n1", "idle", 2), ("n2", "idle", 2)]
    row = parse_scontrol_job((SLURM / "scontrol-job.txt").read_text())
    assert (row.job_id, row.name, row.state, row.exit_code) == ("5", "dlbox-digits", "COMPLETED", "0:0")
    assert parse_squeue("12|dlbox-digits|RUNNING|0:05|n[1-2]|None\n")[0].nodes == "n[1-2]"
    assert parse_job_id("42\n") == "42" and parse_job_id("42;uni\n") == "42"
    with pytest.raises(ClusterError, match="did not print a job ID"):
        parse_job_id("sbatch: error: Batch job submission failed: Invalid partition name specified")


def test_old_slurm_is_refused_by_name():
    with pytest.raises(ClusterError, match=r"Slurm 20.02.7 on uni is older than 20.11"):
        require_version(parse_version("slurm 20.02.7"), "uni")
    with pytest.raises(ClusterError, match=r"srun --container"):
        require_version(parse_version("slurm 21.08.8"), "uni", oci=False) or require_version(
            parse_version("slurm 20.11.9"), "uni", oci=True)


def node_lines(name: str, runtimes: list[str], smi_file: str | None) -> str:
    out = [f"{MARK}|{name}|runtime|{r}" for r in runtimes] + [f"{MARK}|{name}|cpus|64"]
    if smi_file:
        out += [f"{MARK}|{name}|smi|{ln}" for ln in (SMI / smi_file).read_text().splitlines()]
    return "\n".join(out + [f"{MARK}|{name}|done|1"]) + "\n"


def test_cluster_host_is_the_lowest_driver_and_every_gpu():
    text = node_lines("g1", ["docker", "enroot"], "h100-570.133.20.txt") + \
        node_lines("g2", ["docker", "enroot", "apptainer"], "multi-gpu-a100-580.126.09.txt") + \
        f"{MARK}|g3|runtime|docker\n"   # g3 never finished: not counted
    nodes = parse_node_lines(text)
    assert [n.name for n in nodes] == ["g1", "g2"]
    facts = ClusterFacts("uni", "23.11.4", True, "/scratch/me/.dlbox", tuple(nodes))
    host = facts.host()
    assert host.driver.driver_version == "570.133.20"
    assert {g.compute_cap for g in host.driver.gpus} == {"9.0", "8.0"}
    assert "g1" in host.driver.source
    assert facts.runtimes() == ("pyxis", "docker") and facts.pick_runtime() == "pyxis"
    assert ClusterFacts.from_dict(facts.to_dict()).host() == host


def test_cluster_host_plans_for_the_oldest_driver():
    from dlbox.plan import resolve
    from dlbox.plan.gpu import choose  # noqa: F401 - the resolver is the same one `plan` uses
    from dlbox.spec import load_spec

    old = node_lines("old", ["docker"], "quadro-m6000-470.199.02-in-cuda11.8.txt")
    new = node_lines("new", ["docker"], "h100-570.133.20.txt")
    facts = ClusterFacts("uni", "22.05.8", False, "/s", tuple(parse_node_lines(old + new)))
    spec = load_spec(Path(__file__).resolve().parents[2] / "examples" / "digits")
    plan = resolve(spec, facts.host())
    assert plan.choice.gpu and tuple(int(x) for x in plan.choice.cuda.split(".")[:2]) < (12, 0)  # R470: CUDA 11.x
    assert "old" in plan.choice.reasons[0] or any("470.199.02" in r for r in plan.reasons)


def test_missing_runtime_names_the_nodes():
    nodes = parse_node_lines(node_lines("a", ["docker"], None) + node_lines("b", ["podman"], None))
    facts = ClusterFacts("lab", "22.05.8", False, "/s", tuple(nodes))
    with pytest.raises(ClusterError, match="no container runtime is present on every node of lab .*a: docker; b: podman"):
        facts.pick_runtime()
    with pytest.raises(ClusterError, match=r"runtime docker is missing on node\(s\) b of cluster lab"):
        facts.pick_runtime("docker")


@pytest.mark.parametrize("field,value,message", [
    ("name", "bad name", "cluster name 'bad name' is not valid"),
    ("runtime", "lxc", "runtime 'lxc' of cluster c is not one of"),
    ("partition", "gpu;rm", "partition 'gpu;rm' of cluster c"),
    ("shared_dir", "/x/$(reboot)", "shared directory '/x/$(reboot)' of cluster c"),
    ("login", "me@", "is not a server address"),
])
def test_cluster_fields_are_checked(field, value, message):
    kw = {"name": "c", field: value}
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        Cluster(**kw).validate()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORD = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(st.lists(WORD, min_size=1, max_size=5))
def test_any_command_words_reach_torchrun_unchanged(words):
    """Whatever the user types after --, each node runs exactly those words (bash parses them back)."""
    inner = exported(render(job(command=("python", *words)), preflight_py=""), "DLBOX_INNER")
    rest = inner[inner.rindex("\nexec torchrun ") + len("\nexec torchrun "):]
    script = f'set -- {rest}\nfor w in "$@"; do printf "%s\\0" "$w"; done'
    proc = subprocess.run(["bash", "-c", script], capture_output=True)
    assert proc.stdout.split(b"\0")[:-1] == [w.encode("utf-8", "surrogateescape") for w in words]


def test_a_value_holding_the_heredoc_delimiter_falls_back_to_quoting():
    from dlbox.cluster.sbatch import export_text

    text = export_text("X", "a\nDLBOX_EOF\nb")
    proc = subprocess.run(["bash", "-c", text + '\nprintf %s "$X"'], capture_output=True)
    assert proc.stdout == b"a\nDLBOX_EOF\nb"


def test_podman_nodes_need_a_registry():
    from dlbox.cluster.images import ship

    with pytest.raises(ClusterError, match="runs Podman on its nodes: dlbox ships to them through a registry"):
        ship(Cluster("lab"), docker=None, ref="img:1", runtime="podman", shared_dir="/s", nodes=["a"], say=print)
