"""Registry mirrors, free disk in Docker's data root, memlock, /dev/shm."""

from __future__ import annotations

from urllib.parse import urlsplit

from dlbox.host.facts import DAEMON_JSON, Facts
from dlbox.report import Check

GIB = 1024**3
DISK_WARN, DISK_FAIL = 20 * GIB, 3 * GIB  # one CUDA devel image + torch is ~10 GB


def mirror_problem(url: object) -> str | None:
    """Why dockerd would reject this registry mirror, or None. Mirrors Docker's ValidateMirror."""
    if not isinstance(url, str) or not url.strip():
        return f"{url!r} is not a URL"
    if url != url.strip() or " " in url:
        return f"{url!r} contains spaces"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"{url!r} needs http:// or https://"
    if not parts.hostname:
        return f"{url!r} has no host"
    try:
        parts.port
    except ValueError:
        return f"{url!r} has a bad port"
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        return f"{url!r} has a path, query or fragment"
    return None


def check_mirrors(facts: Facts) -> Check:
    mirrors = facts.daemon_json.get("registry-mirrors")
    if mirrors is None:
        return Check("docker.mirrors", "ok", "no registry mirrors")
    if not isinstance(mirrors, list):
        return Check("docker.mirrors", "fail", f"registry-mirrors in {DAEMON_JSON} is not a list",
                     "dlbox setup mirrors --registry-mirror https://MIRROR")
    bad = [p for p in map(mirror_problem, mirrors) if p]
    if bad:
        # dockerd refuses to start on an invalid mirror, so every pull fails.
        return Check("docker.mirrors", "fail", "malformed registry mirror: " + "; ".join(bad),
                     f"edit registry-mirrors in {DAEMON_JSON} (e.g. \"https://mirror.example.com\") and restart Docker")
    return Check("docker.mirrors", "ok", ", ".join(mirrors) or "empty list")


def check_disk(facts: Facts) -> Check:
    root = (facts.info or {}).get("DockerRootDir") or facts.daemon_json.get("data-root") or "/var/lib/docker"
    free = facts.sys.free_bytes(root)
    if free is None:
        return Check("disk", "skip", f"free space in {root} unknown")
    detail = f"{free / GIB:.1f} GiB free in {root}"
    fix = "docker system prune   (or move data-root in /etc/docker/daemon.json to a bigger disk)"
    if free < DISK_FAIL:
        return Check("disk", "fail", detail + " (CUDA images need ~10 GiB)", fix)
    if free < DISK_WARN:
        return Check("disk", "warn", detail, fix)
    return Check("disk", "ok", detail)


def check_memlock(facts: Facts) -> Check:
    hard = facts.sys.memlock_hard_kib()
    if hard is None:
        return Check("memlock", "ok", "hard limit unlimited: --ulimit memlock=-1 works")
    # The NGC images ask for memlock=-1; runc cannot raise an rlimit above dockerd's hard limit
    # ("error setting rlimit type 8: operation not permitted"), so the container would not start.
    return Check("memlock", "warn",
                 f"hard limit {hard} KiB: `--ulimit memlock=-1` will be refused; dlbox uses memlock={hard * 1024}:{hard * 1024}",
                 "raise dockerd's limit: LimitMEMLOCK=infinity in a docker.service drop-in (needs CAP_SYS_RESOURCE)")


def check_shm(facts: Facts) -> Check:
    size = facts.daemon_json.get("default-shm-size")
    if size:
        return Check("shm", "ok", f"default-shm-size {size} in {DAEMON_JSON}")
    # PyTorch DataLoader workers share tensors through /dev/shm; 64 MiB makes them crash.
    return Check("shm", "ok", "containers get Docker's default 64 MiB /dev/shm; dlbox run passes --ipc=host or --shm-size")
