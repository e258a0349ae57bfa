"""setup for real: proxy and mirrors against a scratch root, docker on this machine."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
DLBOX = Path(__file__).resolve().parents[2] / ".venv/bin/dlbox"


def dlbox(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DLBOX), *args], capture_output=True, text=True, timeout=120)


def digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text(json.dumps(
        {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "data-root": "/srv/docker"}, indent=4))
    (tmp_path / "root/.docker").mkdir(parents=True)
    (tmp_path / "root/.docker/config.json").write_text(json.dumps(
        {"auths": {"ghcr.io": {"auth": "dXNlcjp0b2tlbg=="}}, "credsStore": "pass", "detachKeys": "ctrl-e"}))
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text("# keep me\ndeb http://deb.debian.org/debian bookworm main\n")
    (tmp_path / ".dlbox").mkdir()
    (tmp_path / ".dlbox/env.json").write_text(json.dumps({"HOME": "/root"}))
    return tmp_path


def test_setup_proxy_twice_keeps_every_key(scratch: Path):
    first = dlbox("setup", "proxy", "http://u:hunter2@10.0.0.1:3128", "--yes", "--root", str(scratch))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "hunter2" not in first.stdout + first.stderr
    daemon = json.loads((scratch / "etc/docker/daemon.json").read_text())
    assert daemon == {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "data-root": "/srv/docker"}
    cfg = json.loads((scratch / "root/.docker/config.json").read_text())
    assert cfg["auths"] == {"ghcr.io": {"auth": "dXNlcjp0b2tlbg=="}} and cfg["credsStore"] == "pass"
    assert cfg["detachKeys"] == "ctrl-e" and cfg["proxies"]["default"]["httpsProxy"] == "http://u:hunter2@10.0.0.1:3128"
    assert (scratch / "etc/apt/apt.conf.d/95dlbox-proxy").exists()
    before = digest(scratch)
    second = dlbox("setup", "proxy", "http://u:hunter2@10.0.0.1:3128", "--yes", "--root", str(scratch))
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert digest(scratch) == before


def test_setup_mirrors_twice_keeps_every_key(scratch: Path):
    args = ("setup", "mirrors", "--registry-mirror", "https://mirror.example.com", "--apt-mirror",
            "https://mirrors.ustc.edu.cn", "--pip-index", "https://mirrors.aliyun.com/pypi/simple/",
            "--yes", "--root", str(scratch))
    first = dlbox(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    daemon = json.loads((scratch / "etc/docker/daemon.json").read_text())
    assert daemon["log-opts"] == {"max-size": "10m"} and daemon["data-root"] == "/srv/docker"
    assert daemon["registry-mirrors"] == ["https://mirror.example.com"]
    assert (scratch / "etc/apt/sources.list").read_text().startswith("# keep me\n")
    assert list((scratch / "etc/docker").glob("daemon.json.dlbox-bak-*"))
    before = digest(scratch)
    second = dlbox(*args)
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert digest(scratch) == before


def test_setup_docker_is_a_noop_where_the_engine_answers():
    p = dlbox("setup", "docker", "--yes")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "installed and answering" in p.stdout and "nothing to change" in p.stdout
