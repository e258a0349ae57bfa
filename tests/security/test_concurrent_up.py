"""Issue 11 item 12: two `dlbox up --detach` at once both end with one healthy container. Before,
the loser `docker rm -f`-ed the winner's container, which had just reported "started"."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.dlbox_cli import dlbox, dlbox_argv, docker, tiny_project

pytestmark = [pytest.mark.docker]


@pytest.fixture
def project(docker_engine, tmp_path):
    p = tiny_project(tmp_path / "race", "faults-race")
    dlbox("build", str(p))          # the race is about the container, not the build
    yield p
    dlbox("down", str(p), check=False)


def _containers(project) -> list[str]:
    out = docker("ps", "-a", "--filter", f"label=org.dlbox.project_dir={project}", "--format", "{{.ID}} {{.State}}")
    return out.split("\n")[:-1]


@pytest.mark.parametrize("round_", range(2))
def test_two_up_detach_at_once_leave_one_running_container(project, round_):
    dlbox("down", str(project), check=False)
    procs = [subprocess.Popen(dlbox_argv("up", "--detach", str(project)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err
    said = sorted("started" if "started" in err else "running" if "running" in err else err for _, _, err in results)
    assert said == ["running", "started"], said
    rows = _containers(project)
    assert len(rows) == 1 and rows[0].endswith(" running"), rows
    cid = rows[0].split()[0]
    assert docker("exec", cid, "true", check=False) == ""
    # still the same container a moment later: nobody removed it after reporting
    assert _containers(project) == rows


def test_down_waits_for_a_running_up_and_names_it(project, tmp_path):
    """The second dlbox says who holds the project while it waits."""
    import fcntl
    import os

    lock = project / ".dlbox" / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    os.pwrite(fd, b"dlbox build (pid 4242, user tester)\n", 0)
    fcntl.flock(fd, fcntl.LOCK_EX)
    proc = subprocess.Popen(dlbox_argv("down", str(project)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "waiting for dlbox build (pid 4242, user tester)" in line, line
        assert proc.poll() is None
    finally:
        os.close(fd)
    proc.wait(timeout=120)
    assert proc.returncode == 0


def test_two_up_detach_at_once_as_a_docker_group_user(docker_engine):
    """The same race run by a non-root member of the docker group, in a project it owns, after
    root had used the project (so .dlbox/lock existed already)."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from tests.integration.test_core_real import DEV_USER, ensure_user

    if os.geteuid() != 0:
        pytest.skip("creating the test user needs root")
    ensure_user(DEV_USER, docker_group=True)
    home = Path(tempfile.mkdtemp(prefix="dlbox-race-"))       # pytest's tmp dirs are root-only
    project = tiny_project(home / "race", "faults-race-user")
    try:
        dlbox("build", str(project))                           # root leaves .dlbox/lock behind
        subprocess.run(["chown", "-R", DEV_USER, str(home)], check=True)
        procs = [subprocess.Popen(dlbox_argv("up", "--detach", str(project), user=DEV_USER),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
        assert [code for code, _, _ in results] == [0, 0], results
        rows = _containers(project)
        assert len(rows) == 1 and rows[0].endswith(" running"), rows
    finally:
        dlbox("down", str(project), check=False)
        ids = docker("images", "-q", "--filter", f"label=org.dlbox.project_dir={project}").split()
        if ids:
            docker("rmi", "-f", *set(ids), check=False)
        shutil.rmtree(home, ignore_errors=True)
