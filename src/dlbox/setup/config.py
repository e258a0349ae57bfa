"""Plan merged edits of the files setup touches (daemon.json, config.json, apt, pip, uv)."""

from __future__ import annotations

import copy
from typing import Callable

from dlbox.host.config_files import dump_json, parse_json_object
from dlbox.host.sysroot import SysRoot
from dlbox.setup.files import FileChange

DAEMON_JSON = "/etc/docker/daemon.json"


def text_change(sysroot: SysRoot, host_path: str, edit: Callable[[str], str], mode: int = 0o644) -> FileChange:
    """A change produced by `edit(old_text)`; a missing file is edited from ''."""
    old = sysroot.read_text(host_path)
    return FileChange(host_path, sysroot.path(host_path), old, edit(old or ""), mode)


def json_change(sysroot: SysRoot, host_path: str, edit: Callable[[dict], None], mode: int = 0o644) -> FileChange:
    """Merge into a JSON object file: `edit` mutates a copy; untouched keys stay as they were.

    A malformed file raises MalformedConfig (line, column) before anything is planned.
    An unchanged object keeps the file's text byte for byte (no reformatting churn).
    """
    old = sysroot.read_text(host_path)
    data = parse_json_object(old, host_path)
    new = copy.deepcopy(data)
    edit(new)
    text = old if (new == data and old is not None) else dump_json(new)
    return FileChange(host_path, sysroot.path(host_path), old, text, mode)


def client_config_path(sysroot: SysRoot) -> str:
    env = sysroot.env()
    base = env.get("DOCKER_CONFIG") or f"{sysroot.home().rstrip('/')}/.docker"
    return f"{base}/config.json"
