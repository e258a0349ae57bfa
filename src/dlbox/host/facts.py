"""What a host says about itself, read once through a `SysRoot`: the one set of probes.

`doctor` checks these facts and `host.observe` turns them into the planner's `Host`, so a
live machine, a saved root (`--root DIR`) and a server over SSH are observed the same way.
Each fact is computed lazily and cached, so `docker info` and `nvidia-smi` run at most once.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cached_property

from dlbox.host import Limits
from dlbox.host.config_files import MalformedConfig, parse_json_object
from dlbox.host.nvidia_smi import DriverFacts, parse_nvidia_smi
from dlbox.host.sysroot import Output, SysRoot

DAEMON_JSON = "/etc/docker/daemon.json"
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
WSL_SMI = "/usr/lib/wsl/lib/nvidia-smi"


class Facts:
    def __init__(self, sysroot: SysRoot) -> None:
        self.sys = sysroot

    @cached_property
    def info_output(self) -> Output:
        return self.sys.docker_info()

    @cached_property
    def info(self) -> dict | None:
        """`docker info` as a dict, or None when the engine did not answer."""
        out = self.info_output
        if not out.ok:
            return None
        try:
            data = json.loads(out.stdout)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    @cached_property
    def daemon_json(self) -> dict:
        """The parsed daemon.json ({} when absent or malformed; see `daemon_json_error`)."""
        try:
            return parse_json_object(self.sys.read_text(DAEMON_JSON), DAEMON_JSON)
        except MalformedConfig:
            return {}

    @cached_property
    def daemon_json_error(self) -> MalformedConfig | None:
        try:
            parse_json_object(self.sys.read_text(DAEMON_JSON), DAEMON_JSON)
        except MalformedConfig as exc:
            return exc
        return None

    @cached_property
    def engine_version(self) -> tuple[int, ...] | None:
        v = (self.info or {}).get("ServerVersion") or ""
        m = re.match(r"(\d+)\.(\d+)", v)
        return (int(m[1]), int(m[2])) if m else None

    @cached_property
    def wsl(self) -> str | None:
        """'WSL2', 'WSL1' or None, from the kernel release (the only reliable marker)."""
        text = (self.sys.read_text("/proc/sys/kernel/osrelease") or "") + (self.sys.read_text("/proc/version") or "")
        if "microsoft" not in text.lower():
            return None
        # WSL1 kernels read like 4.4.0-19041-Microsoft; WSL2 like 5.15.90.1-microsoft-standard-WSL2.
        return "WSL2" if ("wsl2" in text.lower() or "microsoft-standard" in text.lower()) else "WSL1"

    @cached_property
    def smi(self) -> Output:
        out = self.sys.command("nvidia-smi")
        if out.returncode == 127 and self.wsl and self.sys.exists(WSL_SMI):
            out = Output(126, "", "nvidia-smi is in /usr/lib/wsl/lib but not on PATH")
        return out

    @cached_property
    def driver(self) -> DriverFacts | None:
        """The driver, its CUDA ceiling and the GPUs; None when there is no nvidia-smi at all (or it
        does not answer). A failing nvidia-smi still gives facts, `problem` naming what went wrong.
        Under WSL2 an nvidia-smi only in /usr/lib/wsl/lib still counts (doctor warns about PATH).
        Compute capability is asked of the driver with a CSV query read by its header (`compute_cap`
        exists from R510; older drivers fall back to the names)."""
        table = self.smi
        if table.returncode == 126 and self.wsl:
            table = self.sys.command("nvidia-smi-wsl")
        if table.returncode in (124, 126, 127):
            return None
        facts = parse_nvidia_smi(table.stdout + table.stderr)
        if table.ok:
            for query in ("nvidia-smi-query", "nvidia-smi-query-old"):
                csv = self.sys.command(query)
                if csv.ok and csv.stdout.strip():
                    facts = parse_nvidia_smi(table.stdout + "\n" + csv.stdout)  # CSV caps merge onto the table's GPUs
                    break
        return replace(facts, wsl=self.wsl is not None, source="nvidia-smi")

    @cached_property
    def arch(self) -> str | None:
        """"x86_64" | "aarch64" (uname -m, normalised); None when unknown."""
        if self.sys.live:
            import platform

            m = platform.machine().lower()
        else:
            m = self.sys.saved("uname-m").stdout.strip().lower()
        return {"arm64": "aarch64", "amd64": "x86_64"}.get(m, m) or None

    @cached_property
    def limits(self) -> Limits:
        def to_bytes(kib: int | None) -> int | None:
            return None if kib is None else kib * 1024

        return Limits(memlock_hard=to_bytes(self.sys.memlock_hard_kib()),
                      stack_hard=to_bytes(self.sys.stack_hard_kib()))

    @cached_property
    def nvidia_runtime(self) -> bool:
        return "nvidia" in (self.daemon_json.get("runtimes") or {})

    @cached_property
    def cdi_specs(self) -> list[str]:
        specs = []
        for d in CDI_DIRS:
            specs += [p for pat in ("*.yaml", "*.yml", "*.json") for p in self.sys.glob(d, pat)]
        return specs

    @cached_property
    def cdi_gpu(self) -> bool:
        """A CDI spec names nvidia.com/gpu (what `--device nvidia.com/gpu=all` needs)."""
        return any("nvidia.com/gpu" in (self.sys.read_text(p) or "") for p in self.cdi_specs)

    @cached_property
    def systemd(self) -> bool:
        """systemd is PID 1 (what `systemctl` needs), per its own marker directory."""
        return self.sys.path("/run/systemd/system").is_dir()

    @cached_property
    def desktop_markers(self) -> list[str]:
        """Why we think the engine is Docker Desktop (empty: it is not)."""
        found = []
        if "docker desktop" in str((self.info or {}).get("OperatingSystem", "")).lower():
            found.append(f"docker info OperatingSystem={self.info['OperatingSystem']!r}")
        cfg = self.client_config
        if str(cfg.get("currentContext", "")).startswith("desktop"):
            found.append(f"docker context {cfg['currentContext']!r}")
        if self.sys.exists("/mnt/wsl/docker-desktop"):
            found.append("/mnt/wsl/docker-desktop exists (WSL integration)")
        client = self.sys.which("docker")
        if client and ("docker-desktop" in self.sys.realpath(client) or "/mnt/c/" in self.sys.realpath(client)):
            found.append(f"docker client is {self.sys.realpath(client)}")
        host = self.sys.env().get("DOCKER_HOST", "")
        if "desktop" in host:
            found.append(f"DOCKER_HOST={host}")
        return found

    @cached_property
    def client_config_path(self) -> str:
        env = self.sys.env()
        base = env.get("DOCKER_CONFIG") or f"{self.sys.home().rstrip('/')}/.docker"
        return f"{base}/config.json"

    @cached_property
    def client_config(self) -> dict:
        try:
            return parse_json_object(self.sys.read_text(self.client_config_path), self.client_config_path)
        except MalformedConfig:
            return {}

    def dockerd_started_at(self) -> float | None:
        """Epoch seconds dockerd started, from its pid file and /proc; None when unknown."""
        pid = (self.sys.read_text("/var/run/docker.pid") or self.sys.read_text("/run/docker.pid") or "").strip()
        stat = self.sys.read_text(f"/proc/{pid}/stat") if pid.isdigit() else None
        boot = self.sys.read_text("/proc/stat") or ""
        m = re.search(r"^btime\s+(\d+)", boot, re.MULTILINE)
        if not stat or not m:
            return None
        # Field 22 (starttime, in clock ticks since boot) counted after the ")" closing comm.
        fields = stat.rsplit(")", 1)[-1].split()
        try:
            ticks = int(fields[19])
        except (IndexError, ValueError):
            return None
        return int(m[1]) + ticks / self.sys.clock_ticks()
