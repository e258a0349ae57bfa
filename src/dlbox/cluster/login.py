"""The one door to a cluster: a shell on its login node, here (`local`) or over ssh.

Every Slurm command dlbox runs goes through `Login.sh` as one shell command line built from
shlex-quoted words; remote ones go through the ssh choke point (`dlbox.ship.ssh`), so the
user's ssh config, agent and keys apply and a refused login is one line naming the host.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from typing import IO

from dlbox import ssh
from dlbox.cluster.config import Cluster, ClusterError


def q(words) -> str:
    """argv → one shell command line."""
    return " ".join(shlex.quote(str(w)) for w in words)


def dq(path: str) -> str:
    """A path for the login shell: double-quoted so `$HOME`/`$USER` expand there (config.py
    refuses quotes, backquotes and newlines in these paths)."""
    return f'"{path}"'


@dataclass(frozen=True)
class Login:
    cluster: Cluster

    @property
    def where(self) -> str:
        return "this machine" if self.cluster.is_local else self.cluster.login

    def sh(self, command: str, *, input: bytes | None = None, timeout: float | None = 120,
           what: str = "") -> subprocess.CompletedProcess:
        """Run COMMAND in a login shell of the login node; the command's exit status is the caller's."""
        if self.cluster.is_local:
            try:
                return subprocess.run(["bash", "-c", command], input=input, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ClusterError(f"{what or 'a command'} on {self.where} did not finish within {timeout:.0f} s",
                                   fix="check the cluster: sinfo; squeue") from None
        return ssh.run(ssh.Target.parse(self.cluster.login), command, input=input, timeout=timeout, what=what)

    def resolve(self, path: str) -> str:
        """PATH as the login node spells it ($HOME expanded), absolute."""
        out = self.check(f"echo {dq(path)}", what="reading the shared directory").strip()
        if not out.startswith("/"):
            raise ClusterError(f"the shared directory {path!r} is not absolute on {self.where} ({out!r})",
                               fix=f"dlbox cluster add {self.cluster.name} ... --shared-dir /absolute/path")
        return out

    def check(self, command: str, *, what: str, fix: str = "", **kw) -> str:
        """Run and return stdout; a failure is a ClusterError quoting the command's last words."""
        proc = self.sh(command, what=what, **kw)
        if proc.returncode != 0:
            raise ClusterError(f"{what} failed on {self.where}: {last_line(proc.stderr) or f'exit status {proc.returncode}'}",
                               fix=fix or None)
        return proc.stdout.decode(errors="replace")

    def write(self, path: str, data: bytes, *, mode: str = "600") -> None:
        """Write DATA to PATH on the login node's filesystem (the cluster's shared directory)."""
        d, p = dq(path.rsplit("/", 1)[0]), dq(path)
        cmd = f'mkdir -p {d} && umask 077 && cat > {p}.part && chmod {mode} {p}.part && mv -f {p}.part {p}'
        self.check(cmd, input=data, what=f"writing {path}")

    def stream_to(self, path: str, source: IO[bytes]) -> None:
        """Copy a large stream to PATH (the squashfs image), atomically: .part then rename."""
        d, p = dq(path.rsplit("/", 1)[0]), dq(path)
        cmd = f'mkdir -p {d} && cat > {p}.part && mv -f {p}.part {p}'
        if self.cluster.is_local:
            proc = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            proc = ssh.popen(ssh.Target.parse(self.cluster.login), cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            while chunk := source.read(1 << 20):
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass
        proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise ClusterError(f"copying the image to {path} on {self.where} failed: {last_line(err)}",
                               fix="check free space in the cluster's shared directory (df -h)")


def last_line(data: bytes | str) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
