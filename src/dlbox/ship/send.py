"""Layers across the link: read, (compress,) send, checked on arrival.

Two ways. `stream_load`: the first missing layers as one `docker save`-layout tar stream into
the server's `docker load`, which reads it while it arrives and checks each layer against its
diff ID (remote.stream_load_script keeps a copy to resume from). `send_layer`: one layer into
the server's staging directory, for a later load (ship/load.py).

A staged layer goes into `STAGING/<diffid>.tar.part`, appended from what is already there (so a
dropped connection resumes), hashed while it arrives and renamed to `.tar` only when its
sha256 equals the diff ID. Offsets are in uncompressed bytes, so resuming works the same with
and without zstd on the wire.

The server's hash is the one check: this side no longer hashes what it sends (0.9 s of CPU per
GB, on machines where every stage of a 1 Gbit/s deploy is CPU-bound). When the server rejects a
layer, the resumed part is dropped and the layer sent whole; when it rejects a whole layer read
from the engine's store, the bytes we produced were wrong and `docker save` is used instead.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from dlbox import ssh
from dlbox.engine.docker import Docker
from dlbox.engine.paths import cache_dir
from dlbox.errors import EngineError, HostError
from dlbox.ship import codec
from dlbox.ship.layers import FastReader, ImageFacts, Span, chain_ids, config_bytes, saved_layers
from dlbox.ship.progress import Meter
from dlbox.ship.remote import RemoteState, cleanup_script, send_script, staging_dir
from dlbox.ship.staging import staged_layer_ok

Say = Callable[[str], None]


class ConnectionLost(HostError):
    pass


class Stopped(Exception):
    """The send was stopped because loading on the server failed (its error is the one to report)."""


@dataclass
class Tally:
    """What the sends did, for DeployResult."""

    bytes_sent: int = 0      # on the wire (after compression)
    raw_bytes: int = 0       # layer bytes those wire bytes carried
    resumed_bytes: int = 0   # already on the server from an interrupted deploy
    layers_sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


class LayerSource:
    """Bytes of the layers to send: from the engine's store, or from one `docker save`."""

    def __init__(self, docker: Docker, image: ImageFacts, wanted: set[str], say: Say):
        self.docker, self.image, self.wanted, self.say = docker, image, wanted, say
        self.fast = FastReader(docker)
        self.chains = dict(zip(image.diff_ids, chain_ids(image.diff_ids)))
        self.files: dict[str, Path] = {}
        self.sizes: dict[str, int] = {}
        self.config: bytes | None = config_bytes(docker, image.id) if self.fast.available else None
        self.tmp: tempfile.TemporaryDirectory | None = None
        if not self.fast.available or self.config is None:
            self._save()

    def _save(self) -> None:
        if self.tmp is None:
            self.tmp = tempfile.TemporaryDirectory(dir=cache_dir("layers"))
        self.say(f"reading {len(self.wanted)} layer(s) with docker save")
        self.files, self.config = saved_layers(self.docker, self.image, set(self.wanted), Path(self.tmp.name))
        self.fast = None

    def size(self, diff_id: str) -> int:
        if diff_id not in self.sizes:
            n = self.fast.tar_size(self.chains[diff_id]) if self.fast else None
            if n is None and self.fast:
                self._save()
            self.sizes[diff_id] = n if n is not None else self.files[diff_id].stat().st_size
        return self.sizes[diff_id]

    def stream(self, diff_id: str, spans: bool = False) -> Iterator[bytes | Span]:
        """The layer's bytes; with SPANS, file contents as Spans (for codec.compressed's pipe)."""
        if self.fast:
            return self.fast.stream(self.chains[diff_id], spans=spans)
        whole = Span(self.files[diff_id], 0, self.files[diff_id].stat().st_size)
        return iter([whole]) if spans else whole.chunks()

    def fall_back(self) -> None:
        """The fast path produced wrong bytes (or could not read): use docker save from now on."""
        if self.fast:
            self._save()

    def close(self) -> None:
        if self.tmp:
            self.tmp.cleanup()


