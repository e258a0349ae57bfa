"""`dlbox deploy`: put a local image on a server's engine, sending only the layers it lacks.

Steps, each a short ssh session sharing one connection (ControlMaster):
1. probe — the server's Docker, the layer lists of all its images, what is already staged;
2. choose — the wire codec, from the measured link and this machine's zstd speed (ship/codec.py);
3. stream — the first missing layers, up to and including the biggest (a torch layer), cross as
   one tar stream that the server's `docker load` reads *as it arrives*, keeping a copy a
   dropped link resumes from (stream_end; ship/send.stream_load). `docker load` reads its whole
   input before it registers anything, so the biggest layer is registered right after its last
   byte instead of after it was staged, hashed and read again: 18.0 → 15.1 s for the example
   image on a 1 Gbit/s link (benchmarks/ship.py);
4. send — every other missing layer into `STAGING/<diffid>.tar.part`, appended from what is
   already there (so a dropped connection resumes), hashed on arrival and renamed to `.tar`
   only when its sha256 equals the diff ID (ship/send.py);
5. load — *while the later layers still cross*: as soon as a layer and all below it are on the
   server, a `docker load` registers them (as a partial image; the last load is the image with
   its tags). See ship/load.py.

Why a tar without the layers the server has loads: moby `image/tarexport/load.go` looks each
layer up by chain ID first and opens the file only when it is missing (checked on 20.10).
A full staging disk removes this deploy's partial files and leaves the server's images alone.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from dlbox import ssh
from dlbox.engine.docker import Docker
from dlbox.engine.paths import private_dir
from dlbox.errors import EngineError, HostError
from dlbox.ship import codec
from dlbox.ship.layers import FastReader, ImageFacts, chain_ids, image_facts, present_prefix
from dlbox.ship.load import Loader, LoadFailed, Stream, manifest_tar, stream_outcome
from dlbox.ship.progress import Meter
from dlbox.ship.remote import RemoteState, cleanup_script, parse_probe, probe_script, remote_docker_cmd, \
    remove_images_script, staging_dir, stream_load_script
from dlbox.ship.send import ConnectionLost, LayerSource, Stopped, Tally, last_line, send_layer, stream_layout, stream_load
from dlbox.ship.staging import StagingLock

Say = Callable[[str], None]
# Layers this big and up go straight into `docker load` (stream_end); smaller ones are staged first.
STREAM_ABOVE = 32 << 20
__all__ = ["ConnectionLost", "DeployResult", "deploy", "probe", "tags_for"]


@dataclass
class DeployResult:
    image: str
    target: str
    image_id: str
    image_bytes: int  # the image as a `docker save` stream would carry it (sum of layer tars)
    bytes_sent: int = 0
    layers_total: int = 0
    layers_present: int = 0
    layers_sent: int = 0
    resumed_bytes: int = 0  # already on the server from an interrupted deploy
    seconds: float = 0.0
    raw_bytes: int = 0  # layer bytes those wire bytes carried (bytes_sent is after compression)
    codec: str = "none"
    link: dict = field(default_factory=dict)  # the measured link and the codec estimates
    # seconds: probe, choose (codec), send, load (after the last byte was sent), and
    # loading_while_sending (docker load time that overlapped the send); loads: how many
    phases: dict = field(default_factory=dict)
    already_there: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def tags_for(image: ImageFacts, ref: str) -> list[str]:
    """The tag(s) the server should get: REF itself when it names a tag."""
    if ref in image.repo_tags:
        return [ref]
    if f"{ref}:latest" in image.repo_tags:
        return [f"{ref}:latest"]
    return list(image.repo_tags[:1])


def _control_path(target: ssh.Target) -> str:
    key = hashlib.sha256(f"{target}{os.getpid()}{time.time()}".encode()).hexdigest()[:10]
    return str(private_dir("ssh-control") / key)   # not /tmp: another user could pre-create it


def probe(target: ssh.Target, control_path: str | None = None) -> RemoteState:
    proc = ssh.run(target, probe_script(), timeout=120, control_path=control_path, what="probing the server")
    state = parse_probe(proc.stdout.decode(errors="replace"))
    if state.docker == "missing":
        raise HostError(f"Docker is not installed on {target}.",
                        fix=f"install it there: ssh {target}  then run  dlbox setup docker")
    if state.docker == "down":
        raise HostError(f"Docker is installed on {target} but its engine does not answer: {state.detail}",
                        fix=f"ssh {target}  then run  dlbox setup docker  (or start the docker service)")
    return state


def deploy(docker: Docker, ref: str, target_text: str, *, say: Say = lambda _m: None,
           meter: Meter | None = None) -> DeployResult:
    """Make `ref` (a local image) exist on the server's engine under the same tag. See module doc."""
    t0 = time.monotonic()
    meter = meter or Meter()
    target = ssh.Target.parse(target_text)
    image = image_facts(docker, ref)
    if image is None:
        raise EngineError(f"There is no image '{ref}' on this machine's engine.",
                          fix="dlbox build --bake   (or docker pull / docker images to find the name)")
    tags = tags_for(image, ref)
    cp = _control_path(target)
    # while ssh connects and probes: the layer tar sizes (read from tar-split records: ~1 s for a
    # 1 GB image) and the codec's sample of the biggest layer (0.4 s to reach its middle)
    ahead = ReadAhead(docker, image)
    reading = threading.Thread(target=ahead.run, daemon=True)
    reading.start()
    try:
        with StagingLock(target, cp, staging_dir(), say):     # one deploy at a time (ship/staging.py)
            return _deploy(docker, image, ref, tags, target, cp, say, meter, t0, reading, ahead)
    finally:
        ssh.close_master(target, cp)


