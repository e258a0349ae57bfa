"""`dlbox deploy`: put a local image on a server's engine, sending only the layers it lacks.

Steps, each a short ssh session sharing one connection (ControlMaster):
1. probe — the server's Docker, the layer lists of all its images, what is already staged;
2. send — each missing layer into `STAGING/<diffid>.tar.part`, appended from what is already
   there (so a dropped connection resumes), hashed on arrival and renamed to `.tar` only when
   its sha256 equals the diff ID;
3. load — a `docker save`-format tar (manifest.json, config, the staged layer files) into
   `docker load`, which tags the image the same.

Why a tar without the layers the server has loads: moby `image/tarexport/load.go` looks each
layer up by chain ID first and opens the file only when it is missing (checked on 20.10).
A full staging disk removes this deploy's partial files and leaves the server's images alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from platformdirs import user_cache_dir

from dlbox import ssh
from dlbox.engine.docker import Docker
from dlbox.engine.paths import private_dir
from dlbox.errors import EngineError, HostError
from dlbox.ship import codec
from dlbox.ship.layers import (
    CHUNK,
    FastReader,
    ImageFacts,
    chain_ids,
    config_bytes,
    image_facts,
    present_prefix,
    saved_layers,
)
from dlbox.ship.progress import Meter
from dlbox.ship.staging import StagingLock, staged_layer_ok

Say = Callable[[str], None]


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
    phases: dict = field(default_factory=dict)  # seconds: probe, choose (codec), send, load
    already_there: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RemoteState:
    docker: str  # "ok", "missing", "down"
    detail: str
    images: dict[str, list[str]]  # image ID → diff IDs
    staged: dict[str, int]  # file name in staging → size
    codecs: tuple[str, ...] = ()  # decompressors the server has


def staging_dir() -> str:
    """The server-side directory for incoming layers, as a shell word ($HOME expands there)."""
    custom = os.environ.get("DLBOX_REMOTE_STAGING")
    return shlex.quote(custom) if custom else '"$HOME/.cache/dlbox/incoming"'


def remote_docker_cmd() -> str:
    return shlex.quote(os.environ.get("DLBOX_REMOTE_DOCKER", "docker"))


def probe_script() -> str:
    d, dk = staging_dir(), remote_docker_cmd()
    return f"""D={d}; DK={dk}
if ! command -v "$DK" >/dev/null 2>&1; then echo "DLBOX:docker missing"; exit 0; fi
if ! ids=$("$DK" image ls -aq --no-trunc 2>&1); then echo "DLBOX:docker down"; echo "$ids" | tail -n 1; exit 0; fi
echo "DLBOX:docker ok"
echo "DLBOX:codecs $(command -v zstd >/dev/null 2>&1 && echo zstd)"
ids=$(echo "$ids" | sort -u)
[ -n "$ids" ] && "$DK" image inspect --format '{{{{.Id}}}} {{{{json .RootFS.Layers}}}}' $ids
echo "DLBOX:staged"
[ -d "$D" ] && for f in "$D"/*.part "$D"/*.tar; do [ -f "$f" ] && echo "$(wc -c < "$f") ${{f##*/}}"; done
exit 0
"""


def parse_probe(out: str) -> RemoteState:
    lines = out.splitlines()
    state, detail, images, staged, section, codecs = "missing", "", {}, {}, "head", ()
    for ln in lines:
        if ln.startswith("DLBOX:codecs"):
            codecs = tuple(ln.split()[1:])
        elif ln.startswith("DLBOX:docker "):
            parts = ln.split(" ", 2)
            state = parts[1]
            detail = parts[2] if len(parts) > 2 else ""
            section = "images"
        elif ln == "DLBOX:staged":
            section = "staged"
        elif section == "images" and ln.startswith("sha256:"):
            image_id, _, layers = ln.partition(" ")
            images[image_id] = json.loads(layers or "[]") or []
        elif section == "images" and state == "down" and ln.strip():
            detail = ln.strip()
        elif section == "staged" and ln.strip():
            size, _, name = ln.strip().partition(" ")
            staged[name] = int(size)
    return RemoteState(state, detail, images, staged, codecs)


def send_script(hex_id: str, size: int, compressed: bool = False, fresh: bool = False) -> str:
    """Append stdin (zstd-compressed when COMPRESSED) to the staged part file, then check it.

    A truncated zstd stream (the link dropped) keeps every whole block that arrived. FRESH (no
    earlier part): the sha256 is taken while the bytes arrive, not by reading the file again.
    A write error that says the disk is full is reported as DLBOX:write-failed."""
    d = staging_dir()
    decode = "zstd -dc" if compressed else "cat"
    sink = '| tee -a "$P" | $HS > "$H"' if fresh else '>> "$P"'
    return f"""D={d}; P="$D/{hex_id}.tar.part"; H="$P.sha256"