def raw_from(chunks: Iterator[bytes | Span], offset: int) -> Iterator[bytes | Span]:
    """The layer's bytes (or Spans) from OFFSET on."""
    pos = 0
    for chunk in chunks:
        end = pos + len(chunk)
        if end > offset:
            if pos >= offset:
                yield chunk
            elif isinstance(chunk, Span):
                yield chunk.skip(offset - pos)
            else:
                yield chunk[offset - pos:]
        pos = end


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no error text"


def staging_write_failed(target, text: str, doing: str) -> HostError:
    """The error for a server script's DLBOX:write-failed (TEXT is its output) while DOING."""
    if "No space left" in text or "Disk quota" in text:
        return HostError(f"The server {target} ran out of disk space in its staging directory while {doing}; "
                         "the partial upload was removed and its images are untouched.",
                         fix="free space there, or point DLBOX_REMOTE_STAGING at a bigger disk")
    return HostError(f"Writing to the staging directory on {target} failed: {last_line(text)}",
                     fix="check the directory is writable (DLBOX_REMOTE_STAGING, default ~/.cache/dlbox/incoming)")


def pump(proc: subprocess.Popen, raw: Iterator[bytes | Span], choice: codec.Choice, tally: Tally, meter: Meter) -> None:
    """RAW (a layer's bytes, or Spans of them) into the ssh process's stdin, through zstd when
    CHOICE says so, counted in TALLY and on METER. Raises BrokenPipeError when the server stops
    reading, Stopped when `tally.stop` is set, OSError when the bytes cannot be read."""
    zstd = choice.codec == "zstd"

    def on_raw(n: int) -> None:
        meter.advance(n)
        tally.raw_bytes += n

    wire = codec.compressed(raw, choice.level, on_raw=on_raw) if zstd else raw
    try:
        for part in wire:
            if tally.stop.is_set():
                raise Stopped()
            if not zstd:
                on_raw(len(part))
            proc.stdin.write(part)
            tally.bytes_sent += len(part)
        proc.stdin.close()
    finally:
        wire.close()  # stops zstd when the link dropped mid-layer


