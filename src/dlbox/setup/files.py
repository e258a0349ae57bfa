"""Safe edits of configuration files: merge, show a diff, back up, write atomically.

Contract:
- a change is computed as text (old → new) and shown as a unified diff before anything is written;
- files are merged, never replaced: other JSON keys and apt/ini comments stay;
- before a file is changed a copy `FILE.dlbox-bak-YYYYmmdd-HHMMSS[-N]` is written, never over an
  older backup (two steps of `setup all` in one second keep both, so the original survives);
- a symlinked file is written through its link (the link stays a link); a dangling link is refused;
- the new text goes to a temp file in the same directory, gets the old mode and owner,
  and is renamed over the file (atomic on one filesystem);
- a malformed JSON file raises `MalformedConfig` (with line and column) and is never written;
- secrets (passwords in proxy URLs) never appear in what is shown.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dlbox.errors import HostError
from dlbox.redact import mask_secrets


@dataclass(frozen=True)
class FileChange:
    """Replace the text of `host_path` (at `real_path`) `old` → `new`. `old` None: a new file."""

    host_path: str
    real_path: Path
    old: str | None
    new: str
    mode: int = 0o644
    private: bool = False   # holds a secret (a proxy password): the file and its backups are 0600

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        old = (self.old or "").splitlines(keepends=True)
        new = self.new.splitlines(keepends=True)
        a = self.host_path if self.old is not None else "/dev/null"
        text = "".join(difflib.unified_diff(old, new, a, self.host_path))
        return mask_secrets(text)


def backup_name(path: Path, now: float | None = None) -> Path:
    """A backup name no existing file has: the time, then -1, -2… within one second."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate, n = path.with_name(f"{path.name}.dlbox-bak-{stamp}"), 0
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}.dlbox-bak-{stamp}-{n}")
    return candidate


def _write_backup(path: Path, now: float | None) -> Path:
    """Copy PATH to a fresh backup file, created exclusively (never replacing another backup)."""
    data = path.read_bytes()
    while True:
        backup = backup_name(path, now)
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue    # another dlbox took that name a moment ago
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        shutil.copystat(path, backup)
        st = path.stat()
        if os.geteuid() == 0:
            os.chown(backup, st.st_uid, st.st_gid)
        return backup


def follow_link(real_path: Path, host_path: str) -> Path:
    """Where a write of REAL_PATH must go: through a symlink to its target, so that the link stays.

    A link's absolute target is read relative to the root the file was found under (`--root`)."""
    root = Path(str(real_path)[: len(str(real_path)) - len(host_path.rstrip("/"))] or "/")
    path, hops = real_path, 0
    while path.is_symlink():
        hops += 1
        if hops > 40:
            raise HostError(f"{host_path}: too many levels of symbolic links; nothing written.")
        target = os.readlink(path)
        path = root / target.lstrip("/") if os.path.isabs(target) else path.parent / target
    if path != real_path and not path.parent.is_dir():
        raise HostError(f"{host_path} is a symbolic link to {path}, whose directory does not exist; nothing written.",
                        fix=f"create {path.parent}, or replace the link with a regular file")
    return path


def needs_sudo(path: Path) -> bool:
    """True when this process cannot write `path` (or create it) itself."""
    if os.geteuid() == 0:
        return False
    probe = path
    while not probe.exists():
        probe = probe.parent
    return not os.access(probe, os.W_OK)


def _owner_for_new(path: Path) -> tuple[int, int]:
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    st = probe.stat()
    return st.st_uid, st.st_gid


def apply(change: FileChange, *, now: float | None = None) -> Path | None:
    """Back up and atomically write `change`. Returns the backup path (None for a new file)."""
    path = follow_link(change.real_path, change.host_path)
    if path != change.real_path:
        from dataclasses import replace

        change = replace(change, real_path=path)
    if needs_sudo(path):
        return _apply_with_sudo(change, now)
    backup = None
    if path.exists():
        # Refuse to write over a file that changed since the diff was shown.
        if path.read_text() != change.old:
            raise HostError(f"{change.host_path} changed while dlbox was running; nothing written.",
                            fix="run the command again")
        backup = _write_backup(path, now)
        st = path.stat()
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        if change.private:
            os.chmod(backup, 0o600)
    else:
        mode, (uid, gid) = change.mode, _owner_for_new(path)
    if change.private:
        mode &= 0o600
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".dlbox-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(change.new)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if os.geteuid() == 0:
            os.chown(tmp, uid, gid)  # keep a user's ~/.docker/config.json theirs under sudo
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return backup


