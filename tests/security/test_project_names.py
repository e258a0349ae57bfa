"""Issue 11 item 11: two projects with the same directory name in different paths never share an
image or a container, and the labels say which path. Before, both baked `dlbox/NAME:baked` and
`dlbox export`/`deploy` of one shipped the other's code."""

from __future__ import annotations

import json

import pytest

from tests.helpers.dlbox_cli import dlbox, docker, tiny_project

pytestmark = [pytest.mark.docker]


@pytest.fixture
def twins(docker_engine, tmp_path):
    a = tiny_project(tmp_path / "a" / "twin", "faults-twin")
    b = tiny_project(tmp_path / "b" / "twin", "faults-twin")
    (a / "marker.txt").write_text("project A\n")
    (b / "marker.txt").write_text("project B\n")
    yield a, b
    for project in (a, b):
        dlbox("down", str(project), check=False)
        ids = docker("images", "-q", "--filter", f"label=org.dlbox.project_dir={project}").split()
        if ids:
            docker("rmi", "-f", *set(ids), check=False)


def test_same_name_in_two_paths_gets_two_images_and_containers(twins):
    a, b = twins
    baked = {}
    for project in (a, b):
        baked[project] = dlbox("build", "--bake", str(project)).stdout.strip().splitlines()[-1]
    assert baked[a] != baked[b]
    for project, ref in baked.items():
        labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref))
        assert labels["org.dlbox.project_dir"] == str(project)
        shipped = docker("run", "--rm", "--entrypoint", "cat", ref, "/workspace/marker.txt")
        assert shipped == (project / "marker.txt").read_text()
    names = []
    try:
        for project in (a, b):
            dlbox("up", "--detach", str(project))
            names += [n for n in docker("ps", "--filter", f"label=org.dlbox.project_dir={project}",
                                        "--format", "{{.Names}}").split()]
        assert len(names) == 2 and names[0] != names[1]
    finally:
        for project in (a, b):
            dlbox("down", str(project), check=False)
