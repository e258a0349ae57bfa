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
import subprocess
import tarfile
import threading
import time
from datetime import datetime, timezone

from dlbox import ssh
from dlbox.errors import EngineError
from dlbox.ship.layers import ImageFacts
from dlbox.ship.remote import PARTIAL_LABEL, load_script
from dlbox.ship.send import ConnectionLost, staging_write_failed


class LoadFailed(EngineError):
    """`docker load` on the server failed; `detail` holds its output."""


def stream_outcome(target, returncode: int | None, output: bytes, layers: int) -> str:
    """How a stream load (remote.stream_load_script) of LAYERS layers ended: "ok", or "badbytes"
    (docker load refused the bytes: the caller sends them again, read with `docker save`);
    raises what else its output says. No DLBOX line, or ssh's own status 255:
    the link dropped, and the next deploy resumes from the `.tar.part` copies."""
    text = output.decode(errors="replace")
    if "DLBOX:ok" in text and returncode == 0:
        return "ok"
    if "DLBOX:badbytes" in text:
        return "badbytes"
    if "DLBOX:write-failed" in text:
        raise staging_write_failed(target, text, f"loading {layers} layer(s)")
    if "DLBOX:load-failed" in text and returncode == 76:
        if "no space left" in text.lower():
            raise LoadFailed(f"docker load on {target} failed", detail=text)
        # every byte arrived and docker load refused them ("invalid tar header", …): the bytes
        # read from the store are suspect first; sent again from docker save and staged with a
        # hash, a failure that is the server's own is reported then
        return "badbytes"
    raise ConnectionLost(f"The connection to {target} was lost while loading {layers} layer(s).",
                         fix="run the same dlbox deploy again: it resumes from what arrived")


def manifest_tar(image: ImageFacts, config: bytes, tags: list[str], suffix: str = ".tar") -> bytes:
    """manifest.json + config in `docker save` layout; layers are named `<diffid hex><SUFFIX>`."""
    hex_id = image.id.split(":", 1)[1]
    manifest = [{"Config": f"{hex_id}.json", "RepoTags": tags,
                 "Layers": [f"{d.split(':', 1)[1]}{suffix}" for d in image.diff_ids]}]
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


@dataclasses.dataclass
class Stream:
    """A stream load (ship/send.stream_load) on its way: the ssh process loading layers [.., upto)."""

    proc: subprocess.Popen
    upto: int
    layers: list[str]       # the diff IDs it carries
    started: float
    image_id: str           # the (partial) image it loads
    rejected: bool = False  # docker load found bytes that are not the layer: send them again
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


class Loader:
    """A thread that loads what has arrived (see module doc). `staged(diff_id)` when a layer is
    on the server; `streaming(stream)` when a stream load of the first missing layers is under
    way (the thread waits for it first); `finish()` waits for the image to be loaded and raises
    what the loads raised."""

    def __init__(self, target: ssh.Target, cp: str, image: ImageFacts, config: bytes, tags: list[str],
                 present: int, on_error=lambda: None):
        self.target, self.cp, self.image, self.config, self.tags = target, cp, image, config, tags
        self.loaded = present           # layers [0, loaded) are in the server's engine
        self.ready: set[str] = set()    # diff IDs staged on the server
        self.partials: list[str] = []   # partial image IDs this deploy loaded
        self.loads: list[tuple[float, float, int]] = []   # (start, end, layers) of each docker load
        self.stream: Stream | None = None
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

    def streaming(self, stream: Stream) -> None:
        with self.cond:
            self.stream = stream
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()
        if self.stream is not None:
            self.stream.done.set()

    def finish(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error

    @property
    def done(self) -> bool:
        return self.loaded == len(self.image.diff_ids) and not self.thread.is_alive()

    def image_for(self, j: int) -> tuple[ImageFacts, bytes, list[str]]:
        """What a load of layers [0, J) registers: the image itself when J is all of them, else
        the partial image of the first J layers (untagged)."""
        if j == len(self.image.diff_ids):
            return self.image, self.config, self.tags
        facts, config = partial_image(self.image, self.config, j, self.created)
        return facts, config, []

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
                    while (not self.cancelled and self.stream is None
                           and (j := self._reach()) == self.loaded and j < n):
                        self.cond.wait()
                    if self.cancelled:
                        return
                    stream, self.stream = self.stream, None
                if stream is not None:
                    self._await(stream)
                    if self.loaded == n:
                        return
                    continue
                self._load(j)
                if j == n:
                    return
        except BaseException as exc:  # noqa: BLE001 — handed to the deploy's thread in finish()
            self.error = exc
            self.on_error()

    def _await(self, stream: Stream) -> None:
        """The stream load's outcome (its bytes are all written by now)."""
        try:
            out, err = stream.proc.communicate()
            if stream_outcome(self.target, stream.proc.returncode, out + err, len(stream.layers)) == "badbytes":
                stream.rejected = True
                return
            self.loads.append((stream.started, time.monotonic(), stream.upto - self.loaded))
            self.loaded = stream.upto
            if stream.image_id != self.image.id:
                self.partials.append(stream.image_id)
        finally:
            stream.done.set()

    def _load(self, j: int) -> None:
        ids = self.image.diff_ids
        final = j == len(ids)
        new = list(dict.fromkeys(ids[self.loaded:j]))          # their files go into this load
        later = set(ids[j:])
        drop = [d for d in new if d not in later]               # staged files no later load needs
        facts, config, tags = self.image_for(j)
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
