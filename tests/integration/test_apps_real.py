"""Jupyter, the web app example, the dev container and compose against the real engine.

One copy of examples/webapp (on a free host port) is built once per session and reused by
every test; JupyterLab's layer is built once on top of it. Each test removes what it started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from dlbox import workflow
from dlbox.workflow import containers
from dlbox.engine.docker import Docker, buildkit_client
from dlbox.errors import HostError
from tests.helpers.net import free_port

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webapp"




def http(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    """(status, body, location) without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None

    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read(), r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Location")


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (docker0 first: it always exists here)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    addrs = {m.group(1): m.group(2) for m in re.finditer(r"^\d+:\s+(\S+)\s+inet\s+([\d.]+)/", out, re.M)}
    addrs.pop("lo", None)
    return addrs.get("docker0") or next(iter(addrs.values()), None)


@pytest.fixture(scope="session")
def docker(docker_engine):
    """conftest's engine: a missing engine fails under CI instead of skipping every test here."""
    return docker_engine


@pytest.fixture(scope="session")
def webapp(tmp_path_factory, docker):
    """(project, image, port): the example copied, published on a free port, built once."""
    root = tmp_path_factory.mktemp("webapp")
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".dlbox", ".devcontainer"))
    port = free_port()
    toml = root / "dlbox.toml"
    toml.write_text(toml.read_text().replace('ports = ["7860"]', f'ports = ["{port}:7860"]'))
    p = workflow.load_project(root, docker=docker, check_images=True)
    image = containers.ensure_image(p, quiet=True).image
    yield p, image, port
    containers.down(p)
    remove_images(docker, image)


def remove_images(docker: Docker, image: str) -> None:
    """Untag IMAGE and the Jupyter images built on it: the tag holds this session's port, so it is
    never reused; the layers stay in BuildKit's cache, so the next session rebuilds in seconds."""
    repo, tag = image.rsplit(":", 1)
    out = docker.run(["images", "--format", "{{.Repository}}:{{.Tag}}", repo], check=False).stdout.decode()
    tags = [t for t in out.split() if t == image or t.startswith(f"{repo}:{tag}-jupyter-")]
    if tags:
        docker.run(["rmi", *tags], check=False)


def test_webapp_answers_through_its_published_port(webapp):
    from dlbox.apps.web import start_web

    p, image, port = webapp
    try:
        app = start_web(p, image=image, timeout=180)
        assert app.urls == (f"http://127.0.0.1:{port}/",)
        status, body, _ = http(app.urls[0])
        assert status == 200 and b"Two moons" in body
        status, body, _ = http(app.urls[0] + "predict", method="POST", data=b'{"x": 0.0, "y": 1.0}',
                               headers={"Content-Type": "application/json"})
        assert status == 200 and json.loads(body)["label"] == 0
        again = start_web(p, image=image, timeout=30)
        assert not again.started
    finally:
        containers.down(p)


def test_webapp_that_exits_shows_its_last_lines(tmp_path, docker, webapp):
    from dlbox.apps.web import start_web

    _, _, _ = webapp
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".dlbox", ".devcontainer"))
    toml = tmp_path / "dlbox.toml"
    text = toml.read_text().replace('name = "webapp"', 'name = "webapp-broken"')
    text = text.replace('command = ["python", "app.py"]',
                        'command = ["python", "-c", "import sys; print(\'boom: no weights\'); sys.exit(3)"]')
    toml.write_text(text.replace('ports = ["7860"]', f'ports = ["{free_port()}:7860"]'))
    p = workflow.load_project(tmp_path, docker=docker, check_images=True)
    image = containers.ensure_image(p, quiet=True).image
    try:
        with pytest.raises(HostError, match="stopped before") as exc:
            start_web(p, image=image, timeout=120)
        assert "boom: no weights" in exc.value.message
    finally:
        containers.down(p)
        remove_images(docker, image)


