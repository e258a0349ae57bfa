"""The Python packages of the shared apt step and the commands that make the venv.

`python -m venv` runs ensurepip, which installs pip (and setuptools below Python 3.12) by running
pip itself: 4-7 s of a cold build here, before uv starts. Instead the venv is made without pip
and uv installs the very wheels ensurepip would have used, from the same directory, offline:
- apt route: the distribution's wheel packages in /usr/share/python-wheels (python3-pip-whl,
  python3-setuptools-whl: what pythonX.Y-venv depends on), so the image needs neither pythonX.Y-venv
  nor what it pulls in (python3-distutils, python3-lib2to3: about 0.7 s of dpkg);
- uv route: the wheels bundled in the CPython's own ensurepip/_bundled.
Same pip, same setuptools as before, no network. Where that is not known to hold, the old way
stays: a base image's own Python (python_install "image"), and a distribution whose pip wheel is
de-vendored (Debian before pip 21.3.1+dfsg-1, "Stop de-vendoring dependencies": it only works
next to the other -whl packages ensurepip copies into the venv).
"""

from __future__ import annotations

from dlbox.plan.layout import TOOLS, UV_CACHE, VENV
from dlbox.plan.model import Plan
from dlbox.render.python_install import python_bin

DEB_WHEELS = "/usr/share/python-wheels"
# Distributions whose python3-pip-whl is a self-contained pip (Debian >= 21.3.1+dfsg-1): bookworm
# 23.0.1, trixie 25.1.1, Ubuntu jammy 22.0.2, noble 24.0. Not bullseye (20.3.4, de-vendored).
SELF_CONTAINED_PIP_WHEEL = ("debian-bookworm", "debian-trixie", "ubuntu22.04", "ubuntu24.04")


def _ensurepip_wheels(plan: Plan) -> tuple[str, ...]:
    """Which wheels ensurepip installs for this Python: pip, and setuptools below 3.12."""
    major, minor = (int(x) for x in plan.build.python.split(".")[:2])
    return ("pip", "setuptools") if (major, minor) < (3, 12) else ("pip",)


def _fast(plan: Plan) -> bool:
    inst = plan.build.python_install
    if inst.startswith("apt:"):
        return plan.build.base_os in SELF_CONTAINED_PIP_WHEEL
    return inst.startswith("uv:")


def python_packages(plan: Plan) -> list[str]:
    """The apt packages of the plan's Python (empty unless it comes from the OS's apt)."""
    inst = plan.build.python_install
    if not inst.startswith("apt:"):
        return []
    py = inst.split(":", 1)[1]
    dev = [f"{py}-dev"] if plan.build.python_dev else []
    if not _fast(plan):
        return [py, f"{py}-venv"] + dev
    return [py] + [f"python3-{w}-whl" for w in _ensurepip_wheels(plan)] + dev


def uses_uv(plan: Plan) -> bool:
    """Whether the venv commands run the tools image's uv (the step must mount it)."""
    return _fast(plan)


def venv_commands(plan: Plan, *, pinned_next: frozenset[str] = frozenset()) -> list[str]:
    """Shell commands that create VENV with pip in it. PINNED_NEXT: packages the same step installs
    next at a pinned version (the lock's setuptools replaces ensurepip's: not installed twice)."""
    inst = plan.build.python_install
    py = inst.split(":", 1)[1] if inst.startswith("apt:") else (python_bin(plan) or "python3")
    if not _fast(plan):
        site = " --system-site-packages" if inst == "image" else ""
        return [f"{py} -m venv{site} {VENV}"]
    names = " ".join(w for w in _ensurepip_wheels(plan) if w not in pinned_next)
    if inst.startswith("apt:"):
        wheels, find = DEB_WHEELS, []
    else:
        wheels = '"$W"'
        find = [f"W=\"$({VENV}/bin/python -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))')"
                "/ensurepip/_bundled\""]
    # a directory of wheels, as an index: no file:// URL recorded (pip freeze says pip==X, as after ensurepip)
    return [f"{py} -m venv --without-pip {VENV}", *find,
            f"{TOOLS}/uv pip install --offline --no-index --find-links {wheels} --no-deps --cache-dir {UV_CACHE} "
            f"--python {VENV}/bin/python {names}"]
