"""`dlbox jupyter` without an engine: the argv, the token's path, the URL read back, the image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dlbox.apps import jupyter as J
from dlbox.apps import web
from dlbox.errors import HostError
from dlbox.host import Host, Limits, NetFacts
from dlbox.plan import resolve
from dlbox.spec import load_spec
from dlbox.workflow import Project

TOML = """
name = "nb"
[env]
python = "3.11"
torch = "auto"
{extra}
[run]
ports = ["7860"]
"""


class FakeDocker:
    """Records docker calls; `inspect` answers from a dict."""

    def __init__(self, containers=None):
        self.calls: list[tuple[list[str], dict | None]] = []
        self.containers = containers or {}

    def inspect(self, kind, ref):
        return self.containers.get(ref)

    def image_exists(self, ref):
        return True

    def run(self, args, *, check=True, env=None, timeout=None, **kw):
        self.calls.append((list(args), env))
        return subprocess.CompletedProcess(args, 0, b"abc\n", b"")


def project(tmp_path: Path, *, uid=1000, extra="", docker=None, net=NetFacts()) -> Project:
    (tmp_path / "dlbox.toml").write_text(TOML.format(extra=extra))
    spec = load_spec(tmp_path)
    host = Host(uid=uid, gid=uid, limits=Limits(memlock_hard=8 * 2**20), net=net)
    return Project(spec, host, resolve(spec, host), docker or FakeDocker())


def test_start_passes_the_token_by_name_and_publishes_only_on_loopback(tmp_path, monkeypatch):
    waited = []
    monkeypatch.setattr(J, "check_ports", lambda docker, ports: None)
    monkeypatch.setattr(J, "wait_http", lambda url, **kw: waited.append(url) or 0.1)
    p = project(tmp_path)
    server = J.start_jupyter(p, port=8899, image="img:jupyter")
    argv, env = p.docker.calls[-1]
    token = env["JUPYTER_TOKEN"]
    assert len(token) >= 32
    assert token not in " ".join(argv)                         # never on the command line (ps)
    pairs = list(zip(argv, argv[1:]))
    assert ("-e", "JUPYTER_TOKEN") in pairs                   # by name: the value comes from env
    assert argv[argv.index("--name") + 1] == J.jupyter_name(p.plan)
    assert J.jupyter_name(p.plan).endswith("-jupyter")
    ports = [argv[k + 1] for k, a in enumerate(argv) if a == "-p"]
    assert ports == ["127.0.0.1:8899:8888"]                    # not the project's 7860
    assert "org.dlbox.app=jupyter" in argv
    image_at = argv.index("img:jupyter")
    assert argv[image_at + 1:image_at + 3] == ["jupyter", "lab"]
    assert "--allow-root" not in argv
    assert not any("token=" in a.lower() and "ServerApp" in a for a in argv)
    assert server.url == f"http://127.0.0.1:8899/lab?token={token}" and server.started
    assert waited == ["http://127.0.0.1:8899/api"]


def test_public_publishes_on_all_addresses(tmp_path, monkeypatch):
    monkeypatch.setattr(J, "check_ports", lambda docker, ports: None)
    monkeypatch.setattr(J, "wait_http", lambda url, **kw: 0.1)
    p = project(tmp_path)
    J.start_jupyter(p, port=8899, image="i", public=True)
    argv, _ = p.docker.calls[-1]
    assert "8899:8888" in argv


def test_root_host_user_gets_allow_root(tmp_path):
    assert "--allow-root" in J.jupyter_command(project(tmp_path, uid=0).plan)


def test_a_running_server_is_found_and_its_url_read_back(tmp_path):
    p = project(tmp_path)
    name = J.jupyter_name(p.plan)
    p.docker.containers[name] = {
        "State": {"Running": True},
        "Config": {"Env": ["PATH=/x", "JUPYTER_TOKEN=tok123"]},
        "HostConfig": {"PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8890"}]}},
    }
    server = J.start_jupyter(p, image="i")
    assert server.url == "http://127.0.0.1:8890/lab?token=tok123"
    assert not server.started and not server.public
    assert p.docker.calls == []                                # nothing started


def test_port_in_use_is_a_clear_error(tmp_path, monkeypatch):
    def busy(docker, ports):
        raise HostError("port 8888 is already in use by container other")

    monkeypatch.setattr(J, "check_ports", busy)
    with pytest.raises(HostError, match="container other"):
        J.start_jupyter(project(tmp_path), image="i")


def test_jupyter_is_a_stage_of_the_one_dockerfile_and_is_skipped_when_the_project_has_it(tmp_path):
    from dlbox.plan.layout import image_name
    from dlbox.render.dockerfile import render_dockerfile

    p = project(tmp_path, net=NetFacts(pip_index="https://mirror.example/simple"))
    text = render_dockerfile(p.plan)
    stages = [ln for ln in text.splitlines() if ln.startswith("FROM ")]
    assert stages[-2:] == ["FROM env AS jupyter", "FROM env"], "a plain docker build still ends at env"
    jupyter = text[text.index("FROM env AS jupyter"):]
    assert "--index-url https://mirror.example/simple jupyterlab" in jupyter
    assert "--mount=type=bind,from=dlbox/tools:" in jupyter and ".dlbox/bin" not in jupyter
    image = J.jupyter_image(p, "dlbox/nb:abc")       # FakeDocker: every image exists already
    assert image.startswith(f"{image_name(p.plan)}:") and image.endswith("-jupyter")
    assert not (tmp_path / ".dlbox" / "Dockerfile.jupyter").exists(), "no private Dockerfile"
    (tmp_path / "x").mkdir()
    with_jl = project(tmp_path / "x", extra='pip = ["jupyterlab>=4"]')
    assert J.jupyter_image(with_jl, "dlbox/nb:abc") == "dlbox/nb:abc"
    assert "AS jupyter" not in render_dockerfile(with_jl.plan)


def test_web_needs_a_command(tmp_path):
    with pytest.raises(HostError, match="command"):
        web.start_web(project(tmp_path), image="i")