def test_jupyter_requires_its_token_and_listens_on_loopback_only(webapp):
    from dlbox.apps.jupyter import start_jupyter, stop_jupyter

    p, image, _ = webapp
    port = free_port()
    try:
        server = start_jupyter(p, port=port, timeout=180)
        token = server.url.split("token=")[1]
        assert server.started and server.url.startswith(f"http://127.0.0.1:{port}/lab?token=")
        assert http(f"http://127.0.0.1:{port}/api/contents")[0] == 403
        status, _, location = http(f"http://127.0.0.1:{port}/lab")
        assert status == 302 and "/login" in location
        assert http(f"http://127.0.0.1:{port}/api/contents?token={token}")[0] == 200
        assert http(server.url)[0] == 200
        # a second call finds the running server and prints the same URL
        again = start_jupyter(p, port=port)
        assert not again.started and again.url == server.url
        # published on 127.0.0.1 only: closed on this machine's other addresses
        addr = non_loopback_address()
        if addr:
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=2).close()
    finally:
        stop_jupyter(p)


def _devcontainer_cli() -> str | None:
    return os.environ.get("DLBOX_DEVCONTAINER_CLI") or shutil.which("devcontainer")


def test_devcontainer_cli_builds_starts_and_runs_as_the_host_user(webapp, docker):
    from dlbox.apps.files import write_devcontainer

    cli = _devcontainer_cli()
    if not cli:
        pytest.skip("@devcontainers/cli is not installed (npm install -g @devcontainers/cli)")
    p, _, _ = webapp
    folder = str(p.spec.project_dir)
    write_devcontainer(p)          # build mode: the rendered .dlbox/Dockerfile (its layers are cached)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    docker_path = buildkit_client(docker.binary) or docker.binary

    def dc(verb: str, *command: str) -> subprocess.CompletedProcess:
        # options before the command: `exec` passes everything after it to the container
        return subprocess.run([cli, verb, "--workspace-folder", folder, "--docker-path", docker_path, *command],
                              capture_output=True, text=True, env=env, timeout=600)

    try:
        conf = dc("read-configuration")
        assert conf.returncode == 0, conf.stderr
        c = json.loads(conf.stdout)["configuration"]
        assert c["hostRequirements"] == {"gpu": "optional"} and c["workspaceFolder"] == "/workspace"
        up = dc("up")
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert json.loads(up.stdout.strip().splitlines()[-1])["outcome"] == "success"
        ran = dc("exec", "sh", "-c", "id -u; id -g; pwd; python -c 'import torch'")
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert ran.stdout.split()[:3] == [str(os.getuid()), str(os.getgid()), "/workspace"]
    finally:
        ps = docker.run(["ps", "-a", "--filter", f"label=devcontainer.local_folder={folder}",
                         "--format", "{{.ID}} {{.Image}}"], check=False)
        for line in ps.stdout.decode().splitlines():
            cid, image = line.split()
            docker.run(["rm", "-f", cid], check=False)
            docker.run(["rmi", image, image.removesuffix("-uid")], check=False)


def test_docker_compose_config_and_up_run_the_example(webapp, docker):
    from dlbox.apps.files import write_compose
    from dlbox.apps.wait import wait_http

    compose = shutil.which("docker-compose")
    if not compose:
        if os.environ.get("CI"):   # scripts/setup-host.sh installs it with WITH_TESTS=1
            pytest.fail("docker-compose is not installed: scripts/test.sh installs it")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    p, _, port = webapp
    containers.down(p)
    write_compose(p, force=True)
    folder = p.spec.project_dir
    name = f"dlboxtest{port}"

    def dcmp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compose, "-p", name, *args], cwd=folder, capture_output=True, text=True, timeout=300)

    try:
        cfg = dcmp("config")
        assert cfg.returncode == 0, cfg.stderr
        assert f"127.0.0.1:{port}:7860" in cfg.stdout and "ipc: host" in cfg.stdout
        up = dcmp("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
        assert http(f"http://127.0.0.1:{port}/healthz")[:2] == (200, b"ok\n")
    finally:
        dcmp("down", "-t", "1")
