"""The sysroot reads files, env and saved command outputs under a fake root; runs nothing."""

from __future__ import annotations

from pathlib import Path

from dlbox.host.sysroot import SysRoot

ROOTS = Path(__file__).resolve().parents[1] / "fixtures" / "roots"


def test_fake_root_reads_saved_outputs_and_env():
    s = SysRoot(ROOTS / "daemon-down")
    assert not s.live
    out = s.docker_info()
    assert out.returncode == 1 and "Cannot connect" in out.stderr
    assert s.env()["USER"] == "ada" and s.home() == "/home/ada"
    assert s.memlock_hard_kib() == 8192
    assert s.command("nvidia-smi").returncode == 127  # not saved → not installed
    assert s.which("docker") == "/usr/bin/docker" and s.which("nvidia-ctk") is None


def test_live_root_is_this_machine():
    s = SysRoot()
    assert s.live and s.path("/etc/hostname") == Path("/etc/hostname")
