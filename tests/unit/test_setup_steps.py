"""setup proxy / mirrors / docker / nvidia over fake roots: merge, idempotence, refusal."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from dlbox.cli import app

ROOTS = Path(__file__).resolve().parents[1] / "fixtures" / "roots"


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def setup(*args: str):
    return CliRunner().invoke(app, ["setup", *args, "--yes"])


def scratch(tmp_path: Path, name: str) -> Path:
    shutil.copytree(ROOTS / name, tmp_path / name)
    return tmp_path / name


def test_proxy_merges_and_second_run_is_a_noop(tmp_path):
    root = scratch(tmp_path, "proxy-mismatch")
    r = setup("proxy", "http://ada:s3cret@proxy.corp:3128", "--no-proxy", ".corp", "--root", str(root))
    assert r.exit_code == 0, r.output
    assert "s3cret" not in r.output and "YWRh" not in r.output
    cfg = json.loads((root / "home/ada/.docker/config.json").read_text())
    assert cfg["auths"] == {"ghcr.io": {"auth": "YWRhOnRva2Vu"}}
    assert cfg["proxies"]["default"]["noProxy"] == "localhost,127.0.0.1,::1,host.docker.internal,.corp"
    # Docker 24 reads daemon.json "proxies"; other keys stay
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    assert daemon["log-driver"] == "json-file" and daemon["proxies"]["http-proxy"].endswith("proxy.corp:3128")
    apt = (root / "etc/apt/apt.conf.d/95dlbox-proxy").read_text()
    assert 'Acquire::https::Proxy "http://ada:s3cret@proxy.corp:3128";' in apt
    assert (root / "etc/apt/apt.conf.d/99proxy").read_text().startswith("// the old office proxy")
    assert list((root / "home/ada/.docker").glob("config.json.dlbox-bak-*"))
    before = tree_digest(root)
    r2 = setup("proxy", "http://ada:s3cret@proxy.corp:3128", "--no-proxy", ".corp", "--root", str(root))
    assert r2.exit_code == 0 and "nothing to change" in r2.output
    assert tree_digest(root) == before
    from dlbox.doctor import run_checks
    from dlbox.host.sysroot import SysRoot

    checks = {c.id: c for c in run_checks(SysRoot(root))}
    assert checks["proxy.no-proxy"].status == "ok"
    # the user's own 99proxy is read after 95dlbox-proxy and still wins for apt: doctor says so
    assert checks["proxy"].status == "warn" and "apt=http://old-proxy:8080" in checks["proxy"].detail


def test_proxy_on_old_engine_writes_systemd_dropin(tmp_path):
    root = scratch(tmp_path, "wsl2-engine")
    info = root / ".dlbox/commands/docker-info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "ServerVersion": "20.10.24"}))
    r = setup("proxy", "http://DESKTOP-ADA.local:7890", "--root", str(root))
    assert r.exit_code == 0, r.output
    dropin = (root / "etc/systemd/system/docker.service.d/http-proxy.conf").read_text()
    assert 'Environment="HTTP_PROXY=http://DESKTOP-ADA.local:7890"' in dropin
    assert not (root / "etc/docker/daemon.json").exists()


def test_proxy_without_url_under_wsl2_offers_windows_host(tmp_path):
    root = scratch(tmp_path, "wsl2-engine")
    r = CliRunner().invoke(app, ["setup", "proxy", "--root", str(root)])
    assert r.exit_code == 1 and "DESKTOP-ADA.local:7890" in r.output


def test_dry_run_touches_nothing(tmp_path):
    root = scratch(tmp_path, "proxy-mismatch")
    before = tree_digest(root)
    r = CliRunner().invoke(app, ["setup", "proxy", "http://p:1", "--dry-run", "--root", str(root)])
    assert r.exit_code == 0 and "dry run" in r.output and "+++" in r.output
    assert tree_digest(root) == before


def test_broken_daemon_json_is_never_overwritten():
    root = ROOTS / "broken-daemon-json"  # the fixture itself: planning must stop before any write
    before = tree_digest(root)
    for args in (["mirrors", "--registry-mirror", "https://m2.example.com"], ["proxy", "http://p:3128"]):
        r = setup(*args, "--root", str(root))
        assert r.exit_code == 1 and "line 4, column 1" in r.output, r.output
    assert tree_digest(root) == before


def test_mirrors_merge_and_second_run_is_a_noop(tmp_path):
    root = scratch(tmp_path, "bad-mirror")
    (root / "etc/docker/daemon.json").write_text(json.dumps({"log-driver": "local", "registry-mirrors": []}))
    (root / "etc/apt").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").write_text("# main\ndeb http://deb.debian.org/debian bookworm main\n"
                                               "deb http://security.debian.org/debian-security bookworm-security main\n")
    args = ["mirrors", "--apt-mirror", "https://mirrors.ustc.edu.cn", "--pip-index",
            "https://mirrors.aliyun.com/pypi/simple/", "--registry-mirror", "https://m.example.com", "--root", str(root)]
    r = setup(*args)
    assert r.exit_code == 0, r.output
    assert (root / "etc/apt/sources.list").read_text() == (
        "# main\ndeb https://mirrors.ustc.edu.cn/debian bookworm main\n"
        "deb https://mirrors.ustc.edu.cn/debian-security bookworm-security main\n")
    assert "index-url = https://mirrors.aliyun.com/pypi/simple/" in (root / "home/ada/.config/pip/pip.conf").read_text()
    import tomllib

    uv = tomllib.loads((root / "home/ada/.config/uv/uv.toml").read_text())
    assert uv["index"] == [{"url": "https://mirrors.aliyun.com/pypi/simple/", "default": True}]
    assert json.loads((root / "etc/docker/daemon.json").read_text()) == {
        "log-driver": "local", "registry-mirrors": ["https://m.example.com"]}
    before = tree_digest(root)
    r2 = setup(*args)
    assert r2.exit_code == 0 and "nothing to change" in r2.output
    assert tree_digest(root) == before


def test_bad_registry_mirror_is_refused(tmp_path):
    root = scratch(tmp_path, "healthy-gpu")
    r = setup("mirrors", "--registry-mirror", "mirror.example.com", "--root", str(root))
    assert r.exit_code == 1 and "http:// or https://" in r.output


def test_setup_docker_with_engine_answering_is_a_noop(tmp_path):
    root = scratch(tmp_path, "healthy-gpu")
    r = setup("docker", "--root", str(root))
    assert r.exit_code == 0 and "nothing to change" in r.output


def test_setup_docker_without_systemd_starts_dockerd(tmp_path):
    root = scratch(tmp_path, "daemon-down")
    r = CliRunner().invoke(app, ["setup", "docker", "--dry-run", "--root", str(root)])
    assert r.exit_code == 0 and "nohup dockerd" in r.output and "systemctl" not in r.output


def test_setup_docker_installs_and_adds_sudo_user(tmp_path):
    root = scratch(tmp_path, "no-docker")
    (root / ".dlbox/env.json").write_text(json.dumps({"HOME": "/root", "SUDO_USER": "ada"}))
    (root / "etc").mkdir()
    (root / "etc/group").write_text("docker:x:999:\n")
    (root / "run/systemd/system").mkdir(parents=True)
    r = CliRunner().invoke(app, ["setup", "docker", "--dry-run", "--root", str(root)])
    assert "apt-get install -y docker-ce" in r.output
    assert "systemctl enable --now docker" in r.output and "usermod -aG docker ada" in r.output
    assert "log in again" in r.output


def test_setup_nvidia_refuses_without_a_driver(tmp_path):
    root = scratch(tmp_path, "daemon-down")
    r = setup("nvidia", "--root", str(root))
    assert r.exit_code == 1 and "no working NVIDIA driver" in r.output


def test_setup_nvidia_plans_toolkit_runtime_restart(tmp_path):
    root = scratch(tmp_path, "healthy-gpu")
    (root / "usr/bin/nvidia-ctk").unlink()
    (root / "etc/docker/daemon.json").unlink()
    r = CliRunner().invoke(app, ["setup", "nvidia", "--dry-run", "--root", str(root)])
    assert r.exit_code == 0, r.output
    for piece in ("apt-get install -y nvidia-container-toolkit", "nvidia-ctk runtime configure --runtime=docker",
                  "dockerd"):
        assert piece in r.output


def test_setup_nvidia_already_configured_is_a_noop(tmp_path):
    root = scratch(tmp_path, "healthy-gpu")
    r = setup("nvidia", "--root", str(root))
    assert r.exit_code == 0 and "nothing to change" in r.output
