"""Issue 11 item 18: SIGTERM, SIGHUP or SIGKILL to `dlbox build` never leaves a `docker build`
running that later tags an image. Before, the client ran in its own session, outlived dlbox and
tagged the image ~40 s later, so the next `up` trusted an image no dlbox had checked."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time

import pytest

from tests.helpers.dlbox_cli import dlbox_argv, docker, tiny_project

pytestmark = [pytest.mark.docker]

SMALL_DEBS = ["patch", "bc", "file", "less", "tree", "rsync", "jq", "zip", "unzip", "bzip2", "m4", "make", "lsof"]
RUNNING_STEP = re.compile(r"^#\d+ \d+\.\d+ ")   # a line printed by a RUN step that is executing


def _build_clients(project) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"build .*{project}"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if "pgrep" not in ln and "dlbox build" not in ln]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_signal_during_build_leaves_no_build_and_no_tag(docker_engine, tmp_path, sig):
    name = f"faults-sig{sig.value}"
    # a slow first step whose text (the apt packages and their order) no other build caches
    apt = ["g++"] + random.sample(SMALL_DEBS, 3)
    project = tiny_project(tmp_path / name, name, f"apt = {json.dumps(apt)}\n")
    proc = subprocess.Popen(dlbox_argv("build", str(project)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if RUNNING_STEP.match(line):
            break
    assert proc.poll() is None, "the build ended before a step ran (cached?):\n" + "".join(seen)
    assert _build_clients(project), "no docker build client found while building"
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == (-sig.value if sig == signal.SIGKILL else 128 + sig.value), rest
    assert "Traceback" not in "".join(seen) + rest
    deadline = time.monotonic() + 30
    while _build_clients(project) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _build_clients(project), "docker build still runs after dlbox ended"
    time.sleep(3)
    tagged = docker("images", "-q", "--filter", f"reference=dlbox/{name}-*")
    assert tagged.strip() == "", "a build whose dlbox ended put a tag on an image"
