"""Docker checks: client, engine, daemon.json, Docker Desktop, snap."""

from __future__ import annotations

from dlbox.host.facts import DAEMON_JSON, Facts
from dlbox.report import Check


def start_hint(facts: Facts) -> str:
    if facts.systemd:
        return "sudo systemctl enable --now docker"
    # No systemd (containers, some WSL distros, CI VMs): start dockerd directly.
    return "sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'   (no systemd here)"


def check_client(facts: Facts) -> Check:
    path = facts.sys.which("docker")
    if not path:
        return Check("docker.client", "fail", "no docker client on PATH", "dlbox setup docker")
    return Check("docker.client", "ok", path)


def check_engine(facts: Facts) -> Check:
    if not facts.sys.which("docker"):
        return Check("docker.engine", "skip", "no docker client")
    if facts.info is not None:
        info = facts.info
        return Check("docker.engine", "ok",
                     f"Docker {info.get('ServerVersion', '?')} ({info.get('OperatingSystem', '?')}), "
                     f"cgroup driver {info.get('CgroupDriver', '?')}")
    err = facts.info_output.stderr.strip()
    if "permission denied" in err.lower():
        user = facts.sys.env().get("SUDO_USER") or facts.sys.env().get("USER") or "$USER"
        return Check("docker.engine", "fail", "permission denied on the Docker socket (not in the docker group)",
                     f"sudo usermod -aG docker {user}   then log in again (or `newgrp docker`)")
    if "cannot connect" in err.lower() or "is the docker daemon running" in err.lower():
        return Check("docker.engine", "fail", "the Docker engine is not running", start_hint(facts))
    last = err.splitlines()[-1] if err else f"docker info exited {facts.info_output.returncode}"
    return Check("docker.engine", "fail", f"docker info failed: {last}", start_hint(facts))


def check_daemon_json(facts: Facts) -> Check:
    err = facts.daemon_json_error
    if err:
        return Check("docker.daemon-json", "fail",
                     f"{DAEMON_JSON}: invalid JSON at line {err.line}, column {err.column}; dockerd will not start",
                     f"fix the file by hand: python3 -m json.tool {DAEMON_JSON}")
    if not facts.sys.exists(DAEMON_JSON):
        return Check("docker.daemon-json", "ok", f"no {DAEMON_JSON} (engine defaults)")
    keys = ", ".join(sorted(facts.daemon_json)) or "empty"
    return Check("docker.daemon-json", "ok", f"{DAEMON_JSON}: {keys}")


def check_desktop(facts: Facts) -> Check:
    markers = facts.desktop_markers
    if not markers:
        where = "inside WSL2" if facts.wsl == "WSL2" else "on this host"
        return Check("docker.desktop", "ok", f"not Docker Desktop (engine {where})")
    # The tutorials advise against Desktop under WSL2 (GPU and bind-mount bugs); run the
    # engine inside the distribution instead.
    return Check("docker.desktop", "warn", "Docker Desktop: " + "; ".join(markers),
                 "turn off WSL integration in Docker Desktop, then `dlbox setup docker` (engine inside WSL)")


def check_snap(facts: Facts) -> Check:
    client = facts.sys.which("docker") or ""
    real = facts.sys.realpath(client) if client else ""
    if client.startswith("/snap/") or real.startswith("/snap/") or facts.sys.exists("/snap/docker"):
        # Snap confinement hides the NVIDIA runtime and /etc/docker from the engine.
        return Check("docker.snap", "warn", "Docker is installed from snap; it breaks the NVIDIA runtime",
                     "sudo snap remove docker && dlbox setup docker")
    return Check("docker.snap", "ok", "not a snap install")