mkdir -p "$D" || exit 70
if command -v sha256sum >/dev/null 2>&1; then HS=sha256sum; else HS="openssl dgst -sha256 -r"; fi
rm -f "$H"
err=$( {{ {decode} {sink}; }} 2>&1 )
case "$err" in *"No space"*|*"quota"*|*"Quota"*|*"Permission denied"*|*"Read-only"*)
  rm -f "$H"; echo "DLBOX:write-failed $err"; exit 71;; esac
s=$(wc -c < "$P")
if [ "$s" -lt {size} ]; then rm -f "$H"; echo "DLBOX:short $s"; exit 72; fi
if [ "$s" -gt {size} ]; then rm -f "$P" "$H"; echo "DLBOX:long $s"; exit 73; fi
if [ -s "$H" ]; then h=$(cut -c1-64 "$H"); else h=$($HS < "$P" | cut -c1-64); fi
rm -f "$H"
if [ "$h" = {hex_id} ]; then mv -f "$P" "$D/{hex_id}.tar"; echo DLBOX:ok; else rm -f "$P"; echo "DLBOX:badhash $h"; exit 74; fi
"""


def load_script(image_hex: str, blobs: list[str]) -> str:
    d, dk = staging_dir(), remote_docker_cmd()
    links = " && ".join(f'(ln -f "$D/{b}.tar" {b}.tar 2>/dev/null || cp "$D/{b}.tar" {b}.tar)' for b in blobs) or "true"
    rm = " ".join(f'"$D/{b}.tar"' for b in blobs)
    return f"""D={d}; DK={dk}; W="$D/load-{image_hex[:16]}"
rm -rf "$W" && mkdir -p "$W" && cd "$W" && tar -xf - && {links} || exit 75
tar -cf - . | "$DK" load; rc=$?
cd / && rm -rf "$W"
[ $rc -eq 0 ] && rm -f {rm}
exit $rc
"""


def cleanup_script(blobs: list[str]) -> str:
    d = staging_dir()
    files = " ".join(f'"$D/{b}.tar.part" "$D/{b}.tar"' for b in blobs)
    return f"D={d}; rm -f {files}; exit 0"


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


def tags_for(image: ImageFacts, ref: str) -> list[str]:
    """The tag(s) the server should get: REF itself when it names a tag."""
    if ref in image.repo_tags:
        return [ref]
    if f"{ref}:latest" in image.repo_tags:
        return [f"{ref}:latest"]
    return list(image.repo_tags[:1])


class LayerSource:
    """Bytes of the layers to send: from the engine's store, or from one `docker save`."""

    def __init__(self, docker: Docker, image: ImageFacts, wanted: set[str], say: Say):
        self.docker, self.image, self.wanted, self.say = docker, image, wanted, say
        self.fast = FastReader(docker)
        self.chains = dict(zip(image.diff_ids, chain_ids(image.diff_ids)))
        self.files: dict[str, Path] = {}
        self.config: bytes | None = config_bytes(docker, image.id) if self.fast.available else None
        self.tmp: tempfile.TemporaryDirectory | None = None
        if not self.fast.available or self.config is None:
            self._save()

    def _save(self) -> None:
        if self.tmp is None:
            cache = Path(user_cache_dir("dlbox")) / "layers"
            cache.mkdir(parents=True, exist_ok=True)
            self.tmp = tempfile.TemporaryDirectory(dir=cache)
        self.say(f"reading {len(self.wanted)} layer(s) with docker save")
        self.files, self.config = saved_layers(self.docker, self.image, set(self.wanted), Path(self.tmp.name))
        self.fast = None

    def size(self, diff_id: str) -> int:
        if self.fast:
            n = self.fast.tar_size(self.chains[diff_id])
            if n is not None:
                return n
            self._save()
        return self.files[diff_id].stat().st_size

    def stream(self, diff_id: str) -> Iterator[bytes]:
        if self.fast:
            return self.fast.stream(self.chains[diff_id])
        return _file_chunks(self.files[diff_id])

    def fall_back(self) -> None:
        """The fast path produced wrong bytes (or could not read): use docker save from now on."""
        if self.fast:
            self._save()

    def close(self) -> None:
        if self.tmp:
            self.tmp.cleanup()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


class ConnectionLost(HostError):
    pass


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
    try:
        with StagingLock(target, cp, staging_dir(), say):     # one deploy at a time (ship/staging.py)
            return _deploy(docker, image, ref, tags, target, cp, say, meter, t0)
    finally:
        ssh.close_master(target, cp)


