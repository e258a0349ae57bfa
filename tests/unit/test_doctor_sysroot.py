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


def test_live_root_asks_the_engine_only_through_the_callable_it_is_handed():
    from dlbox.host.sysroot import Output

    assert SysRoot().docker_info().returncode == 127  # host/ never runs docker itself
    seen = []
    s = SysRoot(engine_info=lambda: seen.append(1) or Output(0, "{}"))
    assert s.docker_info().ok and seen == [1]
    assert SysRoot(ROOTS / "daemon-down", engine_info=lambda: 1 / 0).docker_info().returncode == 1  # saved wins
