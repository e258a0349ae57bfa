"""One host observer: the planner's Host comes from the same probes as doctor, through a SysRoot.

Nothing here observes the live machine's GPU: saved roots, and the SSH capture script run
locally by `sh` (the same script a server runs over ssh).
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import subprocess
import tarfile
from pathlib import Path

from dlbox.host.observe import observe
from dlbox.host.remote import capture_script, unpack
from dlbox.host.sysroot import SysRoot

ROOTS = Path(__file__).resolve().parents[1] / "fixtures" / "roots"


def test_a_saved_root_replays_driver_gpus_engine_limits_and_cdi():
    host = observe(SysRoot(ROOTS / "healthy-gpu"))
    assert host.driver.driver_version == "550.54.14" and host.driver.cuda_max == "12.4"
    (gpu,) = host.driver.gpus
    assert (gpu.name, gpu.compute_cap, gpu.memory_mib) == ("NVIDIA GeForce RTX 4090", "8.9", 24564)
    assert host.engine is not None and host.engine.nvidia_runtime and host.can_give_gpu
    assert host.home == "/home/ada" or host.home  # from the root's env.json, not this machine
    cdi = observe(SysRoot(ROOTS / "cdi-only"))
    assert cdi.cdi_gpu and cdi.can_give_gpu


def test_a_root_without_nvidia_smi_has_no_driver_and_no_engine_unless_saved():
    host = observe(SysRoot(ROOTS / "daemon-down"))
    assert host.driver is None and host.engine is None
    assert host.limits.memlock_hard == 8192 * 1024  # ulimit-l.txt is KiB


def test_engine_info_is_handed_in_never_fetched():
    host = observe(SysRoot(ROOTS / "daemon-down"), engine_info={"ServerVersion": "24.0.7", "Runtimes": {"runc": {}}})
    assert host.engine.server_version == "24.0.7"


def test_the_server_capture_script_replays_this_machine(tmp_path):
    # the exact script `observe_server` sends over ssh, run here by sh: a server is a root.
    # PATH holds only the shell tools it needs, so no nvidia-smi of this machine is ever run.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("sh", "mktemp", "mkdir", "cat", "cp", "tar", "rm", "id", "sed", "printf", "uname"):
        if shutil.which(name):
            (tools / name).symlink_to(shutil.which(name))
    out = subprocess.run(["sh", "-c", capture_script()], capture_output=True, check=True, timeout=60,
                         env={"PATH": str(tools), "HOME": os.environ.get("HOME", "")}).stdout
    unpack(out, tmp_path / "root")
    tmp_path = tmp_path / "root"
    root = SysRoot(tmp_path)
    assert root.ids() == (os.getuid(), os.getgid())
    assert root.command("nvidia-smi").returncode == 127  # not on the test PATH: never run here
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    assert root.memlock_hard_kib() == (None if hard == resource.RLIM_INFINITY else hard // 1024)
    assert root.home() == os.environ.get("HOME", "")
    host = observe(root, server="me@here")
    assert host.server == "me@here" and host.uid == os.getuid()


def test_a_capture_cannot_write_outside_its_root(tmp_path):
    import pytest

    from dlbox.errors import HostError

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(HostError, match="unexpected entry"):
        unpack(buf.getvalue(), tmp_path / "root")
    assert not (tmp_path / "escape.txt").exists()
