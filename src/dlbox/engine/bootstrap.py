"""Make a Debian base image without any registry: mmdebstrap a root filesystem from Debian
packages (through the host's apt mirror and proxy), cache it as .tar.zst, `docker import` it.

This is how dlbox works where Docker Hub is blocked, and how the tests get base images on
machines with no registry access. The cache key is the ISO week, so security updates arrive
weekly.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

from dlbox.engine.docker import Docker
from dlbox.engine.paths import cache_dir
from dlbox.errors import HostError

SUITES = ("bookworm", "trixie", "bullseye")
BOOTSTRAPPABLE = tuple(f"debian:{s}{v}" for s in SUITES for v in ("", "-slim"))


def can_bootstrap(ref: str) -> bool:
    return ref.removeprefix("docker.io/").removeprefix("library/") in BOOTSTRAPPABLE


def _suite(ref: str) -> str:
    return ref.split(":", 1)[1].removesuffix("-slim")


def rootfs_cache(ref: str) -> Path:
    week = datetime.date.today().strftime("%G-W%V")
    return cache_dir("bases") / f"debian-{_suite(ref)}-minbase-{week}.tar.zst"


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise HostError(f"bootstrapping a base image needs {tool}", fix=f"sudo apt-get install {package}")
    return path


def bootstrap(docker: Docker, ref: str, *, mirror: str | None = None, say=print) -> None:
    """Create image REF (debian:SUITE[-slim]) from Debian packages. Raises HostError."""
    ref = ref.removeprefix("docker.io/").removeprefix("library/")
    if not can_bootstrap(ref):
        raise HostError(
            f"dlbox can bootstrap only Debian base images, not {ref!r}",
            fix="choose one of: " + ", ".join(BOOTSTRAPPABLE) + " (or pull/load the image yourself)",
        )
    zstd = _need("zstd", "zstd")
    cached = rootfs_cache(ref)
    if not cached.exists():
        mmdebstrap = _need("mmdebstrap", "mmdebstrap")
        for old in cached.parent.glob(f"debian-{_suite(ref)}-minbase-*.tar.zst"):
            old.unlink()
        say(f"bootstrapping {ref} from Debian packages (mmdebstrap, about 20-40 s; cached weekly in {cached.parent})")
        tmp = cached.with_suffix(".tmp")
        argv = [mmdebstrap, "--quiet", "--variant=minbase", "--mode=auto",
                "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                _suite(ref), "-"]
        if mirror:
            argv.append(mirror)
        with open(tmp, "wb") as out:
            mm = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            zs = subprocess.Popen([zstd, "-q", "-T0", "-3", "-c"], stdin=mm.stdout, stdout=out)
            mm.stdout.close()
            _, err = mm.communicate()
            zs.wait()
        if mm.returncode != 0 or zs.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise HostError(f"mmdebstrap could not build {ref}: {err.decode(errors='replace').strip()[-400:]}",
                            fix="check that this host's apt can reach its mirror (or set [net] apt_mirror)")
        tmp.replace(cached)
    say(f"importing {ref} from {cached.name}")
    changes = ["CMD [\"bash\"]", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LABEL org.dlbox.bootstrapped=mmdebstrap-minbase"]
    argv = ["import"] + [a for c in changes for a in ("--change", c)] + ["-", ref]
    with subprocess.Popen([zstd, "-dc", str(cached)], stdout=subprocess.PIPE) as zs:
        docker.run(argv, input=zs.stdout.read(), what=f"docker import {ref}")
    if zs.returncode:
        cached.unlink(missing_ok=True)
        raise HostError(f"the cached root filesystem {cached} was damaged and has been removed; run again")
