"""What a build may send of the project: the one place that decides it (bake, deploy, any build
that copies code). `select_context(root)` lists the files; `write_tar` streams exactly those.

Left out, in order:
1. what git ignores (`git ls-files --cached --others --exclude-standard`: every .gitignore, the
   repo's info/exclude and the user's global excludes); without git, the root .gitignore;
2. what the project's .dockerignore excludes (Docker's rules: patterns anchored at the context
   root, `**`, `!` exceptions; matched with pathspec);
3. dlbox's own leave-outs (.git, virtualenvs, caches, .dlbox);
4. secrets, whatever 1-3 say: .env files, private keys (by name or by a PEM "PRIVATE KEY"
   header), cloud/registry/SSH credential files. These are never sent and always named.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pathspec

WARN_BYTES = 500 * 1024 * 1024
DLBOX_IGNORE = (".git/", ".hg/", ".svn/", ".venv/", "venv/", "**/__pycache__/", "**/*.pyc", ".ipynb_checkpoints/",
                ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".tox/", ".dlbox/")

SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa", "id_dsa",
                "id_ecdsa", "id_ed25519", "id_*_sk", ".netrc", "_netrc", ".pypirc", ".git-credentials", ".npmrc",
                ".htpasswd", ".dockercfg", "credentials", "credentials.json", "client_secret*.json",
                "service-account*.json", "*serviceaccount*.json", "secrets.toml", "secrets.yaml", "secrets.yml",
                "kubeconfig", "*.kubeconfig", "token", ".vault-token", "*.ovpn")
NOT_SECRET = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults")
SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", "gcloud", ".huggingface", ".terraform.d")
_PEM_HEAD = 256


@dataclass(frozen=True)
class Context:
    root: Path
    files: tuple[str, ...]                    # posix paths relative to root, sorted
    bytes: int
    ignored: int                              # left out by .gitignore/.dockerignore/dlbox's list
    secrets: tuple[tuple[str, str], ...]      # (path, why): never sent
    rules: tuple[str, ...]                    # which ignore sources applied

    @property
    def too_big(self) -> bool:
        return self.bytes > WARN_BYTES

    def summary(self) -> str:
        text = f"sent {len(self.files)} files, {_size(self.bytes)}"
        if self.ignored:
            text += f"; {self.ignored} left out by {', '.join(self.rules)}"
        if self.secrets:
            text += f"; never sent (secrets): {', '.join(p for p, _ in self.secrets)}"
        return text

    def warnings(self) -> list[str]:
        out = []
        if self.too_big:
            biggest = sorted(self.files, key=lambda f: -_lsize(self.root / f))[:3]
            out.append(f"the build context is {_size(self.bytes)} (over {_size(WARN_BYTES)}); biggest: "
                       f"{', '.join(biggest)} — add data and checkpoints to .dockerignore")
        return out

    def write_tar(self, stream: BinaryIO, extra: dict[str, bytes] | None = None) -> None:
        """A tar of exactly `files` (+ generated `extra` files, first), owned by root, links kept as
        links. GNU format with whole-second times: the docker CLI recognises a tar on stdin from its
        first header alone, and a pax header first makes it read the stream as a Dockerfile."""
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for rel, data in (extra or {}).items():
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, _Bytes(data))
            for rel in self.files:
                if rel in (extra or {}):
                    continue
                info = tar.gettarinfo(str(self.root / rel), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = int(info.mtime)
                if info.isreg():
                    with open(self.root / rel, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos:] if n < 0 else self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _lsize(p: Path) -> int:
    try:
        return p.lstat().st_size
    except OSError:
        return 0


def select_context(root: Path, *, extra_ignore: tuple[str, ...] = ()) -> Context:
    root = root.resolve()
    candidates, ignored, rules = _candidates(root)
    docker = root / ".dockerignore"
    patterns = list(DLBOX_IGNORE) + list(extra_ignore)
    if docker.is_file():
        patterns += [_anchor(ln) for ln in docker.read_text(errors="replace").splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#")]
        rules.append(".dockerignore")
    spec = pathspec.PathSpec.from_lines("gitignore", patterns)
    files, secrets, size = [], [], 0
    for rel in candidates:
        if spec.match_file(rel):
            ignored += 1
            continue
        why = secret_reason(root, rel)
        if why:
            secrets.append((rel, why))
            continue
        files.append(rel)
        size += _lsize(root / rel)
    return Context(root, tuple(sorted(files)), size, ignored, tuple(secrets), tuple(rules + ["dlbox's defaults"]))


def _anchor(line: str) -> str:
    """A .dockerignore pattern as a root-anchored gitignore-style pattern (Docker matches from the root)."""
    neg = line.strip().startswith("!")
    pat = line.strip().lstrip("!").strip()
    pat = pat.removeprefix("./").lstrip("/")
    return ("!" if neg else "") + ("/" + pat if not pat.startswith("**") else pat)


def _candidates(root: Path) -> tuple[list[str], int, list[str]]:
    """(every file git would keep: tracked, or untracked and not ignored; how many paths git
    ignores; the rule names). Without git, a walk that honours the root .gitignore."""
    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None

    inside = git("rev-parse", "--is-inside-work-tree")
    if inside is not None and inside.returncode == 0 and inside.stdout.strip() == b"true":
        kept = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        dropped = git("ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory")
        if kept is not None and kept.returncode == 0:
            names = sorted({n for n in kept.stdout.decode(errors="surrogateescape").split("\0") if n})
            n_ignored = len([n for n in (dropped.stdout if dropped else b"").split(b"\0") if n])
            return [n for n in names if os.path.lexists(root / n)], n_ignored, [".gitignore"]
    gi = root / ".gitignore"
    spec = pathspec.PathSpec.from_lines("gitignore", gi.read_text(errors="replace").splitlines()) \
        if gi.is_file() else None
    every = _walk(root, None) if spec else []
    kept_files = _walk(root, spec)
    return kept_files, max(0, len(every) - len(kept_files)), [".gitignore"] if spec else []


def _walk(root: Path, spec: pathspec.PathSpec | None) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for d in dirnames:
            full = Path(dirpath) / d
            if full.is_symlink():
                filenames.append(d)     # a link to a directory is sent as a link
            elif d != ".git" and not (spec and spec.match_file(rel_dir + d + "/")):
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if not (spec and spec.match_file(rel_dir + f)):
                out.append(rel_dir + f)
    return sorted(out)


def secret_reason(root: Path, rel: str) -> str | None:
    """Why `rel` must never go into an image, or None."""
    parts = rel.split("/")
    name = parts[-1]
    for d in parts[:-1]:
        if d in SECRET_DIRS:
            return f"inside {d}/ (credentials)"
    if name not in NOT_SECRET and not name.endswith(".pub"):
        for pat in SECRET_NAMES:
            if fnmatch.fnmatchcase(name, pat):
                return f"matches {pat}"
    p = root / rel
    try:
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                head = f.read(_PEM_HEAD)
            if b"-----BEGIN" in head and b"PRIVATE KEY" in head:
                return "a PEM private key"
    except OSError:
        return None
    return None