@dataclass
class ReadAhead:
    """What deploy reads of the local layers while the server is probed."""

    docker: Docker
    image: ImageFacts
    sizes: list[int | None] = field(default_factory=list)
    sample: bytes | None = None     # codec.SAMPLE bytes from the middle of the biggest layer

    def run(self) -> None:
        fast = FastReader(self.docker)
        chains = chain_ids(self.image.diff_ids)
        self.sizes = [fast.tar_size(c) if fast.available else None for c in chains]
        known = [(n, c) for n, c in zip(self.sizes, chains) if n]
        if known:
            size, chain = max(known)
            try:
                self.sample = codec.sample_of(fast.stream(chain, spans=True), size)
            except (OSError, KeyError, ValueError):
                pass    # the codec takes its sample from the layer source instead


def _deploy(docker, image, ref, tags, target, cp, say, meter, t0, reading, ahead: ReadAhead) -> DeployResult:
    remote = probe(target, cp)
    t_probe = time.monotonic()
    reading.join()
    sizes_known = ahead.sizes
    if len(sizes_known) != len(image.diff_ids):    # the reading thread failed: sizes come from the source
        sizes_known[:] = [None] * len(image.diff_ids)
    result = DeployResult(image=ref, target=str(target), image_id=image.id,
                          image_bytes=sum(s or 0 for s in sizes_known) or image.size,
                          layers_total=len(image.diff_ids))
    if image.id in remote.images:
        for tag in tags:
            _remote_tag(target, cp, image.id, tag)
        result.already_there, result.layers_present = True, len(image.diff_ids)
        result.seconds = time.monotonic() - t0
        return result
    k = present_prefix(image.diff_ids, list(remote.images.values()))
    result.layers_present = k
    missing = list(dict.fromkeys(image.diff_ids[k:]))
    say(f"{target} has {k} of {len(image.diff_ids)} layers; sending {len(missing)}")
    source = LayerSource(docker, image, set(missing), say)
    if source.fast:     # the tar sizes read above (the tar-split records), not read twice
        source.sizes.update({d: n for d, n in zip(image.diff_ids, sizes_known) if n is not None})
    tally = Tally()
    try:
        choice = codec.choose_for_deploy(target, cp, source, missing, remote, say, sample=ahead.sample)
        result.codec, result.link = choice.name, choice.to_dict()
        t_choose = time.monotonic()
        loader = Loader(target, cp, image, source.config, tags, present=k, on_error=tally.stop.set).start()
        end = stream_end(image, k, missing, source, remote)
        streamed = list(dict.fromkeys(image.diff_ids[k:end]))
        try:
            stream = _stream(target, cp, source, loader, end, choice, tally, meter) if streamed else None
            for diff_id in missing:
                if diff_id not in streamed:
                    send_layer(target, cp, source, diff_id, remote, tally, meter, choice=choice)
                    loader.staged(diff_id)
            if stream is not None and stream.done.wait() and stream.rejected:
                say("the server's docker load refused the layers read from the engine's store: "
                    "sending them again from docker save")
                ssh.run(target, cleanup_script([d.split(":", 1)[1] for d in streamed]), control_path=cp, timeout=60)
                source.fall_back()
                for diff_id in streamed:
                    send_layer(target, cp, source, diff_id, remote, tally, meter, choice=choice)
                    loader.staged(diff_id)
        except Stopped:
            pass            # a load failed: loader.finish() raises its error below
        except LoadFailed as exc:   # the stream load failed before its last byte (a full data root)
            loader.cancel()
            _load_failed(target, cp, exc, missing, loader.partials)
        except BaseException as exc:
            loader.cancel()
            if isinstance(exc, Exception):
                loader.thread.join(60)   # a load in flight ends first (its layers count for a resume)
            raise
        finally:
            _tally(result, tally)
        t_send = time.monotonic()
        if not loader.done:
            say("loading on the server")
        try:
            loader.finish()
        except LoadFailed as exc:
            _load_failed(target, cp, exc, missing, loader.partials)
    finally:
        source.close()
    end = time.monotonic()
    overlap = sum(max(0.0, min(e, t_send) - s) for s, e, _n in loader.loads)
    result.phases = {"probe": round(t_probe - t0, 2), "choose": round(t_choose - t_probe, 2),
                     "send": round(t_send - t_choose, 2), "load": round(end - t_send, 2),
                     "loading_while_sending": round(overlap, 2), "loads": len(loader.loads)}
    result.seconds = end - t0
    return result


