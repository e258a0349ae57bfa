"""Privilege (issue 11, items 1, 3, 4, 17): nothing a container runs gets root, nothing in
/workspace aliases a file outside the project, run options never change silently, and files
`sudo dlbox` writes in a project stay the owner's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.security.conftest import dlbox, docker, new_project

pytestmark = [pytest.mark.docker]

ESCALATION = (
    "echo 'r00t::0:0:x:/root:/bin/bash' >> /etc/passwd; "
    "echo | su r00t -c 'cp /bin/sh /workspace/rootsh && chmod 4755 /workspace/rootsh'; "
    "cp /bin/sh /workspace/mysh; chmod 4755 /workspace/mysh; "
    "grep -c r00t /etc/passwd; id -u"
)


def _assert_no_root_binary(project: Path, dev) -> None:
    assert not (project / "rootsh").exists(), "su r00t worked: a root shell was written into the project"
    mysh = project / "mysh"
    if mysh.exists():
        st = mysh.stat()
        assert st.st_uid == dev.uid, "a file written in the container belongs to the host user, not root"


def test_passwd_escalation_fails_in_run(built, dev):
    proc = dlbox(dev.name, "run", "-C", str(built), "--", "sh", "-c", ESCALATION, check=False)
    lines = proc.stdout.split()
    assert lines[-2:] == ["0", str(dev.uid)], proc.stdout + proc.stderr   # no r00t line, still the user
    _assert_no_root_binary(built, dev)


def test_passwd_escalation_fails_in_up_and_exec(built, dev):
    try:
        dlbox(dev.name, "up", "--detach", str(built))
        proc = dlbox(dev.name, "exec", "-C", str(built), "--", "sh", "-c", ESCALATION, check=False)
        assert proc.stdout.split()[-2:] == ["0", str(dev.uid)], proc.stdout + proc.stderr
        _assert_no_root_binary(built, dev)
        name = docker("ps", "--filter", f"label=org.dlbox.project_dir={built}", "--format", "{{.Names}}").split()[0]
        host = json.loads(docker("inspect", name))[0]["HostConfig"]
        assert "no-new-privileges" in (host.get("SecurityOpt") or []) and host.get("CapDrop") == ["ALL"]
        assert not host.get("Privileged") and not host.get("CapAdd")
    finally:
        dlbox(dev.name, "down", str(built), check=False)


def test_the_image_itself_has_no_way_to_root(built, dev):
    """Run with plain `docker run` (no dlbox flags), as a server would run a shipped image."""
    image = dlbox(dev.name, "build", str(built)).stdout.strip()
    out = docker("run", "--rm", "--user", f"{dev.uid}:{dev.gid}", "--entrypoint", "sh", image, "-c",
                 "find / -xdev -type f -perm /6000 2>/dev/null; test -w /etc/passwd && echo WRITABLE-PASSWD; "
                 "test -w /etc/group && echo WRITABLE-GROUP; whoami")
    assert out.split() == ["dlbox"], out


def test_stage_dir_is_not_visible_or_writable_from_a_container(built, dev):
    """Nothing in /workspace aliases a file outside the project: .dlbox holds no hard link (uv and
    local wheels come from a tools image) and is an empty read-only directory in containers."""
    for f in (built / ".dlbox").rglob("*"):
        if f.is_file():
            assert f.stat().st_nlink == 1, f"{f} is a hard link: it aliases a file outside the project"
    dockerfile = built / ".dlbox" / "Dockerfile"
    before = dockerfile.read_text()
    probe = ("ls -A /workspace/.dlbox | wc -l; echo pwned > /workspace/.dlbox/Dockerfile 2>/dev/null && echo WROTE; "
             "mkdir /workspace/.dlbox/bin 2>/dev/null && echo MADE; true")
    proc = dlbox(dev.name, "run", "-C", str(built), "--", "sh", "-c", probe)
    assert proc.stdout.split() == ["0"], proc.stdout
    assert dockerfile.read_text() == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bound(project: Path) -> list[str]:
    name = docker("ps", "--filter", f"label=org.dlbox.project_dir={project}", "--format", "{{.Names}}").split()[0]
    bindings = json.loads(docker("inspect", name))[0]["HostConfig"]["PortBindings"]
    return sorted(b["HostIp"] or "0.0.0.0" for v in bindings.values() for b in v)


def test_public_sticks_no_more(dev):
    port = _free_port()
    # the example's dlbox.toml ends with its [run] table: these lines go into it
    project = new_project(dev, "secpublic", f'ports = ["{port}:{port}"]\n'
                          f'command = ["python", "-m", "http.server", "{port}"]\n')
    try:
        dlbox(dev.name, "up", "--detach", "--public", str(project))
        assert _bound(project) == ["0.0.0.0"]
        plain = dlbox(dev.name, "up", "--detach", str(project), check=False)
        assert plain.returncode == 1 and "--recreate" in plain.stderr, plain.stderr
        assert "127.0.0.1" not in plain.stdout, "never print an address that is not bound"
        assert _bound(project) == ["0.0.0.0"], "a running container is not killed without confirmation"
        again = dlbox(dev.name, "up", "--detach", "--recreate", str(project))
        assert _bound(project) == ["127.0.0.1"]
        said = [ln for ln in again.stderr.splitlines() if "published on" in ln]
        assert said and all(f"127.0.0.1:{port}" in ln and "0.0.0.0" not in ln for ln in said), again.stderr
    finally:
        dlbox(dev.name, "down", str(project), check=False)


def test_sudo_dlbox_leaves_files_to_the_project_owner(built, dev):
    if os.geteuid() != 0:
        pytest.skip("needs root, as `sudo dlbox` has")
    project = new_project(dev, "secsudo")
    subprocess.run(["rm", "-rf", str(project / ".dlbox")], check=True)
    dlbox(None, "render", str(project))
    proc = dlbox(None, "run", "-C", str(project), "--", "sh", "-c", "id -u; touch /workspace/made-inside")
    assert proc.stdout.split()[-1] == str(dev.uid), "containers run as the project's owner, not root"
    for f in [project / ".dlbox", *(project / ".dlbox").rglob("*"), project / "made-inside"]:
        if f.is_symlink() or (f.is_file() and f.stat().st_nlink > 1):
            continue
        assert f.stat().st_uid == dev.uid, f"{f} belongs to root"
