"""NVIDIA checks: driver, GPUs, Container Toolkit, runtime/CDI, restart, the NVML trap, --deep."""

from __future__ import annotations

import re

from dlbox.catalog.explain import explain
from dlbox.engine.docker import Docker
from dlbox.engine.run import gpu_smoke_argv
from dlbox.errors import DlboxError
from dlbox.host.facts import DAEMON_JSON, Facts
from dlbox.host.nvidia_smi import parse_nvidia_smi
from dlbox.report import Check

RESTART = "sudo systemctl restart docker"
DEEP_IMAGE = "ubuntu:22.04"  # any image works: the runtime mounts nvidia-smi from the host


def _restart(facts: Facts) -> str:
    return RESTART if facts.systemd else "restart dockerd (no systemd here): kill $(cat /var/run/docker.pid); then start dockerd again"


def driver_facts(text: str) -> tuple[str | None, str | None]:
    """(driver version, highest CUDA) from `nvidia-smi` text; tolerant of R610's header."""
    f = parse_nvidia_smi(text)
    return f.driver_version, f.cuda_max


def check_driver(facts: Facts) -> Check:
    out = facts.smi
    if out.returncode == 127:
        fix = ("install/update the NVIDIA driver on Windows (WSL2 uses the Windows driver)"
               if facts.wsl else "install the NVIDIA driver (e.g. `sudo ubuntu-drivers install`), then reboot")
        return Check("nvidia.driver", "skip", "no nvidia-smi: no NVIDIA GPU driver (CPU containers still work)", fix)
    if not out.ok:
        from dlbox.host.nvidia_smi import PROBLEMS

        seen = parse_nvidia_smi((out.stdout or "") + "\n" + (out.stderr or ""))
        if seen.problem in PROBLEMS:
            cause, fix = PROBLEMS[seen.problem]
            return Check("nvidia.driver", "fail", f"nvidia-smi failed: {cause}"
                         + (f" ({seen.problem_detail})" if seen.problem_detail else ""), fix)
        last = (out.stderr or out.stdout).strip().splitlines()
        return Check("nvidia.driver", "fail", f"nvidia-smi failed: {last[-1] if last else out.returncode}",
                     "reboot after a driver install, or reinstall the driver (`sudo ubuntu-drivers install`)")
    drv, cuda = driver_facts(out.stdout)
    return Check("nvidia.driver", "ok", f"driver {drv or '?'}, highest CUDA {cuda or '?'}")


def check_gpus(facts: Facts) -> Check:
    if not facts.smi.ok:
        return Check("nvidia.gpus", "skip", "no working nvidia-smi")
    # old drivers lack compute_cap in --query-gpu: then the names come from the table
    gpus = [f"{g.name} (sm {g.compute_cap})" if g.compute_cap else g.name for g in facts.driver.gpus] \
        if facts.driver else []
    if not gpus:
        return Check("nvidia.gpus", "warn", "nvidia-smi lists no GPU", "check `nvidia-smi -L`")
    return Check("nvidia.gpus", "ok", f"{len(gpus)} GPU(s): " + "; ".join(gpus))


def check_toolkit(facts: Facts) -> Check:
    if facts.desktop_markers:
        # Desktop's VM carries its own NVIDIA runtime; a toolkit inside WSL is not used by it.
        return Check("nvidia.toolkit", "skip", "Docker Desktop brings its own GPU support")
    if not facts.sys.which("nvidia-ctk"):
        if not facts.smi.ok:
            return Check("nvidia.toolkit", "skip", "no NVIDIA driver, so no Container Toolkit needed")
        return Check("nvidia.toolkit", "fail", "NVIDIA Container Toolkit (nvidia-ctk) not installed", "dlbox setup nvidia")
    out = facts.sys.command("nvidia-ctk-version")
    m = re.search(r"version\s+([\d.]+\S*)", out.stdout)
    return Check("nvidia.toolkit", "ok", f"nvidia-ctk {m[1] if m else '(version unknown)'}")


