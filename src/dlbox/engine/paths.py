"""Where dlbox keeps its own files: a cache dir (bootstrapped rootfs, CA bundles) and private dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from dlbox.errors import HostError


def cache_dir(*parts: str) -> Path:
    base = Path(os.environ.get("DLBOX_CACHE") or platformdirs.user_cache_dir("dlbox"))
    d = base.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def private_dir(name: str) -> Path:
    """A 0700 directory of this user's (under the cache dir), checked before use.

    Refuses one that another user owns or that others can write: a program placed there would
    run as us.
    """
    d = cache_dir().joinpath(name)
    d.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise HostError(f"{d} is not a directory owned by you", fix=f"remove it and run again: rm -rf {d}")
    if st.st_mode & 0o077:
        os.chmod(d, 0o700)
    return d


def project_owner(project_dir: Path | str) -> tuple[int, int]:
    st = os.stat(project_dir)
    return st.st_uid, st.st_gid


def give_to_owner(project_dir: Path | str, *paths: Path | str) -> None:
    """Files dlbox writes in a project belong to the project's owner, also under `sudo dlbox`.

    Only PATHS dlbox itself created: never a hard link (chown would change the linked file's
    owner outside the project) and never through a symlink."""
    if os.geteuid() != 0:
        return
    uid, gid = project_owner(project_dir)
    if uid == 0:
        return
    for p in paths:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
            continue
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(p, uid, gid, follow_symlinks=False)
