"""doctor over fake roots: one layout per finding (tests/fixtures/roots/NAME)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlbox.cli import app
from dlbox.doctor import run_checks
from dlbox.host.sysroot import SysRoot

ROOTS = Path(__file__).resolve().parents[1] / "fixtures" / "roots"


def checks(name: str) -> dict:
    return {c.id: c for c in run_checks(SysRoot(ROOTS / name))}


def test_healthy_gpu_host_is_all_ok():
    c = checks("healthy-gpu")
    assert {k: v.status for k, v in c.items() if v.status != "ok"} == {"wsl": "skip", "proxy.no-proxy": "skip"}
    assert "550.54.14" in c["nvidia.driver"].detail and "12.4" in c["nvidia.driver"].detail
    assert "RTX 4090 (sm 8.9)" in c["nvidia.gpus"].detail
    assert "1.14.6" in c["nvidia.toolkit"].detail
    assert c["memlock"].status == "ok"


def test_order_cascades_from_docker_to_resources():
    ids = [c.id for c in run_checks(SysRoot(ROOTS / "healthy-gpu"))]
    assert ids.index("docker.client") < ids.index("docker.engine") < ids.index("nvidia.driver") \
        < ids.index("nvidia.runtime") < ids.index("proxy") < ids.index("memlock")


def test_daemon_down_without_systemd_says_start_dockerd():
    c = checks("daemon-down")["docker.engine"]
    assert c.status == "fail" and "not running" in c.detail
    assert "dockerd" in c.fix and "systemctl" not in c.fix


def test_socket_permission_gives_group_command():
    c = checks("socket-permission")["docker.engine"]
    assert c.status == "fail" and c.fix.startswith("sudo usermod -aG docker ada")


def test_no_docker_client():
    c = checks("no-docker")
    assert c["docker.client"].status == "fail" and c["docker.client"].fix == "dlbox setup docker"
    assert c["docker.engine"].status == "skip"


def test_wsl2_docker_desktop_and_mnt_c():
    c = checks("wsl2-desktop")
    assert c["wsl"].status == "ok" and "WSL2" in c["wsl"].detail
    assert c["wsl.libcuda"].status == "ok"
    assert c["wsl.project-dir"].status == "warn" and "/mnt/c" in c["wsl.project-dir"].detail
    d = c["docker.desktop"]
    assert d.status == "warn" and "Docker Desktop" in d.detail and "desktop-linux" in d.detail


def test_wsl2_engine_inside_without_libcuda():
    c = checks("wsl2-engine")
    assert c["docker.desktop"].status == "ok" and "inside WSL2" in c["docker.desktop"].detail
    assert c["wsl.libcuda"].status == "warn" and "Windows" in c["wsl.libcuda"].fix
    assert c["wsl.project-dir"].status == "ok"
    assert "Windows" in c["nvidia.driver"].fix


def test_snap_docker_warns():
    c = checks("snap")["docker.snap"]
    assert c.status == "warn" and "snap remove docker" in c.fix


def test_missing_runtime_fails_with_configure_command():
    c = checks("missing-runtime")["nvidia.runtime"]
    assert c.status == "fail" and "nvidia-ctk runtime configure --runtime=docker" in c.fix


def test_cdi_only_is_ok_on_docker_26():
    c = checks("cdi-only")
    assert c["nvidia.runtime"].status == "ok" and "/etc/cdi/nvidia.yaml" in c["nvidia.runtime"].detail
    assert c["nvidia.toolkit"].status == "ok"


def test_cdi_only_warns_on_old_engine(tmp_path):
    import shutil

    shutil.copytree(ROOTS / "cdi-only", tmp_path / "r")
    info = tmp_path / "r/.dlbox/commands/docker-info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "ServerVersion": "20.10.24"}))
    assert {c.id: c for c in run_checks(SysRoot(tmp_path / "r"))}["nvidia.runtime"].status == "warn"


def test_configured_but_not_restarted():
    c = checks("not-restarted")["nvidia.restarted"]
    assert c.status == "fail" and "restart" in c.fix


def test_nvml_trap_with_systemd_cgroup_driver():
    c = checks("nvml-trap")
    assert c["nvidia.nvml-trap"].status == "warn" and "NVML" in c["nvidia.nvml-trap"].detail
    assert c["nvidia.restarted"].status == "ok"


def test_proxy_mismatch_warns_and_never_prints_password():
    c = checks("proxy-mismatch")
    assert c["proxy"].status == "warn" and "disagree" in c["proxy"].detail
    assert "old-proxy:8080" in c["proxy"].detail
    assert c["proxy.no-proxy"].status == "warn" and "daemon lacks localhost, 127.0.0.1" in c["proxy.no-proxy"].detail
    everything = json.dumps([x.to_dict() for x in c.values()])
    assert "s3cret" not in everything and "ada:***@proxy.corp" in everything


def test_proxy_agreeing_layers_are_ok(tmp_path):
    (tmp_path / ".dlbox").mkdir()
    (tmp_path / ".dlbox/env.json").write_text(json.dumps(
        {"HOME": "/home/u", "http_proxy": "http://DESKTOP-A.local:7890", "no_proxy": "localhost,127.0.0.1"}))
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    (tmp_path / "etc/apt/apt.conf.d/99proxy").write_text('Acquire::http::Proxy "http://DESKTOP-A.local:7890";\n')
    (tmp_path / "etc/docker").mkdir()
    (tmp_path / "etc/docker/daemon.json").write_text(json.dumps(
        {"proxies": {"http-proxy": "http://desktop-a.local:7890", "no-proxy": "localhost,127.0.0.1,::1"}}))
    (tmp_path / "home/u/.docker").mkdir(parents=True)
    # the tutorial writes the client's proxy without .local: same Windows host
    (tmp_path / "home/u/.docker/config.json").write_text(json.dumps(
        {"proxies": {"default": {"httpProxy": "http://DESKTOP-A:7890", "noProxy": "localhost,127.0.0.1,::1"}}}))
    c = {x.id: x for x in run_checks(SysRoot(tmp_path))}
    assert c["proxy"].status == "ok", c["proxy"]
    assert c["proxy.no-proxy"].status == "ok"


def test_broken_daemon_json_reports_line_and_column():
    c = checks("broken-daemon-json")["docker.daemon-json"]
    assert c.status == "fail" and "line 4, column 1" in c.detail


def test_malformed_mirror_and_low_disk_fail():
    c = checks("bad-mirror")
    assert c["docker.mirrors"].status == "fail" and "'mirror.example.com'" in c["docker.mirrors"].detail
    assert "ok.example.com" not in c["docker.mirrors"].detail
    assert c["disk"].status == "fail"


def test_memlock_limited_warns_and_explains():
    c = checks("daemon-down")["memlock"]
    assert c.status == "warn" and "8192 KiB" in c.detail and "memlock=-1" in c.detail


def test_no_gpu_is_skip_not_fail():
    c = checks("daemon-down")
    assert c["nvidia.driver"].status == "skip" and c["nvidia.runtime"].status == "skip"


def test_deep_never_runs_a_container_on_a_fake_root():
    c = {x.id: x for x in run_checks(SysRoot(ROOTS / "healthy-gpu"), deep=True)}
    assert c["nvidia.deep"].status == "skip"


@pytest.mark.parametrize("name,code", [("healthy-gpu", 0), ("wsl2-desktop", 0), ("missing-runtime", 1)])
def test_cli_json_and_exit_status(name, code):
    r = CliRunner().invoke(app, ["doctor", "--json", "--root", str(ROOTS / name)])
    assert r.exit_code == code, r.output
    rows = json.loads(r.output)
    assert all(set(row) == {"id", "status", "detail", "fix"} for row in rows)
