"""`dlbox deploy` then `dlbox run/up --host`: the same environment on a second engine reached over
real SSH, planned with that server's own driver and limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.remote]

DLBOX = str(Path(sys.executable).with_name("dlbox"))


@pytest.fixture(scope="module")
def server(docker_engine):
    target = os.environ.get("DLBOX_TEST_REMOTE")
    if not target or not os.environ.get("DLBOX_TEST_SSH_CONFIG"):
        if os.environ.get("CI"):
            pytest.fail("the SSH test world is not up (scripts/test.sh starts it)")
        pytest.skip("the SSH world is not up (scripts/test.sh starts it)")
    return target


def dlbox(*args, check=True, timeout=900):
    env = dict(os.environ, DLBOX_SSH_CONFIG=os.environ.get("DLBOX_TEST_SSH_CONFIG", ""))
    proc = subprocess.run([DLBOX, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f"dlbox {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    project = tmp_path_factory.mktemp("srv") / "served"
    project.mkdir()
    (project / "dlbox.toml").write_text('name = "served"\n[env]\ntorch = "none"\n[run]\nenv = {GREETING = "hi"}\n')
    (project / "hello.py").write_text("import os; print(os.environ['GREETING'], os.getcwd(), sorted(os.listdir()))\n")
    dlbox("build", "--bake", str(project))
    dlbox("deploy", str(project), server)
    return project


def test_plan_for_the_server(server, deployed):
    plan = json.loads(dlbox("plan", "--json", "--host", server, str(deployed)).stdout)
    assert plan["gpu"] is False and plan["run"]["mounts"] == [], "the code is baked in, nothing to bind-mount"


def test_run_on_the_server_uses_the_deployed_image(server, deployed):
    out = dlbox("run", "--host", server, "-C", str(deployed), "--", "python", "hello.py").stdout
    assert "hi /workspace" in out and "hello.py" in out


def test_up_and_down_on_the_server(server, deployed):
    try:
        dlbox("up", "--detach", "--host", server, str(deployed))
        ps = subprocess.run(["docker", "-H", f"unix://{os.environ['DLBOX_TEST_REMOTE_SOCKET']}", "ps",
                             "--format", "{{.Names}}"], capture_output=True, text=True).stdout
        assert "dlbox-served-" in ps
    finally:
        dlbox("down", "--host", server, str(deployed))


def test_server_without_the_image_says_deploy(server, tmp_path):
    (tmp_path / "dlbox.toml").write_text('name = "neverdeployed"\n[env]\ntorch = "none"\n')
    proc = dlbox("run", "--host", server, "-C", str(tmp_path), "--", "true", check=False)
    assert proc.returncode == 1 and "dlbox deploy" in proc.stderr and "Traceback" not in proc.stderr
