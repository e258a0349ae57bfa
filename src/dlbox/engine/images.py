"""Getting base images: local, pulled, or bootstrapped — and knowing which before planning."""

from __future__ import annotations

import subprocess
import sys

from dlbox.engine.bootstrap import bootstrap, can_bootstrap
from dlbox.engine.docker import Docker
from dlbox.errors import HostError

PULL_TIMEOUT = 3600.0


class Availability:
    """`image_available(ref)` for the planner: local, or pulled now. Remembers answers."""

    def __init__(self, docker: Docker, *, say=print, pull: bool = True) -> None:
        self.docker, self.say, self.pull = docker, say, pull
        self._known: dict[str, bool] = {}
        self.errors: dict[str, str] = {}

    def __call__(self, ref: str) -> bool:
        if ref not in self._known:
            self._known[ref] = self.docker.image_exists(ref) or (self.pull and self._pull(ref))
        return self._known[ref]

    def _pull(self, ref: str) -> bool:
        self.say(f"pulling {ref} …")
        # The engine's own progress (bytes per layer) goes to stderr: a base image is often GBs.
        proc = self.docker.popen(["pull", ref], stdout=sys.stderr.fileno(), stderr=subprocess.PIPE)
        try:
            _, stderr = proc.communicate(timeout=PULL_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stderr = f"no answer within {PULL_TIMEOUT:.0f} s".encode()
        if proc.returncode == 0:
            return True
        err = stderr.decode(errors="replace").strip()
        self.errors[ref] = err.splitlines()[-1] if err else "pull failed"
        self.say(f"cannot pull {ref}: {self.errors[ref]}")
        return False


def ensure_base(docker: Docker, ref: str, available: Availability, *, mirror: str | None, say=print) -> None:
    """Make sure REF is in the engine: local, pulled, or (Debian) bootstrapped from packages."""
    if available(ref):
        return
    if can_bootstrap(ref):
        say(f"{ref} is neither local nor pullable: making it from Debian packages instead")
        bootstrap(docker, ref, mirror=mirror, say=say)
        return
    raise HostError(
        f"the base image {ref} is not on this engine and cannot be pulled ({available.errors.get(ref, 'no registry')})",
        fix="check the name, set a registry mirror (`dlbox setup mirrors`), `docker load` it, or use base = \"auto\"",
    )
