"""One dlbox at a time per project: build, up, down and bake take the project's lock.

Two `dlbox up --detach` at once used to race: the loser `docker rm -f`-ed the winner's container,
which then reported "started". The lock is an flock(2) on `.dlbox/lock` in the project (shared by
every user who can open the project), else on a file in this user's cache. The kernel drops it
when the holder dies, even on SIGKILL, so a crashed dlbox never leaves a stale lock. The file
names the holder, so the second dlbox says whom it waits for. Re-entrant within one process.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from dlbox.engine.paths import private_dir
from dlbox.plan.layout import STAGE

Say = Callable[[str], None]
_held: dict[str, int] = {}


def _open(project_dir: Path) -> tuple[int, Path]:
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    candidates = [project_dir / STAGE / "lock"]
    digest = hashlib.sha256(str(project_dir).encode()).hexdigest()[:16]
    candidates.append(private_dir("locks") / f"{digest}.lock")
    for path in candidates:
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError:
            continue
        for mode in (os.O_RDWR, os.O_RDONLY):   # flock works on a read-only descriptor too
            try:
                fd = os.open(path, mode | flags, 0o644)
                if path.parent == project_dir / STAGE:
                    _owned_by_project(fd, project_dir)
                return fd, path
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
    raise OSError(errno.EACCES, "cannot open a lock file for this project", str(candidates[0]))


def _user() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or f"uid {os.getuid()}"


def _owned_by_project(fd: int, project_dir: Path) -> None:
    """Under sudo, the lock file (and .dlbox) belong to the project's owner, not root."""
    if os.geteuid() != 0:
        return
    try:
        st = os.stat(project_dir)
        if os.fstat(fd).st_uid != st.st_uid:
            os.fchown(fd, st.st_uid, st.st_gid)
        stage = project_dir / STAGE
        if stage.is_dir() and not stage.is_symlink() and stage.stat().st_uid != st.st_uid:
            os.chown(stage, st.st_uid, st.st_gid)
    except OSError:
        pass


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another dlbox"


@contextmanager
def project_lock(project_dir: Path, what: str, *, say: Say = lambda _m: None) -> Iterator[None]:
    """Hold the project's lock while the block runs; wait (saying for whom) when another holds it."""
    key = str(project_dir)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd, path = _open(project_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for {_holder(fd)} to finish with this project (lock {path})")
            t0 = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)   # Ctrl-C interrupts the wait
            say(f"got the project lock after {time.monotonic() - t0:.0f} s")
        note = f"dlbox {what} (pid {os.getpid()}, user {_user()})\n".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, note, 0)
        except OSError:
            pass    # read-only lock file: locking still works, the holder is just not named
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
    finally:
        os.close(fd)
