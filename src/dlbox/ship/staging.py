"""The server's staging directory for `dlbox deploy`: one deploy at a time, and nothing trusted
that no longer matches its digest.

- Two deploys into one staging directory (the same image twice, or two images sharing layers)
  appended to the same `.part` files and removed each other's layers: both failed. A deploy now
  holds `flock STAGING.lock` (beside the directory, which stays
  only layers) on the server for its whole run, through an ssh session
  that lives as long as dlbox (when dlbox dies, the session ends and the lock goes with it).
- A staged `<diffid>.tar` left by an interrupted deploy was trusted by its size: one flipped
  byte made every later `docker load` fail with "invalid diffID", forever. It is now hashed on
  the server before it is reused, and removed (then sent again) when it does not match.
"""

from __future__ import annotations

import subprocess
import time
from typing import Callable

from dlbox import ssh
from dlbox.errors import HostError

Say = Callable[[str], None]
SHA256 = '( (openssl dgst -sha256 -r "$F" 2>/dev/null || sha256sum "$F") | cut -c1-64 )'


def lock_script(staging: str) -> str:
    """Hold the staging lock until stdin closes. Prints DLBOX:waiting, then DLBOX:locked
    (DLBOX:nolock where the server has no flock(1): then deploys are not serialised)."""
    return f"""D={staging}; mkdir -p "$D" || exit 70
if command -v flock >/dev/null 2>&1; then
  exec 9>>"${{D%/}}.lock"
  flock -n 9 || {{ echo DLBOX:waiting; flock 9; }}
  echo DLBOX:locked
else
  echo DLBOX:nolock
fi
cat >/dev/null
"""


def verify_script(staging: str, hex_id: str) -> str:
    """Hash a staged layer; remove it unless its sha256 is its diff ID."""
    return f"""F={staging}/{hex_id}.tar
h=$({SHA256})
if [ "$h" = {hex_id} ]; then echo DLBOX:ok; else rm -f "$F"; echo "DLBOX:bad $h"; fi
"""


def staged_layer_ok(target: ssh.Target, control_path: str, staging: str, hex_id: str) -> bool:
    """True when the staged `<hex_id>.tar` still matches its digest (else it is gone now)."""
    proc = ssh.run(target, verify_script(staging, hex_id), control_path=control_path, timeout=3600,
                   what="checking a staged layer")
    return "DLBOX:ok" in proc.stdout.decode(errors="replace")


class StagingLock:
    """`with StagingLock(...)`: this deploy owns the server's staging directory."""

    def __init__(self, target: ssh.Target, control_path: str, staging: str, say: Say):
        self.target, self.control_path, self.staging, self.say = target, control_path, staging, say
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "StagingLock":
        self.proc = ssh.popen(self.target, lock_script(self.staging), control_path=self.control_path,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while True:
            line = self._line()
            if line == "DLBOX:waiting":
                self.say(f"another deploy to {self.target} is running; waiting for it to finish")
                continue
            if line == "DLBOX:nolock":
                self.say(f"{self.target} has no flock(1): deploys to it are not serialised")
                return self
            if line == "DLBOX:locked":
                if time.monotonic() - t0 > 2:
                    self.say(f"the other deploy finished after {time.monotonic() - t0:.0f} s")
                return self
            self._fail()

    def _line(self) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        raw = self.proc.stdout.readline()
        return raw.decode(errors="replace").strip() if raw else None

    def _fail(self) -> None:
        assert self.proc is not None
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        err = ssh.explain_failure(self.target, rc, stderr)
        if err:
            raise err
        raise HostError(f"Could not take the staging lock on {self.target}: {stderr.strip() or f'exit {rc}'}",
                        fix="check the staging directory is writable (DLBOX_REMOTE_STAGING, default "
                            "~/.cache/dlbox/incoming)")

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()     # the server's `cat` ends, the shell exits, flock is released
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

