"""`build --bake` on the real engine: the image holds exactly the selected files, never a secret."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from dlbox.engine.build import bake
from dlbox.workflow import load_project

pytestmark = pytest.mark.docker
BASE = "debian:bookworm-slim"


def test_bake_sends_only_what_is_kept(tmp_path, docker_engine):
    name = f"projects-bake-{secrets.token_hex(4)}"
    (tmp_path / "dlbox.toml").write_text(f'name = "{name}"\n[env]\ntorch = "none"\n[run]\ngpus = "none"\n')
    for rel, text in {"train.py": "print(1)\n", ".env": "TOKEN=abc\n", "id_ed25519": "k\n",
                      "outputs/ckpt.pt": "x\n", ".gitignore": "outputs/\n", ".dockerignore": "notes/\n",
                      "notes/todo.md": "t\n", "src/lib.py": "y = 2\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    if not docker_engine.image_exists(BASE):
        pytest.fail(f"{BASE} is missing: scripts/world.sh bootstraps it")
    p = load_project(tmp_path, docker=None)
    result = bake(docker_engine, p.plan, env_image=BASE, project_dir=tmp_path, labels={}, quiet=True)
    try:
        listing = docker_engine.run(["run", "--rm", "--entrypoint", "find", result.image, "/workspace", "-type", "f"],
                                    capture=True, timeout=120).stdout.decode().split()
        assert sorted(listing) == ["/workspace/.dlbox/Dockerfile.bake", "/workspace/.dockerignore",
                                   "/workspace/.gitignore", "/workspace/dlbox.toml", "/workspace/src/lib.py",
                                   "/workspace/train.py"]
        assert result.sent.startswith("sent 5 files") and ".env" in result.sent and "id_ed25519" in result.sent
    finally:
        docker_engine.run(["rmi", "-f", result.image], check=False, capture=True)
