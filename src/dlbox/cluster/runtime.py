"""The container step on each node, for each runtime a cluster may have (pure text).

Order when several are present (documented in the README): pyxis > Apptainer > Docker >
Podman > Slurm OCI. pyxis and Apptainer read one squashfs from the shared directory and need
no daemon; Docker/Podman need the image in every node's engine (dlbox ships it layer by layer);
Slurm's own `--container` needs an OCI bundle at the same path on every node (dlbox mounts the
shared squashfs with squashfuse as the bundle's rootfs, one mount per node, for the job only).

Every runtime shares the host network (torchrun's rendezvous and NCCL/Gloo see the node's
address) and the host's /dev/shm or an IPC namespace with a large shm.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

WORKSPACE = "/workspace"
ENV_FILE = "/.dlbox/env.sh"          # the image's ENV as shell, written into squashfs images
LABEL_JOB = "org.dlbox.slurm_job"


@dataclass(frozen=True)
class Step:
    """What the batch script runs: `srun_flags` on srun, then `argv` on each node."""

    srun_flags: tuple[str, ...]
    argv: tuple[str, ...]           # the node's command, before the launcher's own words
    in_container: bool              # the launcher runs inside the container (else on the node)


def engine_run(engine: str, *, image: str, workdir: str, user: str, gpus: int, env_names: tuple[str, ...],
               memlock: bool) -> tuple[str, ...]:
    """`docker run`/`podman run` for one node: host network and IPC, the job's GPUs, a name and
    label carrying the job ID (the node wrapper removes it on exit and on scancel's TERM)."""
    argv = [engine, "run", "--rm", "--init", "--name", '"$DLBOX_CTR"', "--label", f"{LABEL_JOB}=$SLURM_JOB_ID",
            "--network", "host", "--ipc", "host", "--user", user, "-v", f"{workdir}:{WORKSPACE}", "-w", WORKSPACE,
            # as every container dlbox starts: nothing in it can gain privileges (tests/security/)
            "--security-opt", "no-new-privileges", "--cap-drop", "ALL"]
    if engine == "podman":
        argv += ["--cgroup-manager=cgroupfs"]
    if gpus:
        # the GPUs Slurm gave this task (gres sets CUDA_VISIBLE_DEVICES); CDI names for podman
        argv += (["--gpus", '"\\"device=$CUDA_VISIBLE_DEVICES\\""'] if engine == "docker"
                 else ["--device", "nvidia.com/gpu=all"])
        if memlock:
            argv += ["--ulimit", "memlock=-1:-1"]
    for name in env_names:
        argv += ["-e", name]
    argv += [image]
    return tuple(argv)


def step(runtime: str, *, image: str, workdir: str, user: str, gpus: int, env_names: tuple[str, ...],
         bundle: str = "", memlock: bool = True) -> Step:
    if runtime in ("docker", "podman"):
        return Step((), engine_run(runtime, image=image, workdir=workdir, user=user, gpus=gpus,
                                   env_names=env_names, memlock=memlock), in_container=True)
    if runtime == "pyxis":
        flags = (f"--container-image={image}", f"--container-mounts={workdir}:{WORKSPACE}",
                 f"--container-workdir={WORKSPACE}", "--no-container-mount-home", "--no-container-remap-root")
        return Step(flags, (), in_container=True)
    if runtime == "apptainer":
        argv = ("apptainer", "exec", "--bind", f"{workdir}:{WORKSPACE}", "--pwd", WORKSPACE) \
            + (("--nv",) if gpus else ()) + (image,)
        return Step((), argv, in_container=True)
    if runtime == "oci":
        return Step((f"--container={bundle}",), (), in_container=True)
    raise ValueError(f"unknown runtime {runtime}")


def oci_config(*, workdir: str, uid: int, gid: int) -> dict:
    """config.json of the Slurm-OCI bundle (runc). Only pid and mount namespaces: host network,
    UTS and IPC like `docker --network host --ipc host` (torchrun must see the node's address);
    no hostname (runc refuses one without a UTS namespace); read-only root with a tmpfs /tmp;
    no capabilities, no new privileges; the project bound at /workspace."""
    def bind(src: str, dst: str, *opts: str) -> dict:
        return {"destination": dst, "type": "bind", "source": src, "options": ["rbind", *opts]}

    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": uid, "gid": gid}, "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": WORKSPACE,
            "capabilities": {k: [] for k in ("bounding", "effective", "permitted", "ambient")}, "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            bind("/dev/shm", "/dev/shm", "rw"),
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
            bind("/etc/hosts", "/etc/hosts", "ro"),
            bind("/etc/resolv.conf", "/etc/resolv.conf", "ro"),
            bind(workdir, WORKSPACE, "rw"),
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def oci_config_text(**kw) -> str:
    return json.dumps(oci_config(**kw), indent=1)


def quote_argv(argv) -> str:
    """argv → shell words; words holding $VARS of the job (our own, never user input) stay expandable."""
    out = []
    for w in argv:
        w = str(w)
        out.append(w if len(w) > 1 and w.startswith('"') and w.endswith('"') else
                   (f'"{w}"' if "$SLURM_JOB_ID" in w or "$CUDA_VISIBLE_DEVICES" in w else shlex.quote(w)))
    return " ".join(out)