def _deploy(docker, image, ref, tags, target, cp, say, meter, t0) -> DeployResult:
    remote = probe(target, cp)
    t_probe = time.monotonic()
    fast_sizes = FastReader(docker)
    chains = chain_ids(image.diff_ids)
    sizes_known = [fast_sizes.tar_size(c) if fast_sizes.available else None for c in chains]
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
    blobs = [d.split(":", 1)[1] for d in missing]
    try:
        choice = _choose_codec(target, cp, source, missing, remote, say)
        result.codec, result.link = choice.name, choice.to_dict()
        t_choose = time.monotonic()
        for diff_id in missing:
            _send_layer(target, cp, source, diff_id, remote, result, meter, choice=choice)
        t_send = time.monotonic()
        say("loading on the server")
        proc = ssh.run(target, load_script(image.id.split(":", 1)[1], blobs),
                       input=manifest_tar(image, source.config, tags), timeout=3600, control_path=cp,
                       what="docker load")
        if proc.returncode != 0:
            text = (proc.stderr + proc.stdout).decode(errors="replace")
            if "no space left" in text.lower():
                ssh.run(target, cleanup_script(blobs), control_path=cp, timeout=60)
                raise HostError(f"{target} ran out of disk space while loading the image (its old images are untouched).",
                                fix="free space in the server's Docker data root (docker system prune there)")
            # what was staged is not trusted again: the next deploy sends it afresh
            ssh.run(target, cleanup_script(blobs), control_path=cp, timeout=60)
            raise EngineError(f"docker load on {target} failed: {_last_line(text)}", detail=text,
                              fix="run dlbox deploy again (the staged layers were removed)")
    finally:
        source.close()
    end = time.monotonic()
    result.phases = {"probe": round(t_probe - t0, 2), "choose": round(t_choose - t_probe, 2),
                     "send": round(t_send - t_choose, 2), "load": round(end - t_send, 2)}
    result.seconds = end - t0
    return result


MEASURE_ABOVE = 64 << 20  # below this many bytes to send, measuring costs more than it saves


def _choose_codec(target, cp, source: "LayerSource", missing: list[str], remote: RemoteState,
                  say: Say) -> codec.Choice:
    """zstd at the level the measured link and CPU favour (see ship.codec); DLBOX_SHIP_CODEC=
    none | zstd:LEVEL | auto overrides (benchmarks compare them)."""
    forced = os.environ.get("DLBOX_SHIP_CODEC", "auto").strip().lower()
    if forced == "none" or "zstd" not in remote.codecs or codec.zstd_binary() is None:
        return codec.Choice("none")
    if forced.startswith("zstd:") and forced[5:].isdigit():
        return codec.Choice("zstd", int(forced[5:]))
    sizes = {d: source.size(d) for d in missing}
    if sum(sizes.values()) < MEASURE_ABOVE:
        return codec.Choice("zstd", 3)
    link = _measure_link(target, cp)
    biggest = max(sizes, key=sizes.get)
    sample = codec.take(source.stream(biggest), codec.SAMPLE)
    levels = codec.LEVELS + ((codec.SLOW_LINK_LEVEL,) if link < codec.SLOW_LINK_BPS else ())
    measured = {lv: codec.measure_level(sample, lv) for lv in levels}
    choice = codec.choose(link, measured)
    say(f"link {link / 1e6:.1f} MB/s; sending layers with {choice.name}")
    return choice


def _measure_link(target, cp) -> float:
    """Bytes/s to the server over this deploy's ssh connection (incompressible bytes, the cost
    of an empty session subtracted)."""
    t0 = time.monotonic()
    ssh.run(target, "cat > /dev/null", input=b"", control_path=cp, timeout=60)
    empty = time.monotonic() - t0
    n = codec.PROBE_BYTES
    while True:
        data = os.urandom(n)
        t0 = time.monotonic()
        ssh.run(target, "cat > /dev/null", input=data, control_path=cp, timeout=120)
        dt = time.monotonic() - t0 - empty
        if dt > 0.25 or n >= 64 << 20:
            return n / max(dt, 1e-3)
        n *= 4


def _remote_tag(target, cp, image_id: str, tag: str) -> None:
    proc = ssh.run(target, f"{remote_docker_cmd()} tag {image_id} {shlex.quote(tag)}", control_path=cp, timeout=60)
    if proc.returncode != 0:
        raise EngineError(f"docker tag on {target} failed: {_last_line(proc.stderr.decode(errors='replace'))}")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no error text"


def _raw_from(chunks: Iterator[bytes], offset: int, h) -> Iterator[bytes]:
    """The layer's bytes from OFFSET on, hashing all of them (the diff ID covers the whole layer)."""
    pos = 0
    for chunk in chunks:
        h.update(chunk)
        end = pos + len(chunk)
        if end > offset:
            yield chunk[max(0, offset - pos):] if pos < offset else chunk
        pos = end


