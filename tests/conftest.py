"""Shared fixtures. Integration tests use the real engine that scripts/world.sh started."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def engine_up() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    return subprocess.run([docker, "version"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session", autouse=True)
def _remove_this_sessions_images(tmp_path_factory):
    """Images of projects that lived under this session's temporary directory are removed when
    the session ends (their label org.dlbox.project_dir says where the project was), so test runs
    do not fill the disk. Images of other sessions sharing the engine are left alone."""
    yield
    docker = shutil.which("docker")
    if not docker or not engine_up():
        return
    base = str(tmp_path_factory.getbasetemp()) + os.sep
    ids = subprocess.run([docker, "images", "-q", "--no-trunc", "--filter", "label=org.dlbox.project_dir"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    if not ids:
        return
    shown = subprocess.run([docker, "image", "inspect", "--format",
                            '{{json .RepoTags}} {{index .Config.Labels "org.dlbox.project_dir"}}', *sorted(set(ids))],
                           capture_output=True, text=True, timeout=60).stdout
    doomed = []
    for line in shown.splitlines():
        tags, _, where = line.partition(" ")
        if (where + os.sep).startswith(base):
            doomed += json.loads(tags) or []
    if doomed:
        subprocess.run([docker, "rmi", *doomed], capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def docker_engine():
    if not engine_up():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answering: scripts/test.sh starts one (scripts/world.sh up)")
        pytest.skip("no Docker engine answering (run: bash scripts/world.sh up)")
    from dlbox.engine.docker import Docker

    return Docker()
