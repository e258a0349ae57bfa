"""Issue 11 item 13: backups never overwrite each other and links are followed, never replaced.

Before: `setup all … --registry-mirror …` edited daemon.json twice in one second and the second
backup (same second-resolution name) replaced the first, losing the original; `init --force`
twice replaced the only backup of the user's dlbox.toml; a symlinked daemon.json became a
regular file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers.dlbox_cli import dlbox

ORIGINAL = {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "data-root": "/srv/docker"}


def _scratch(tmp_path: Path, *, linked: bool) -> Path:
    root = tmp_path / "root"
    (root / "etc/docker").mkdir(parents=True)
    (root / "root/.docker").mkdir(parents=True)
    (root / ".dlbox").mkdir()
    (root / ".dlbox/env.json").write_text(json.dumps({"HOME": "/root"}))
    # an engine >= 23 takes its proxy in daemon.json: `setup all` edits that file in two steps
    (root / ".dlbox/commands").mkdir()
    (root / ".dlbox/commands/docker-info.json").write_text(json.dumps({"ServerVersion": "24.0.7"}))
    text = json.dumps(ORIGINAL, indent=4)
    if linked:   # the admin keeps daemon.json in a managed directory and links it
        (root / "srv/conf").mkdir(parents=True)
        (root / "srv/conf/daemon.json").write_text(text)
        os.symlink("/srv/conf/daemon.json", root / "etc/docker/daemon.json")
    else:
        (root / "etc/docker/daemon.json").write_text(text)
    return root


def _setup_all(root: Path):
    return dlbox("setup", "all", "http://10.0.0.1:3128", "--registry-mirror", "https://mirror.example.com",
                 "--yes", "--root", str(root), check=False)


def _backups(directory: Path) -> list[Path]:
    return sorted(directory.glob("daemon.json.dlbox-bak-*"))


def test_setup_all_keeps_the_original_daemon_json(tmp_path):
    root = _scratch(tmp_path, linked=False)
    for _ in range(2):
        _setup_all(root)
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    assert daemon["registry-mirrors"] == ["https://mirror.example.com"] and "proxies" in daemon
    assert {k: daemon[k] for k in ORIGINAL} == ORIGINAL
    backups = _backups(root / "etc/docker")
    assert len(backups) >= 2, "two edits, two backups"
    assert len({b.name for b in backups}) == len(backups)
    assert json.dumps(ORIGINAL, indent=4) in [b.read_text() for b in backups], "the original was lost"


def test_symlinked_daemon_json_stays_a_link(tmp_path):
    root = _scratch(tmp_path, linked=True)
    proc = _setup_all(root)
    link = root / "etc/docker/daemon.json"
    assert link.is_symlink() and os.readlink(link) == "/srv/conf/daemon.json", proc.stdout + proc.stderr
    daemon = json.loads((root / "srv/conf/daemon.json").read_text())
    assert daemon["registry-mirrors"] == ["https://mirror.example.com"] and daemon["data-root"] == "/srv/docker"
    assert json.dumps(ORIGINAL, indent=4) in [b.read_text() for b in _backups(root / "srv/conf")]


def test_dangling_daemon_json_link_is_refused_clearly(tmp_path):
    root = _scratch(tmp_path, linked=True)
    (root / "srv/conf/daemon.json").unlink()
    (root / "srv/conf").rmdir()
    proc = _setup_all(root)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "symbolic link" in proc.stdout + proc.stderr
    assert (root / "etc/docker/daemon.json").is_symlink()


def test_init_force_twice_keeps_the_users_original(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("numpy\n")
    mine = '# my own, hand-written\nname = "mine"\n[env]\ntorch = "none"\n'
    (project / "dlbox.toml").write_text(mine)
    dlbox("init", "--force", str(project))
    (project / "dlbox.toml").write_text((project / "dlbox.toml").read_text() + "# an edit\n")
    dlbox("init", "--force", str(project))
    backups = {p.name: p.read_text() for p in project.glob("dlbox.toml.bak*")}
    assert mine in backups.values(), backups
    assert len(backups) == 2


def test_symlinked_dlbox_toml_stays_a_link(tmp_path):
    project = tmp_path / "p"
    (tmp_path / "shared").mkdir()
    project.mkdir()
    (tmp_path / "shared/dlbox.toml").write_text('name = "shared"\n')
    os.symlink(tmp_path / "shared/dlbox.toml", project / "dlbox.toml")
    dlbox("init", "--force", str(project))
    assert (project / "dlbox.toml").is_symlink()
    assert "[env]" in (tmp_path / "shared/dlbox.toml").read_text()
