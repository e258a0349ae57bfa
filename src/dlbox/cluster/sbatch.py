"""JobPlan → the sbatch script (pure; `dlbox submit --render` prints it, `sbatch FILE` runs it).

The script, on the first node of the allocation:
1. finds the head node and its IPv4 address (the rendezvous is an address, not a name: DNS for
   fresh hosts lags, pytorch#73682 / #150532);
2. for the Slurm-OCI runtime, mounts the shared squashfs as the bundle's rootfs on every node
   (a background `srun --overlap` step that holds the mount for the job only);
3. runs ONE step, one task per node: the container starts, the node's checks run, then a
   cross-node all-reduce (the preflight), then the user's command under torchrun with a c10d
   rendezvous on the head node. `--kill-on-bad-exit` stops every node when one fails.
Under Docker/Podman the container is the engine's child, not Slurm's, so the node wrapper names
it after the job, traps scancel's TERM and removes it (`docker rm -f`), and cleans up on exit.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.cluster import runtime as rt

RDZV_PORT = 29500
# The interface towards the head node, from the node's route to it (NCCL/Gloo pick a wrong one
# on multi-NIC nodes otherwise, pytorch#64926). `ip` on the node, Python inside the image.
IFACE_SH = r"""dlbox_iface() {
  local d=""
  if command -v ip >/dev/null 2>&1; then
    d=$(ip -o route get "$1" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    [ "$d" = lo ] && d=$(ip -o addr show 2>/dev/null | awk -v a="$1" '{split($4,x,"/"); if (x[1]==a) {print $2; exit}}')
  fi
  [ -n "$d" ] || d=$(python3 -c "$DLBOX_IFACE_PY" "$1" 2>/dev/null || python -c "$DLBOX_IFACE_PY" "$1" 2>/dev/null)
  echo "$d"
}"""
IFACE_PY = ("import socket,fcntl,struct,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect((sys.argv[1],9));me=s.getsockname()[0]\n"
            "for i,n in socket.if_nameindex():\n"
            " try:a=socket.inet_ntoa(fcntl.ioctl(s.fileno(),0x8915,struct.pack('256s',n.encode()[:15]))[20:24])\n"
            " except OSError:continue\n"
            " if a==me:print(n);break\n")


@dataclass(frozen=True)
class JobPlan:
    name: str                      # job name, "dlbox-<project>"
    project: str
    nodes: int
    gpus_per_node: int
    runtime: str                   # pyxis | apptainer | docker | podman | oci
    image: str                     # docker ref, or the squashfs path on the shared directory
    image_id: str
    workdir: str                   # the project on the shared filesystem → /workspace
    shared_dir: str                # resolved, absolute
    command: tuple[str, ...]
    user: str = "1000:1000"
    partition: str | None = None
    time: str | None = None
    exclude: tuple[str, ...] = ()
    preflight: bool = True
    run: bool = True               # False: the preflight alone (`dlbox verify --cluster`)
    min_shm_gib: float = 1.0
    port: int = RDZV_PORT
    extra_env: tuple[tuple[str, str], ...] = ()
    reasons: tuple[str, ...] = field(default=(), compare=False)

    @property
    def nproc_per_node(self) -> int:
        return self.gpus_per_node or 1

    @property
    def log_dir(self) -> str:
        return f"{self.shared_dir}/logs"


def launch_words(command: tuple[str, ...]) -> tuple[str, ...]:
    """The user's command → what each node runs. `python X …` becomes `torchrun X …` (torchrun
    reads --nnodes/--rdzv-* from the PET_* variables dlbox sets); `torchrun …` is kept (the same
    variables fill what it does not say); anything else runs as is, with MASTER_ADDR/PORT set."""
    if not command:
        return ()
    first = Path(command[0]).name
    if first in ("python", "python3") and len(command) > 1 and command[1] not in ("-c",):
        return ("torchrun",) + command[1:]
    return command


def inner_script(p: JobPlan) -> str:
    """What runs inside the container on each node ($DLBOX_INNER)."""
    run = "exec " + " ".join(shlex.quote(w) for w in launch_words(p.command)) if p.run else "exit 0"
    pre = ""
    if p.preflight:
        pre = ('f=$(mktemp /tmp/dlbox-preflight.XXXXXX.py) && printf "%s" "$DLBOX_PREFLIGHT_PY" > "$f"\n'
               'torchrun --rdzv-id="pre-$DLBOX_JOB" --rdzv-endpoint="$DLBOX_HEAD_IP:$((DLBOX_PORT + 2))" "$f" || exit 3\n'
               'rm -f "$f"\n')
    return f"""[ -f {rt.ENV_FILE} ] && . {rt.ENV_FILE}   # the image's ENV (squashfs runtimes replace PATH)
{IFACE_SH}
cd {rt.WORKSPACE} || exit 3
[ -n "${{DLBOX_IFACE:-}}" ] || DLBOX_IFACE=$(dlbox_iface "$DLBOX_HEAD_IP")
export GLOO_SOCKET_IFNAME=$DLBOX_IFACE NCCL_SOCKET_IFNAME=$DLBOX_IFACE
export MASTER_ADDR=$DLBOX_HEAD_IP MASTER_PORT=$((DLBOX_PORT + 1)) WORLD_SIZE=$((DLBOX_NNODES * {p.nproc_per_node}))
export PET_NNODES=$DLBOX_NNODES PET_NPROC_PER_NODE={p.nproc_per_node} PET_RDZV_BACKEND=c10d
export PET_RDZV_ENDPOINT=$DLBOX_HEAD_IP:$DLBOX_PORT PET_RDZV_ID=$DLBOX_JOB PET_MAX_RESTARTS=0
export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-1}} PYTHONUNBUFFERED=1
{pre}{run}
"""


def node_wrapper(p: JobPlan, step: rt.Step) -> str:
    """Docker/Podman: runs on the node, outside the container (the step's command)."""
    engine = p.runtime
    return f"""DLBOX_CTR="dlbox-$SLURM_JOB_ID-$SLURM_STEP_ID-$(hostname -s)"
{IFACE_SH}
export DLBOX_IFACE=$(dlbox_iface "$DLBOX_HEAD_IP")
if ! {engine} image inspect {shlex.quote(p.image)} >/dev/null 2>&1; then
  echo "DLBOX-PREFLIGHT|$(hostname -s)|image|fail|{p.image} is not in this node's {engine} engine (dlbox cluster push)"; exit 3
fi
cleanup() {{ {engine} rm -f "$DLBOX_CTR" >/dev/null 2>&1 || true; }}
trap 'cleanup; exit 143' TERM INT
trap cleanup EXIT
{rt.quote_argv(step.argv)} bash -c "$DLBOX_INNER" &
wait $!
"""


def render(p: JobPlan, *, preflight_py: str, dlbox_version: str = "") -> str:
    step = rt.step(p.runtime, image=p.image, workdir=p.workdir, user=p.user, gpus=p.gpus_per_node,
                   env_names=tuple(ENV_NAMES) + tuple(k for k, _ in p.extra_env),
                   bundle="/tmp/dlbox-oci-$SLURM_JOB_ID")
    d = [f"#SBATCH --job-name={p.name}", f"#SBATCH --nodes={p.nodes}", "#SBATCH --ntasks-per-node=1",
         f"#SBATCH --output={p.log_dir}/%x-%j.out"]
    if p.gpus_per_node:
        d.append(f"#SBATCH --gpus-per-node={p.gpus_per_node}")
    if p.time:
        d.append(f"#SBATCH --time={p.time}")
    if p.partition:
        d.append(f"#SBATCH --partition={p.partition}")
    if p.exclude:
        d.append(f"#SBATCH --exclude={','.join(p.exclude)}")
    why = "".join(f"#   {r}\n" for r in p.reasons)
    env = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in p.extra_env)
    lines = [
        "#!/bin/bash", *d,
        f"# Rendered by dlbox {dlbox_version} for project {p.project}: runtime {p.runtime}, image {p.image}",
        f"# ({p.image_id}). It runs as is: sbatch THIS_FILE.",
        why.rstrip("\n"),
        "set -uo pipefail",
        'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
        "HEAD_IP=$(getent ahostsv4 \"$HEAD\" | awk 'NR==1 {print $1}')",
        # a port per job (jobs may share a node): base + 4 * (job ID mod 500)
        f"export DLBOX_HEAD_IP=${{HEAD_IP:-$HEAD}} DLBOX_PORT=$(({p.port} + 4 * (SLURM_JOB_ID % 500))) DLBOX_NNODES=$SLURM_JOB_NUM_NODES",
        f"export DLBOX_JOB=$SLURM_JOB_ID DLBOX_GPUS_PER_NODE={p.gpus_per_node} DLBOX_MIN_SHM_GIB={p.min_shm_gib:g}",
        env.rstrip("\n"),
        export_text("DLBOX_IFACE_PY", IFACE_PY),
        export_text("DLBOX_PREFLIGHT_PY", preflight_py),
        "# what each node runs inside the container:",
        export_text("DLBOX_INNER", inner_script(p)),
        'echo "dlbox: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, rendezvous $DLBOX_HEAD_IP:$DLBOX_PORT, '
        f'runtime {p.runtime}, $(date -u +%FT%TZ)"',
    ]
    srun = ["srun", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--export=ALL"]
    if p.runtime == "oci":
        lines += oci_mount_lines(p)
        srun.append("--overlap")
    if p.runtime in ("docker", "podman"):
        lines.append("# what each node runs around the container (the container dies with the job):")
        lines.append(export_text("DLBOX_NODE", node_wrapper(p, step)))
        lines.append(" ".join(srun) + ' bash -c "$DLBOX_NODE"')
    else:
        lines.append(" ".join(srun + [rt.quote_argv(step.srun_flags + step.argv)]).rstrip() + ' bash -c "$DLBOX_INNER"')
    lines += ["rc=$?", 'echo "dlbox: job $SLURM_JOB_ID finished with exit status $rc, $(date -u +%FT%TZ)"', "exit $rc", ""]
    return "\n".join(ln for ln in lines if ln != "")


def export_text(name: str, value: str) -> str:
    """A multi-line value as a readable quoted heredoc (the ejected script stays legible); plain
    shell quoting when the value holds the delimiter line."""
    end = "DLBOX_EOF"
    if f"\n{end}\n" in f"\n{value}\n" or not value.strip():
        return f"export {name}={shlex.quote(value)}"
    return f"{name}=$(cat <<'{end}'\n{value.rstrip(chr(10))}\n{end}\n)\nexport {name}"


ENV_NAMES = ("DLBOX_HEAD_IP", "DLBOX_PORT", "DLBOX_NNODES", "DLBOX_JOB", "DLBOX_GPUS_PER_NODE", "DLBOX_MIN_SHM_GIB",
             "DLBOX_IFACE", "DLBOX_IFACE_PY", "DLBOX_PREFLIGHT_PY", "DLBOX_INNER")


def oci_mount_lines(p: JobPlan) -> list[str]:
    """The OCI bundle on every node for this job: config.json + the shared squashfs mounted
    read-only as rootfs by a background step, unmounted when the job ends (or is cancelled)."""
    b = "/tmp/dlbox-oci-$SLURM_JOB_ID"
    user = p.user.split(":")
    cfg = rt.oci_config_text(workdir=p.workdir, uid=int(user[0]), gid=int(user[1]))
    sq = shlex.quote(p.image)
    mount = (f'mkdir -p {b}/rootfs && printf "%s" "$DLBOX_OCI_CONFIG" > {b}/config.json && '
             f'exec squashfuse -f {sq} {b}/rootfs')
    ready = f"for i in $(seq 300); do mountpoint -q {b}/rootfs && exit 0; sleep 0.1; done; echo \"DLBOX-PREFLIGHT|$(hostname -s)|image|fail|cannot mount {p.image}\"; exit 3"
    return [
        export_text("DLBOX_OCI_CONFIG", cfg),
        # stderr dropped: its only words are Slurm's about this step being killed at the end
        f"srun --ntasks-per-node=1 --overlap --export=ALL --quiet bash -c {shlex.quote(mount)} 2>/dev/null &",
        "MOUNT_STEP=$!",
        "trap 'kill $MOUNT_STEP 2>/dev/null' EXIT",
        f"srun --ntasks-per-node=1 --overlap bash -c {shlex.quote(ready)} || exit 3",
    ]