def _send_layer(target, cp, source: LayerSource, diff_id: str, remote: RemoteState, result: DeployResult,
                meter: Meter, retry: bool = True, choice: codec.Choice | None = None) -> None:
    choice = choice or codec.Choice("none")
    hex_id = diff_id.split(":", 1)[1]
    size = source.size(diff_id)
    if remote.staged.get(f"{hex_id}.tar") == size:
        if staged_layer_ok(target, cp, staging_dir(), hex_id):
            result.resumed_bytes += size  # left by an earlier, interrupted deploy; still matches
            return
        remote.staged.pop(f"{hex_id}.tar")  # damaged since: removed on the server, sent again
    offset = remote.staged.get(f"{hex_id}.tar.part", 0)
    if offset > size:
        offset = 0  # cannot be ours: the send script truncates nothing, so restart the file
        ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
    result.resumed_bytes += offset
    zstd = choice.codec == "zstd"
    meter.start(f"layer {hex_id[:12]}" + (f" ({choice.name})" if zstd else ""), size)
    meter.advance(offset)
    proc = ssh.popen(target, send_script(hex_id, size, compressed=zstd, fresh=offset == 0), control_path=cp,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h, dropped = hashlib.sha256(), False
    raw = _raw_from(source.stream(diff_id), offset, h)
    if zstd:
        wire = codec.compressed(raw, choice.level, on_raw=lambda n: (meter.advance(n), _count_raw(result, n)))
    else:
        wire = raw
    try:
        for part in wire:
            if not zstd:
                meter.advance(len(part))
                result.raw_bytes += len(part)
            proc.stdin.write(part)
            result.bytes_sent += len(part)
        proc.stdin.close()
    except BrokenPipeError:  # the remote end stopped reading: its output says why
        proc.stdin = None
        dropped = True
    except OSError as exc:  # the store changed under us: start over with docker save
        proc.kill()
        proc.wait()
        if retry and source.fast:
            ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
            remote.staged.pop(f"{hex_id}.tar.part", None)
            source.fall_back()
            return _send_layer(target, cp, source, diff_id, remote, result, meter, retry=False, choice=choice)
        raise EngineError(f"cannot read layer {hex_id[:12]}: {exc}") from None
    finally:
        wire.close()  # stops zstd when the link dropped mid-layer
        meter.stop()
    proc.stdin = None  # closed above; communicate() would try to flush it
    out, err = proc.communicate()
    text = out.decode(errors="replace") + err.decode(errors="replace")
    if "DLBOX:write-failed" in text:
        blobs = [d.split(":", 1)[1] for d in source.wanted]
        ssh.run(target, cleanup_script(blobs), control_path=cp, timeout=60)
        if "No space left" in text or "Disk quota" in text:
            raise HostError(f"The server {target} ran out of disk space in its staging directory while receiving "
                            f"layer {hex_id[:12]} ({size} bytes); the partial upload was removed and its images "
                            "are untouched.",
                            fix="free space there, or point DLBOX_REMOTE_STAGING at a bigger disk")
        raise HostError(f"Writing to the staging directory on {target} failed: {_last_line(text)}",
                        fix="check the directory is writable (DLBOX_REMOTE_STAGING, default ~/.cache/dlbox/incoming)")
    if dropped or proc.returncode == 255 or "DLBOX:" not in text:
        raise ConnectionLost(
            f"The connection to {target} was lost after {result.bytes_sent} bytes of layer {hex_id[:12]}.",
            fix="run the same dlbox deploy again: it resumes from what arrived")
    if "sha256:" + h.hexdigest() != diff_id:
        # the bytes we produced are not the layer (the server rejects them too): retry with docker save
        if retry and source.fast:
            ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
            source.fall_back()
            remote.staged.pop(f"{hex_id}.tar.part", None)
            return _send_layer(target, cp, source, diff_id, remote, result, meter, retry=False, choice=choice)
        raise EngineError(f"layer {hex_id[:12]} read from the engine does not match its diff ID")
    if "DLBOX:badhash" in text and offset and retry:
        # the part resumed from was damaged (the server removed it): send the layer whole, once
        remote.staged.pop(f"{hex_id}.tar.part", None)
        result.resumed_bytes -= offset
        return _send_layer(target, cp, source, diff_id, remote, result, meter, retry=False)
    if "DLBOX:ok" not in text:
        raise HostError(f"Layer {hex_id[:12]} arrived damaged on {target} ({_last_line(text)}); it was removed.",
                        fix="run dlbox deploy again")
    result.layers_sent += 1


def _count_raw(result: DeployResult, n: int) -> None:
    result.raw_bytes += n
