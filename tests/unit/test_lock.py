"""The per-project lock: a second holder waits and is told who holds it; re-entrant in one process;
released when the holder dies (flock), so a killed dlbox leaves no stale lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dlbox.engine.lock import project_lock

HOLD = """
import sys, time
from pathlib import Path
from dlbox.engine.lock import project_lock
with project_lock(Path(sys.argv[1]), "build"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(project: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(project), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_waits_and_names_the_holder(tmp_path):
    holder = _hold(tmp_path, 1.5)
    said: list[str] = []
    t0 = time.monotonic()
    with project_lock(tmp_path, "up", say=said.append):
        waited = time.monotonic() - t0
    holder.wait()
    assert waited > 1.0, "got the lock while the other process still held it"
    assert said and f"dlbox build (pid {holder.pid}" in said[0]
    assert (tmp_path / ".dlbox" / "lock").is_file()


def test_reentrant_in_one_process(tmp_path):
    with project_lock(tmp_path, "up"):
        with project_lock(tmp_path, "build"):
            pass
        with project_lock(tmp_path, "build"):
            pass


def test_killed_holder_releases_the_lock(tmp_path):
    holder = _hold(tmp_path, 60)
    holder.kill()
    holder.wait()
    said: list[str] = []
    with project_lock(tmp_path, "down", say=said.append):
        pass
    assert said == []


def test_project_without_a_usable_stage_dir_locks_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_CACHE", str(tmp_path / "cache"))
    project = tmp_path / "odd"
    project.mkdir()
    (project / ".dlbox").write_text("not a directory")
    with project_lock(project, "build"):
        assert len(list((tmp_path / "cache" / "locks").iterdir())) == 1
