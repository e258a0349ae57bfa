"""Issue 11 item 2: the ssh wrapper that `docker -H ssh://` runs is in a private 0700 directory of
this user, checked before use. It was `/tmp/dlbox-ssh-wrapper-UID`, first on PATH: another local
user could pre-create it and run code as us."""

from __future__ import annotations

import os
import stat

import pytest

from dlbox.engine.paths import private_dir
from dlbox.engine.remote import remote_docker
from dlbox.errors import HostError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_wrapper_is_private_and_first_on_path(cache):
    docker = remote_docker("someone@server.example")
    first = docker.env()["PATH"].split(os.pathsep)[0]
    assert first == str(cache / "ssh-wrapper") and not first.startswith("/tmp/dlbox-ssh-wrapper")
    st = os.lstat(first)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    wrapper = os.lstat(os.path.join(first, "ssh"))
    assert stat.S_ISREG(wrapper.st_mode) and not wrapper.st_mode & 0o022


def test_a_directory_someone_else_owns_is_refused(cache):
    if os.geteuid() != 0:
        pytest.skip("handing a directory to another user needs root")
    planted = cache / "ssh-wrapper"
    planted.mkdir(parents=True)
    (planted / "ssh").write_text("#!/bin/sh\necho pwned\n")
    os.chown(planted, 65534, 65534)        # nobody: the other local user
    with pytest.raises(HostError, match="not a directory owned by you"):
        remote_docker("someone@server.example")
    assert (planted / "ssh").read_text() == "#!/bin/sh\necho pwned\n"


def test_a_symlink_in_its_place_is_refused(cache, tmp_path):
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    cache.mkdir()
    os.symlink(elsewhere, cache / "ssh-wrapper")
    with pytest.raises(HostError, match="not a directory owned by you"):
        private_dir("ssh-wrapper")


def test_a_group_or_world_writable_one_is_made_private(cache):
    d = cache / "ssh-wrapper"
    d.mkdir(parents=True)
    d.chmod(0o777)
    assert private_dir("ssh-wrapper") == d and stat.S_IMODE(os.lstat(d).st_mode) == 0o700
