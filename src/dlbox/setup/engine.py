"""`dlbox setup docker` and `dlbox setup nvidia`: packages and services, as commands.

Each plan is computed from what `doctor` sees, so a host that already works plans nothing.
Repositories are probed before anything is run: an unreachable repository changes the
plan (docker.io from the distribution) or stops it with the manual steps (NVIDIA), never
leaving a half-configured host.
"""

from __future__ import annotations

import re
import urllib.request

from dlbox.doctor.nvidia import check_deep
from dlbox.errors import HostError
from dlbox.host.facts import Facts
from dlbox.host.sysroot import SysRoot
from dlbox.setup.steps import Command, Options, Step

DOCKER_REPO = "https://download.docker.com/linux/"
NVIDIA_REPO = "https://nvidia.github.io/libnvidia-container"


def reachable(url: str, sysroot: SysRoot, timeout: float = 5.0) -> bool:
    """Can we fetch `url`? With a fake root we do not touch the network and say yes."""
    if not sysroot.live:
        return True
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:  # DNS, TLS, proxy, HTTP errors all mean "not usable from here"
        return False


def os_release(sysroot: SysRoot) -> dict[str, str]:
    text = sysroot.read_text("/etc/os-release") or ""
    return {k: v.strip('"') for k, v in re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE)}


def sh(script: str, why: str = "") -> Command:
    return Command(("sh", "-c", script), why)


def docker_install(sysroot: SysRoot) -> list[Command]:
    osr = os_release(sysroot)
    distro = osr.get("ID", "debian") if osr.get("ID") in ("debian", "ubuntu") else "debian"
    codename = osr.get("VERSION_CODENAME", "bookworm")
    if reachable(DOCKER_REPO, sysroot):
        return [
            Command(("apt-get", "update")),
            Command(("apt-get", "install", "-y", "ca-certificates", "curl")),
            Command(("install", "-m", "0755", "-d", "/etc/apt/keyrings")),
            Command(("curl", "-fsSL", f"{DOCKER_REPO}{distro}/gpg", "-o", "/etc/apt/keyrings/docker.asc")),
            sh(f'echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] '
               f'{DOCKER_REPO}{distro} {codename} stable" > /etc/apt/sources.list.d/docker.list',
               "Docker's apt repository"),
            Command(("apt-get", "update")),
            Command(("apt-get", "install", "-y", "docker-ce", "docker-ce-cli", "containerd.io",
                     "docker-buildx-plugin", "docker-compose-plugin")),
        ]
    return [Command(("apt-get", "update")),
            Command(("apt-get", "install", "-y", "docker.io"), "download.docker.com unreachable: the distribution's package")]


def in_docker_group(sysroot: SysRoot, user: str) -> bool:
    for line in (sysroot.read_text("/etc/group") or "").splitlines():
        name, _, _, members = (line.split(":") + ["", "", ""])[:4]
        if name == "docker":
            return user in members.split(",")
    return False


def plan_docker(sysroot: SysRoot, opts: Options) -> Step:
    facts = Facts(sysroot)
    step = Step("docker: engine, group, service")
    answering = facts.info is not None
    if answering:
        step.notes.append(f"Docker {facts.info.get('ServerVersion', '?')} is installed and answering")
    else:
        if not (sysroot.which("dockerd") and sysroot.which("docker")):
            step.actions += docker_install(sysroot)
        if facts.systemd:
            step.actions.append(Command(("systemctl", "enable", "--now", "docker")))
        else:
            # No systemd (WSL without systemd=true, containers, CI VMs): run dockerd directly.
            step.actions.append(sh("nohup dockerd >/var/log/dockerd.log 2>&1 &", "no systemd here"))
    user = sysroot.env().get("SUDO_USER")
    if user and user != "root" and not in_docker_group(sysroot, user):
        step.actions.append(Command(("usermod", "-aG", "docker", user), "use docker without sudo"))
        step.notes.append(f"{user} must log in again (or run `newgrp docker`) for the group to apply")

    def verify() -> list[str]:
        if not sysroot.live:
            return []
        import time

        for _ in range(40):  # dockerd takes a moment to open its socket
            if Facts(sysroot).info is not None:
                return []
            time.sleep(0.25)
        return ["the engine does not answer `docker info` yet; see /var/log/dockerd.log"]

    step.verify = verify
    return step


NVIDIA_MANUAL = f"""manual steps (from NVIDIA's install guide):
  curl -fsSL {NVIDIA_REPO}/gpgkey | sudo gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  curl -s -L {NVIDIA_REPO}/stable/deb/nvidia-container-toolkit.list | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' | sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list
  sudo apt-get update && sudo apt-get install -y nvidia-container-toolkit
  sudo nvidia-ctk runtime configure --runtime=docker
  sudo systemctl restart docker"""


def plan_nvidia(sysroot: SysRoot, opts: Options) -> Step:
    facts = Facts(sysroot)
    if not facts.smi.ok:
        raise HostError("no working NVIDIA driver (nvidia-smi): the Container Toolkit would have no GPU to expose",
                        fix="install the NVIDIA driver first (WSL2: on Windows), then `dlbox setup nvidia`")
    if facts.info is None:
        raise HostError("the Docker engine does not answer", fix="dlbox setup docker")
    step = Step("nvidia: Container Toolkit and the docker runtime")
    has_ctk = bool(sysroot.which("nvidia-ctk"))
    if has_ctk and facts.nvidia_runtime and "nvidia" in (facts.info.get("Runtimes") or {}):
        return step
    if not has_ctk:
        if not reachable(f"{NVIDIA_REPO}/gpgkey", sysroot):
            raise HostError(f"NVIDIA's apt repository ({NVIDIA_REPO}) is unreachable; nothing was changed",
                            fix=NVIDIA_MANUAL)
        keyring = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
        step.actions += [
            sh(f"curl -fsSL {NVIDIA_REPO}/gpgkey | gpg --batch --yes --dearmor -o {keyring}"),
            sh(f"curl -fsSL {NVIDIA_REPO}/stable/deb/nvidia-container-toolkit.list | "
               f"sed 's#deb https://#deb [signed-by={keyring}] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list",
               "NVIDIA's apt repository"),
            Command(("apt-get", "update")),
            Command(("apt-get", "install", "-y", "nvidia-container-toolkit")),
        ]
    if not facts.nvidia_runtime:
        step.actions.append(Command(("nvidia-ctk", "runtime", "configure", "--runtime=docker")))
    step.actions.append(Command(("systemctl", "restart", "docker")) if facts.systemd
                        else sh("kill $(cat /var/run/docker.pid) && sleep 3 && (nohup dockerd >/var/log/dockerd.log 2>&1 &)",
                                "no systemd here"))

    def verify() -> list[str]:
        deep = check_deep(Facts(sysroot))
        return [] if deep.status in ("ok", "skip") else [f"{deep.detail} — {deep.fix}"]

    step.verify = verify
    return step
