"""Loading on the server while later layers still cross the link.

`docker load` reads its whole input into a temp dir before it registers a single layer (moby
`image/tarexport/load.go`, 20.10), so one load at the end made a deploy take send + load. Now, as
soon as a layer and every layer below it are on the server, a `docker load` registers them as a
*partial image*: a config of our own whose rootfs is the layers so far, untagged, labelled
`org.dlbox.deploy-partial=<image ID>`. The engine keeps those layers because that image holds
them; the next load finds them by chain ID and opens only the new layer files (the same rule
that lets a deploy skip the layers a server already has). The last load is the image's own
config and tags, and removes the partial images.

A deploy that stops (dropped link) leaves its partial images: the next run counts their layers as
present, like any image's. Those no deploy finished are pruned after a day (remote.load_script).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import threading
import time
from datetime import datetime, timezone

from dlbox import ssh
from dlbox.errors import EngineError
from dlbox.ship.layers import ImageFacts
from dlbox.ship.remote import PARTIAL_LABEL, load_script


class LoadFailed(EngineError):
    """`docker load` on the server failed; `detail` holds its output."""


def manifest_tar(image: ImageFacts, config: bytes, tags: list[str]) -> bytes:
    """manifest.json + config in `docker save` layout; layers are named `<diffid hex>.tar`."""
    hex_id = image.id.split(":", 1)[1]
    manifest = [{"Config": f"{hex_id}.json", "RepoTags": tags,
                 "Layers": [f"{d.split(':', 1)[1]}.tar" for d in image.diff_ids]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode()), (f"{hex_id}.json", config)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def partial_image(image: ImageFacts, config: bytes, count: int, created: datetime) -> tuple[ImageFacts, bytes]:
    """The partial image of IMAGE's first COUNT layers: (its facts, its config bytes)."""
    real = json.loads(config)
    partial = {"architecture": real.get("architecture", "amd64"), "os": real.get("os", "linux"),
               "created": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "config": {"Labels": {PARTIAL_LABEL: image.id}},
               "rootfs": {"type": "layers", "diff_ids": list(image.diff_ids[:count])}}
    data = json.dumps(partial, separators=(",", ":")).encode()
    facts = dataclasses.replace(image, id="sha256:" + hashlib.sha256(data).hexdigest(),
                                diff_ids=image.diff_ids[:count], repo_tags=())
    return facts, data


class Loader:
    """A thread that loads what has arrived (see module doc). `staged(diff_id)` when a layer is
    on the server; `finish()` waits for the image to be loaded and raises what the loads raised."""

    def __init__(self, target: ssh.Target, cp: str, image: ImageFacts, config: bytes, tags: list[str],
                 present: int, on_error=lambda: None):
        self.target, self.cp, self.image, self.config, self.tags = target, cp, image, config, tags
        self.loaded = present           # layers [0, loaded) are in the server's engine
        self.ready: set[str] = set()    # diff IDs staged on the server
        self.partials: list[str] = []   # partial image IDs this deploy loaded
        self.loads: list[tuple[float, float, int]] = []   # (start, end, layers) of each docker load
        self.error: BaseException | None = None
        self.on_error = on_error
        self.cancelled = False
        self.created = datetime.now(timezone.utc)
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="dlbox-deploy-load", daemon=True)

    def start(self) -> "Loader":
        self.thread.start()
        return self

    def staged(self, diff_id: str) -> None:
        with self.cond:
            self.ready.add(diff_id)
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def finish(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error

    @property
    def done(self) -> bool:
        return self.loaded == len(self.image.diff_ids) and not self.thread.is_alive()

    def _reach(self) -> int:
        """Layers [0, j) could be loaded now."""
        ids, j = self.image.diff_ids, self.loaded
        while j < len(ids) and ids[j] in self.ready:
            j += 1
        return j

    def _run(self) -> None:
        n = len(self.image.diff_ids)
        try:
            while True:
                with self.cond:
                    while not self.cancelled and (j := self._reach()) == self.loaded and j < n:
                        self.cond.wait()
                    if self.cancelled:
                        return
                self._load(j)
                if j == n:
                    return
        except BaseException as exc:  # noqa: BLE001 — handed to the deploy's thread in finish()
            self.error = exc
            self.on_error()

    def _load(self, j: int) -> None:
        ids = self.image.diff_ids
        final = j == len(ids)
        new = list(dict.fromkeys(ids[self.loaded:j]))          # their files go into this load
        later = set(ids[j:])
        drop = [d for d in new if d not in later]               # staged files no later load needs
        if final:
            facts, config, tags = self.image, self.config, self.tags
        else:
            facts, config = partial_image(self.image, self.config, j, self.created)
            tags = []
        hexes = [d.split(":", 1)[1] for d in new]
        script = load_script(facts.id.split(":", 1)[1][:16], hexes, [d.split(":", 1)[1] for d in drop],
                             final_image=self.image.id if final else None)
        t0 = time.monotonic()
        proc = ssh.run(self.target, script, input=manifest_tar(facts, config, tags), timeout=3600,
                       control_path=self.cp, what="docker load")
        self.loads.append((t0, time.monotonic(), j - self.loaded))
        if proc.returncode != 0:
            text = (proc.stderr + proc.stdout).decode(errors="replace")
            raise LoadFailed(f"docker load on {self.target} failed", detail=text)
        self.loaded = j
        if not final:
            self.partials.append(facts.id)
