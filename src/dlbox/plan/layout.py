"""Where things are inside the image and what dlbox's images and containers are called.

Decided once here; the renderers (Dockerfile, devcontainer, compose) and the engine only read it.
"""

from __future__ import annotations

import hashlib
from typing import Protocol


class Named(Protocol):
    """What names an image or a container: a Plan (dlbox.plan.model) has both."""

    project: str
    project_dir: str

WORKSPACE = "/workspace"
VENV = "/opt/venv"
PYTHON_DIR = "/opt/dlbox/python"     # a uv-managed CPython (catalog.pythons "uv:" route), readable by every uid
HOME = "/home/dlbox"
# Build steps mount the tools image (engine.tools) here: uv, the local wheels, the uv cache and the CA
# secret all have their mount points inside it, so no mount leaves a stub in a layer.
TOOLS = "/mnt"
LINKS_DIR = f"{TOOLS}/links"         # where find_links directories are in build steps
BUILD_CA = f"{TOOLS}/ca.pem"         # the CA secret in build steps (empty when there is none)
UV_CACHE = f"{TOOLS}/cache"          # the uv cache mount in build steps
APT_CACHE = "/var/cache/apt"         # apt steps mount no tools: their CA secret sits in the cache mount
APT_BUILD_CA = f"{APT_CACHE}/dlbox-ca.pem"
# Shared layers (base OS, Python, torch) stamp the files they create with this time, so that two
# machines building the same plan inputs get the same layer IDs (reproducible-builds.org's
# SOURCE_DATE_EPOCH; 1980-01-01, the earliest time a zip file can hold).
SOURCE_DATE_EPOCH = 315532800
STAGE = ".dlbox"                     # the project's staging directory (see engine.stage)

ENTRYPOINT = "/usr/local/bin/dlbox-entrypoint"
SECRETS_DIR = "/run/secrets"        # [run] secrets and the proxy, one file each (engine.secrets)
CA_TARGET = "/etc/ssl/certs/dlbox-ca-bundle.pem"
CA_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO")

LABEL_PROJECT = "org.dlbox.project"
LABEL_DIR = "org.dlbox.project_dir"
LABEL_RUN = "org.dlbox.run"          # hash of the run options a container was started with


def project_key(plan: Named) -> str:
    """A short hash of the project's absolute path: two projects with one directory name in
    different places never share an image or a container (export/deploy would ship the other's code)."""
    return hashlib.sha256(plan.project_dir.encode()).hexdigest()[:8]


def container_name(plan: Named) -> str:
    """One long-running container per project directory."""
    return f"dlbox-{plan.project}-{project_key(plan)}"


def jupyter_name(plan: Named) -> str:
    return container_name(plan) + "-jupyter"


def image_name(plan: Named) -> str:
    """The project's image repository, unique per project path (see project_key); the image's
    labels say which path (LABEL_DIR)."""
    return f"dlbox/{plan.project}-{project_key(plan)}"