def send_layer(target, cp, source: LayerSource, diff_id: str, remote: RemoteState, tally: Tally,
               meter: Meter, retry: bool = True, choice: codec.Choice | None = None) -> None:
    """Stage DIFF_ID on the server (see module doc); raises HostError/EngineError/ConnectionLost,
    or Stopped when `tally.stop` is set meanwhile."""
    choice = choice or codec.Choice("none")
    hex_id = diff_id.split(":", 1)[1]
    size = source.size(diff_id)
    if remote.staged.get(f"{hex_id}.tar") == size:
        if staged_layer_ok(target, cp, staging_dir(), hex_id):
            tally.resumed_bytes += size  # left by an earlier, interrupted deploy; still matches
            return
        remote.staged.pop(f"{hex_id}.tar")  # damaged since: removed on the server, sent again
    offset = remote.staged.get(f"{hex_id}.tar.part", 0)
    if offset > size:
        offset = 0  # cannot be ours: removed, and the file is started again
        ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
    tally.resumed_bytes += offset
    zstd = choice.codec == "zstd"
    meter.start(f"layer {hex_id[:12]}" + (f" ({choice.name})" if zstd else ""), size)
    meter.advance(offset)
    proc = ssh.popen(target, send_script(hex_id, size, compressed=zstd, fresh=offset == 0), control_path=cp,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dropped = False
    try:
        pump(proc, raw_from(source.stream(diff_id, spans=zstd), offset), choice, tally, meter)
    except BrokenPipeError:  # the remote end stopped reading: its output says why
        proc.stdin = None
        dropped = True
    except Stopped:
        proc.kill()
        proc.wait()
        raise
    except OSError as exc:  # the store changed under us: start over with docker save
        proc.kill()
        proc.wait()
        if retry and source.fast:
            ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
            remote.staged.pop(f"{hex_id}.tar.part", None)
            source.fall_back()
            return send_layer(target, cp, source, diff_id, remote, tally, meter, retry=False, choice=choice)
        raise EngineError(f"cannot read layer {hex_id[:12]}: {exc}") from None
    finally:
        meter.stop()
    proc.stdin = None  # closed above; communicate() would try to flush it
    out, err = proc.communicate()
    text = out.decode(errors="replace") + err.decode(errors="replace")
    if "DLBOX:write-failed" in text:
        blobs = [d.split(":", 1)[1] for d in source.wanted]
        ssh.run(target, cleanup_script(blobs), control_path=cp, timeout=60)
        raise staging_write_failed(target, text, f"receiving layer {hex_id[:12]} ({size} bytes)")
    if dropped or proc.returncode == 255 or "DLBOX:" not in text:
        raise ConnectionLost(
            f"The connection to {target} was lost after {tally.bytes_sent} bytes of layer {hex_id[:12]}.",
            fix="run the same dlbox deploy again: it resumes from what arrived")
    if "DLBOX:ok" in text:
        tally.layers_sent += 1
        return
    # rejected (wrong hash or size): the server removed what it staged
    ssh.run(target, cleanup_script([hex_id]), control_path=cp, timeout=60)
    remote.staged.pop(f"{hex_id}.tar.part", None)
    if offset:          # the part resumed from was damaged: send the layer whole
        tally.resumed_bytes -= offset
        return send_layer(target, cp, source, diff_id, remote, tally, meter, retry=retry, choice=choice)
    if retry and source.fast:   # the bytes read from the engine's store are not the layer: docker save
        source.fall_back()
        return send_layer(target, cp, source, diff_id, remote, tally, meter, retry=False, choice=choice)
    raise HostError(f"Layer {hex_id[:12]} arrived damaged on {target} ({last_line(text)}); it was removed.",
                    fix="run dlbox deploy again")


# -- a stream load: the first missing layers go straight into `docker load` -------------------

def stream_layout(layers: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """Where stream_members puts each layer of LAYERS ((diff ID, size), in order): (hex diff ID,
    offset of its first byte in the stream, size)."""
    out, pos = [], 0
    for diff_id, size in layers:
        out.append((diff_id.split(":", 1)[1], pos + tarfile.BLOCKSIZE, size))
        pos += tarfile.BLOCKSIZE + -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    return out


def stream_members(source: LayerSource, layers: list[str], trailer: bytes, meter: Meter,
                   spans: bool = False) -> Iterator[bytes | Span]:
    """LAYERS as members `<hex>.tar.part` of one tar stream (`docker save` layout; stream_layout
    says where each one's bytes are), then TRAILER (manifest.json, the config and the
    end-of-archive blocks: load.manifest_tar)."""
    for diff_id in layers:
        hex_id, size = diff_id.split(":", 1)[1], source.size(diff_id)
        info = tarfile.TarInfo(f"{hex_id}.tar.part")
        info.size, info.mode = size, 0o644
        meter.start(f"layer {hex_id[:12]} (into docker load)", size)
        try:
            yield info.tobuf(format=tarfile.USTAR_FORMAT)
            yield from source.stream(diff_id, spans=spans)
            if size % tarfile.BLOCKSIZE:
                yield bytes(tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
        finally:
            meter.stop()
    yield trailer


def stream_load(target, cp, source: LayerSource, layers: list[str], trailer: bytes, script: str, tally: Tally,
                meter: Meter, choice: codec.Choice) -> tuple[subprocess.Popen, bool]:
    """Write LAYERS and TRAILER as one tar stream into SCRIPT (remote.stream_load_script), which
    loads it while it arrives. Returns the ssh process and whether the server stopped reading
    before the end (a dropped link, or a load that failed early): its output says which
    (load.stream_outcome). Raises Stopped when `tally.stop` is set meanwhile."""
    proc = ssh.popen(target, script, control_path=cp, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    try:
        pump(proc, stream_members(source, layers, trailer, meter, spans=choice.codec == "zstd"), choice, tally, meter)
    except BrokenPipeError:      # the server stopped reading: a dropped link, or the load failed early
        proc.stdin = None
        return proc, True
    except BaseException as exc:
        proc.kill()
        proc.wait()
        if isinstance(exc, OSError):     # the engine's store changed under us
            raise EngineError(f"cannot read the layers to send: {exc}",
                              fix="run dlbox deploy again (what arrived is kept)") from None
        raise
    proc.stdin = None
    tally.layers_sent += len(layers)
    return proc, False

