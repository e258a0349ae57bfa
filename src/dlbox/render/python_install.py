"""The Dockerfile step that installs a uv-managed CPython (the "uv:X.Y.Z" route of catalog.pythons).

Plain data for the template: the mounts and shell commands of one RUN. uv is the binary of the
tools image the build mounts (engine.tools); the archive is cached in the uv cache mount, so a
second build downloads nothing. The mirror arrives as the BuildKit secret `dlbox_python_mirror`
(engine.secrets writes it from plan.build.python_mirror): the RUN text is the same whatever the
mirror, so the layer is shared, and a mirror URL with credentials is in no layer, label or argv.
"""

from __future__ import annotations

import shlex

from dlbox.catalog.pythons import uv_managed
from dlbox.plan.layout import BUILD_CA, PYTHON_DIR, TOOLS, UV_CACHE
from dlbox.plan.model import Plan

MIRROR_SECRET = "dlbox_python_mirror"
# Inside the uv cache mount, like the apt steps' CA: a mount point BuildKit < 0.10 creates is left
# in the layer with the build's clock; inside a cache mount it lands in the cache instead.
MIRROR_TARGET = f"{UV_CACHE}/.dlbox-python-mirror"
REFUSAL_PREFIX = "dlbox: "   # engine.build turns the line after it into the build's error


def python_bin(plan: Plan) -> str | None:
    """The interpreter the venv is made from, on a uv route; None on the others."""
    version = uv_managed(plan.build.python_install)
    if version is None:
        return None
    return f"{PYTHON_DIR}/bin/python{'.'.join(version.split('.')[:2])}"


def uv_python_step(plan: Plan, tools: str) -> dict | None:
    """{title, mounts, commands} of the RUN that installs the plan's uv-managed CPython, or None."""
    version = uv_managed(plan.build.python_install)
    if version is None:
        return None
    refusal = (plan.build.python_refusal or f"uv could not download CPython {version}").replace("\n", " ")
    commands = [
        f"export UV_PYTHON_INSTALL_DIR={PYTHON_DIR} UV_PYTHON_BIN_DIR={PYTHON_DIR}/bin "
        f"UV_PYTHON_CACHE_DIR={UV_CACHE}/python-downloads",
        f"if [ -s {BUILD_CA} ]; then export SSL_CERT_FILE={BUILD_CA}; fi",
        f'if [ -s {MIRROR_TARGET} ]; then export UV_PYTHON_INSTALL_MIRROR="$(cat {MIRROR_TARGET})"; fi',
        f"{TOOLS}/uv python install --cache-dir {UV_CACHE} {shlex.quote(version)}"
        f" || {{ echo {shlex.quote(REFUSAL_PREFIX + refusal)} >&2; exit 1; }}",
        f"rm -rf {PYTHON_DIR}/.temp {PYTHON_DIR}/.cache {PYTHON_DIR}/.lock",
        f"chmod -R a+rX {PYTHON_DIR}",
        f"{python_bin(plan)} -c 'import sys, ssl; print(sys.version)'",
    ]
    return {
        "title": f"CPython {version}, uv-managed (python-build-standalone) into {PYTHON_DIR}: "
                 f"no apt package of {plan.build.base_os} has Python {plan.build.python}",
        "mounts": [f"--mount=type=bind,from={tools},target={TOOLS}",
                   f"--mount=type=cache,id=dlbox-uv,target={UV_CACHE}",
                   f"--mount=type=secret,id=dlbox_ca,target={BUILD_CA}",
                   f"--mount=type=secret,id={MIRROR_SECRET},target={MIRROR_TARGET}"],
        "commands": commands,
    }
