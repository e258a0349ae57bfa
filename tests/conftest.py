"""Shared fixtures. Integration tests use the real engine that scripts/world.sh started."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def docker_engine():
    if not engine_up():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answering: scripts/test.sh starts one (scripts/world.sh up)")
        pytest.skip("no Docker engine answering (run: bash scripts/world.sh up)")
    from dlbox.engine.docker import Docker

    return Docker()
