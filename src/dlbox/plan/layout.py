"""Where things are inside the image and what dlbox's images and containers are called.

Decided once here; the renderers (Dockerfile, devcontainer, compose) and the engine only read it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlbox.plan import Plan

WORKSPACE = "/workspace"
VENV = "/opt/venv"
HOME = "/home/dlbox"
LINKS_DIR = "/tmp/dlbox/links"       # where find_links directories are mounted in build steps
STAGE = ".dlbox"                     # the project's staging directory (see engine.stage)

CA_TARGET = "/etc/ssl/certs/dlbox-ca-bundle.pem"
CA_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO")

LABEL_PROJECT = "org.dlbox.project"
LABEL_DIR = "org.dlbox.project_dir"


def project_key(plan: Plan) -> str:
    """A short hash of the project's absolute path: two projects with one directory name in
    different places never share an image or a container (export/deploy would ship the other's code)."""
    return hashlib.sha256(plan.project_dir.encode()).hexdigest()[:8]


def container_name(plan: Plan) -> str:
    """One long-running container per project directory."""
    return f"dlbox-{plan.project}-{project_key(plan)}"


def jupyter_name(plan: Plan) -> str:
    return container_name(plan) + "-jupyter"


def image_name(plan: Plan) -> str:
    """The project's image repository, unique per project path (see project_key); the image's
    labels say which path (LABEL_DIR)."""
    return f"dlbox/{plan.project}-{project_key(plan)}"