def check_runtime(facts: Facts) -> Check:
    if facts.desktop_markers:
        return Check("nvidia.runtime", "skip", "Docker Desktop brings its own GPU support")
    specs = facts.cdi_specs
    if facts.nvidia_runtime:
        extra = f"; CDI specs: {', '.join(specs)}" if specs else ""
        return Check("nvidia.runtime", "ok", f"'nvidia' runtime in {DAEMON_JSON}{extra}")
    if specs:
        if facts.engine_version and facts.engine_version < (25,):
            return Check("nvidia.runtime", "warn",
                         f"CDI spec only ({', '.join(specs)}); Docker {facts.engine_version[0]} cannot use CDI (needs 25+)",
                         "sudo nvidia-ctk runtime configure --runtime=docker && " + RESTART)
        return Check("nvidia.runtime", "ok", f"CDI spec(s): {', '.join(specs)} (use --device nvidia.com/gpu=all)")
    if not facts.smi.ok:
        return Check("nvidia.runtime", "skip", "no NVIDIA driver")
    return Check("nvidia.runtime", "fail", f"no 'nvidia' runtime in {DAEMON_JSON} and no CDI spec in /etc/cdi or /var/run/cdi",
                 "sudo nvidia-ctk runtime configure --runtime=docker && " + RESTART)


def check_restarted(facts: Facts) -> Check:
    if not facts.nvidia_runtime:
        return Check("nvidia.restarted", "skip", "no 'nvidia' runtime configured")
    if facts.info is None:
        return Check("nvidia.restarted", "skip", "engine not reachable")
    if "nvidia" not in (facts.info.get("Runtimes") or {}):
        return Check("nvidia.restarted", "fail",
                     f"{DAEMON_JSON} declares the 'nvidia' runtime but the running engine does not have it",
                     _restart(facts))
    started, configured = facts.dockerd_started_at(), facts.sys.mtime(DAEMON_JSON)
    if started and configured and configured > started:
        return Check("nvidia.restarted", "warn", f"{DAEMON_JSON} changed after dockerd started", _restart(facts))
    return Check("nvidia.restarted", "ok", "the engine has the 'nvidia' runtime loaded")


def check_nvml_trap(facts: Facts) -> Check:
    """`Failed to initialize NVML: Unknown Error` after `systemctl daemon-reload`.

    With the systemd cgroup driver, a daemon-reload rewrites the containers' device cgroups
    and drops the NVIDIA devices the runtime hook added behind systemd's back
    (NVIDIA/nvidia-container-toolkit#48).
    """
    if not (facts.nvidia_runtime or facts.sys.which("nvidia-ctk")):
        return Check("nvidia.nvml-trap", "skip", "no NVIDIA toolkit configured")
    if facts.info is None:
        return Check("nvidia.nvml-trap", "skip", "engine not reachable")
    if facts.info.get("CgroupDriver") != "systemd":
        return Check("nvidia.nvml-trap", "ok", f"cgroup driver {facts.info.get('CgroupDriver')}")
    if facts.cdi_specs:
        return Check("nvidia.nvml-trap", "ok", "systemd cgroup driver, but CDI device nodes are declared")
    return Check("nvidia.nvml-trap", "warn",
                 "systemd cgroup driver without device rules: GPUs vanish from running containers after "
                 "`systemctl daemon-reload` ('Failed to initialize NVML: Unknown Error')",
                 "sudo nvidia-ctk system create-dev-char-symlinks --create-all, or add "
                 "\"exec-opts\": [\"native.cgroupdriver=cgroupfs\"] to /etc/docker/daemon.json and " + RESTART)


def check_deep(facts: Facts) -> Check:
    """Start a container with all GPUs and run nvidia-smi in it (only with --deep)."""
    if not facts.sys.live:
        return Check("nvidia.deep", "skip", "--root given: no live container is started")
    if not facts.smi.ok:
        return Check("nvidia.deep", "skip", "no NVIDIA driver on the host")
    if facts.info is None:
        return Check("nvidia.deep", "skip", "engine not reachable")
    try:
        p = Docker().run(gpu_smoke_argv(DEEP_IMAGE), check=False, timeout=300)
    except DlboxError as exc:
        return Check("nvidia.deep", "fail", exc.message, exc.fix or "")
    if p.returncode == 0:
        return Check("nvidia.deep", "ok", p.stdout.decode(errors="replace").strip().replace("\n", "; "))
    err = p.stderr.decode(errors="replace").strip()
    why = explain(err)
    if why:
        return Check("nvidia.deep", "fail", f"{why.cause}", why.fix)
    last = err.splitlines()[-1] if err else f"exit {p.returncode}"
    return Check("nvidia.deep", "fail", f"docker run --gpus all failed: {last}", "dlbox setup nvidia")