def sudo_argv(path: Path, tmp: str, mode: int, backup: Path | None, private: bool = False) -> list[list[str]]:
    """The commands that do `apply` as root: backup, install next to the file, rename."""
    staged = f"{path}.dlbox-tmp"
    cmds = [["sudo", "mkdir", "-p", str(path.parent)]]
    if backup is not None:
        cmds.append(["sudo", "cp", "-p", "--no-clobber", str(path), str(backup)])   # never over a backup
        if private:
            cmds.append(["sudo", "chmod", "go-rwx", str(backup)])
        cmds.append(["sudo", "cp", "-p", str(path), staged])  # carries mode and owner
        cmds.append(["sudo", "cp", "--no-preserve=mode,ownership", tmp, staged])
        if private:
            cmds.append(["sudo", "chmod", "go-rwx", staged])
    else:
        cmds.append(["sudo", "install", "-m", f"{mode & 0o600 if private else mode:o}", tmp, staged])
    cmds.append(["sudo", "mv", "-f", staged, str(path)])
    return cmds


def _apply_with_sudo(change: FileChange, now: float | None) -> Path | None:
    path = change.real_path
    backup = backup_name(path, now) if path.exists() else None
    fd, tmp = tempfile.mkstemp(suffix=".dlbox-tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(change.new)
        os.chmod(tmp, 0o644)
        for argv in sudo_argv(path, tmp, change.mode, backup, change.private):
            if subprocess.run(argv).returncode != 0:
                raise HostError(f"could not write {change.host_path}: `{' '.join(argv)}` failed",
                                fix="run again as root, or check sudo works (`sudo -v`)")
    finally:
        Path(tmp).unlink(missing_ok=True)
    return backup


# -- merging ----------------------------------------------------------------------------


def set_apt_option(text: str, key: str, value: str) -> str:
    """Set `key "value";` in an apt.conf text, keeping every other line and comment."""
    line = f'{key} "{value}";'
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]+\"[^\"]*\"[ \t]*;[ \t]*$", re.IGNORECASE | re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _m: line, text, count=1)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def set_ini_option(text: str, section: str, key: str, value: str) -> str:
    """Set `key = value` in `[section]` of an ini text (pip.conf), keeping comments."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
    key_re = re.compile(rf"^\s*{re.escape(key)}\s*[=:]")
    entry = f"{key} = {value}"
    start = next((i for i, ln in enumerate(lines)
                  if (m := header.match(ln)) and m["name"].strip() == section), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[{section}]", entry]
        return "\n".join(lines) + "\n"
    last = start
    for i in range(start + 1, len(lines)):
        if header.match(lines[i]):
            break
        if key_re.match(lines[i]):
            lines[i] = entry
            return "\n".join(lines) + "\n"
        if lines[i].strip():
            last = i
    lines.insert(last + 1, entry)
    return "\n".join(lines) + "\n"


def set_systemd_env(text: str, values: dict[str, str]) -> str:
    """Set `Environment="K=V"` lines under [Service] of a systemd drop-in, keeping the rest."""
    lines = text.splitlines()
    env_re = re.compile(r'^\s*Environment\s*=\s*"?(?P<k>[A-Za-z_][A-Za-z0-9_]*)=')
    todo = dict(values)
    for i, ln in enumerate(lines):
        m = env_re.match(ln)
        if m and m["k"] in todo:
            lines[i] = f'Environment="{m["k"]}={todo.pop(m["k"])}"'
    if todo:
        if not any(ln.strip() == "[Service]" for ln in lines):
            lines.append("[Service]")
        idx = max(i for i, ln in enumerate(lines) if ln.strip() == "[Service]")
        # insert after the last line of the [Service] section
        end = idx + 1
        while end < len(lines) and not lines[end].strip().startswith("["):
            end += 1
        lines[end:end] = [f'Environment="{k}={v}"' for k, v in todo.items()]
    return "\n".join(lines) + "\n"
