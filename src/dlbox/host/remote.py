"""A server is a root whose commands ran over SSH.

One ssh round trip runs the same probes a live `SysRoot` runs (`sysroot.COMMANDS`, the hard
limits, the user, HOME, the kernel release, CDI specs) on the server and brings them back as a
saved root (a tar of `.dlbox/commands/*` and the few files the facts read). `observe` then
reads it exactly as it reads `doctor --root DIR`: one set of probes for every kind of host.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import tempfile
from pathlib import Path

from dlbox import ssh
from dlbox.errors import HostError
from dlbox.host import Host
from dlbox.host.observe import observe
from dlbox.host.sysroot import COMMANDS, SysRoot

FILES = ("/proc/sys/kernel/osrelease", "/proc/version")
CDI_GLOBS = ("/etc/cdi/*.yaml", "/etc/cdi/*.json", "/var/run/cdi/*.yaml", "/var/run/cdi/*.json")


def capture_script() -> str:
    """POSIX sh: the probes into a temporary root, written to stdout as a tar."""
    lines = [
        "set -u",
        'D=$(mktemp -d) || exit 1',
        'C="$D/.dlbox/commands"',
        'mkdir -p "$C"',
        'save() { n=$1; shift; command -v "$1" >/dev/null 2>&1 || return 0; '
        '"$@" >"$C/$n.txt" 2>"$C/$n.err"; echo $? >"$C/$n.rc"; }',
    ]
    lines += [f"save {name} {shlex.join(argv)}" for name, argv in COMMANDS.items()]
    lines += [
        'ulimit -Hl >"$C/ulimit-l.txt" 2>/dev/null',
        'ulimit -Hs >"$C/ulimit-s.txt" 2>/dev/null',
        'echo "$(id -u) $(id -g)" >"$C/id.txt"',
        # HOME as JSON: only a backslash or a double quote needs escaping in a path
        'printf \'{"HOME": "%s"}\\n\' "$(printf %s "${HOME:-}" | sed \'s/[\\\\"]/\\\\&/g\')" >"$D/.dlbox/env.json"',
    ]
    for f in FILES:
        lines.append(f'mkdir -p "$D{Path(f).parent}" && cat {f} >"$D{f}" 2>/dev/null')
    for g in CDI_GLOBS:
        d = str(Path(g).parent)
        lines.append(f'for f in {g}; do [ -f "$f" ] && mkdir -p "$D{d}" && cp "$f" "$D{d}/"; done')
    lines += ['tar -C "$D" -cf - .', 'rc=$?', 'rm -rf "$D"', "exit $rc"]
    return "\n".join(lines) + "\n"


def unpack(data: bytes, dest: Path) -> None:
    """Unpack a capture: regular files and directories only, every path inside DEST (the
    server's tar is not trusted to be well-formed; tarfile's `filter=` is not in every 3.11)."""
    base = dest.resolve()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar.getmembers():
            target = (base / m.name).resolve()
            if not (target == base or base in target.parents) or not (m.isfile() or m.isdir()):
                raise HostError(f"the server's probe output holds an unexpected entry {m.name!r}",
                                fix="run `dlbox plan --host` again; report it if it repeats")
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(m).read())


def capture(target: str, dest: Path) -> None:
    """Run the probes on TARGET and unpack them under DEST (a saved root)."""
    t = ssh.Target.parse(target)
    proc = ssh.run(t, capture_script(), timeout=120, what="probing the server")
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise HostError(f"Probing {t} failed: {last[0]}", fix=f"check that `ssh {t} sh` works and /tmp is writable there")
    unpack(proc.stdout, dest)


def observe_server(target: str, engine_info: dict) -> Host:
    """The server's facts over SSH: driver, limits, user and HOME. `engine_info` is its
    `docker info`, fetched by the caller through the engine room."""
    with tempfile.TemporaryDirectory(prefix="dlbox-server-") as d:
        capture(target, Path(d))
        return observe(SysRoot(Path(d)), engine_info=engine_info, server=target)
