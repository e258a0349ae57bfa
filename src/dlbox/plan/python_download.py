"""Where a uv-managed CPython comes from, and the one line a build says when it cannot get it.

A plan whose Python route is "uv:X.Y.Z" (catalog.pythons) installs python-build-standalone's
CPython with the uv the build mounts. uv downloads it from its default host unless a mirror is
set: `[net] python_mirror`, else this host's UV_PYTHON_INSTALL_MIRROR. The mirror reaches the
build as a BuildKit secret (engine.secrets), never as Dockerfile text, so a URL with credentials
stays out of every layer, label and log, and the Python layer is the same whichever mirror
served it (uv checks the archive's sha256, compiled into uv).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.catalog import Catalog, load, vkey
from dlbox.catalog.pythons import uv_managed
from dlbox.plan.layout import PYTHON_DIR
from dlbox.redact import mask_url


@dataclass(frozen=True)
class PythonDownload:
    mirror: str | None   # None: uv's default host; may carry credentials (secret only)
    reason: str          # for `plan`: which CPython, from where, and why that host
    refusal: str         # what the build prints when the download fails: no mirror in it


def python_download(install: str, base_os: str, *, spec_mirror: str = "auto", host_mirror: str | None = None,
                    cat: Catalog | None = None) -> PythonDownload | None:
    """None unless `install` is a uv route. spec_mirror: `[net] python_mirror` ("auto", "none", URL)."""
    version = uv_managed(install)
    if version is None:
        return None
    cat = cat or load()
    default = cat.uv_python.download_host
    if spec_mirror not in ("auto", "none"):
        mirror, said = spec_mirror, f"{mask_url(spec_mirror)} ([net] python_mirror)"
    elif spec_mirror == "auto" and host_mirror:
        mirror, said = host_mirror, f"{mask_url(host_mirror)} (this host's UV_PYTHON_INSTALL_MIRROR)"
    else:
        mirror, said = None, f"{default} (uv's default; set [net] python_mirror where it is blocked)"
    py = ".".join(version.split(".")[:2])
    reason = f"CPython {version} uv-managed: python-build-standalone from {said}, into {PYTHON_DIR}"
    refusal = (f"uv could not download CPython {version} (python-build-standalone): set [net] python_mirror = "
               f"\"https://...\" to a mirror of {default} (same layout: RELEASE/FILE)")
    alt = apt_alternative(py, base_os, cat)
    if alt:
        refusal += f", or {alt}"
    return PythonDownload(mirror, reason, refusal)


def apt_alternative(py: str, base_os: str, cat: Catalog) -> str | None:
    """The nearest minor an OS's own apt gives, as a setting: on a Debian base a Debian release
    dlbox can bootstrap (nothing to download beyond Debian's mirror), else this base OS's package."""
    if base_os.startswith("debian"):
        options = [(r.python, f"from the apt of {r.image}, nothing to download but Debian packages")
                   for r in cat.cpu_bases if r.os.startswith("debian-")]
    else:
        options = [(r.python, f"the {r.install.split(':', 1)[1]} package of {base_os}")
                   for r in cat.os_python if r.os == base_os]
    below = sorted((o for o in options if vkey(o[0]) <= vkey(py)), key=lambda o: vkey(o[0]))
    above = sorted((o for o in options if vkey(o[0]) > vkey(py)), key=lambda o: vkey(o[0]))
    pick = below[-1] if below else (above[0] if above else None)
    return None if pick is None else f"python = \"{pick[0]}\" ({pick[1]})"