def stream_end(image: ImageFacts, k: int, missing: list[str], source: LayerSource, remote: RemoteState) -> int:
    """J when the layers [K, J) — the first missing ones, up to and including the biggest — go to
    the server as one stream load (ship/send.stream_load: `docker load` reads them as they
    arrive, so the biggest layer is registered moments after its last byte instead of after
    staging, hashing and re-reading it); K (none) when they are small, or part of them is staged
    from an earlier deploy (those resume)."""
    if not missing:
        return k
    sizes = {d: source.size(d) for d in missing}
    biggest = max(missing, key=sizes.get)
    end = max(i for i, d in enumerate(image.diff_ids) if d == biggest) + 1
    layers = list(dict.fromkeys(image.diff_ids[k:end]))
    staged = {name.split(".", 1)[0] for name in remote.staged}
    if (sum(sizes[d] for d in layers) < STREAM_ABOVE or any(d.split(":", 1)[1] in staged for d in layers)
            or set(layers) & set(image.diff_ids[end:])):   # a later load would need their staged files
        return k
    return end


def _stream(target, cp, source: LayerSource, loader: Loader, upto: int, choice: codec.Choice,
            tally: Tally, meter: Meter) -> Stream:
    """Layers [loader.loaded, UPTO) as one stream load, handed to the loader's thread."""
    layers = list(dict.fromkeys(loader.image.diff_ids[loader.loaded:upto]))
    facts, config, tags = loader.image_for(upto)
    final = upto == len(loader.image.diff_ids)
    script = stream_load_script(facts.id.split(":", 1)[1], stream_layout([(d, source.size(d)) for d in layers]),
                                compressed=choice.codec == "zstd", final_image=loader.image.id if final else None)
    started = time.monotonic()
    proc, stopped_early = stream_load(target, cp, source, layers, manifest_tar(facts, config, tags, suffix=".tar.part"),
                                      script, tally, meter, choice)
    stream = Stream(proc, upto, layers, started, facts.id)
    if stopped_early:          # the server stopped reading: why decides what comes next, here and now
        out, err = proc.communicate()
        stream.rejected = stream_outcome(target, proc.returncode, out + err, len(layers)) == "badbytes"
        stream.done.set()
        return stream
    loader.streaming(stream)   # its thread reads the outcome; a failure stops the sends that follow
    return stream


def _tally(result: DeployResult, tally: Tally) -> None:
    result.bytes_sent, result.raw_bytes = tally.bytes_sent, tally.raw_bytes
    result.resumed_bytes, result.layers_sent = tally.resumed_bytes, tally.layers_sent


def _load_failed(target, cp, exc: LoadFailed, missing: list[str], partials: list[str]) -> None:
    """What was staged and loaded so far is not trusted again: the next deploy sends it afresh."""
    ssh.run(target, cleanup_script([d.split(":", 1)[1] for d in missing]), control_path=cp, timeout=60)
    ssh.run(target, remove_images_script(partials), control_path=cp, timeout=300)
    if "no space left" in exc.detail.lower():
        raise HostError(f"{target} ran out of disk space while loading the image (its old images are untouched).",
                        fix="free space in the server's Docker data root (docker system prune there)") from None
    raise EngineError(f"docker load on {target} failed: {last_line(exc.detail)}", detail=exc.detail,
                      fix="run dlbox deploy again (the staged layers were removed)") from None


def _remote_tag(target, cp, image_id: str, tag: str) -> None:
    proc = ssh.run(target, f"{remote_docker_cmd()} tag {image_id} {shlex.quote(tag)}", control_path=cp, timeout=60)
    if proc.returncode != 0:
        raise EngineError(f"docker tag on {target} failed: {last_line(proc.stderr.decode(errors='replace'))}")
