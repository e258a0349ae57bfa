"""How a deploy compresses layers on the wire: chosen from the measured link and CPU speed.

A layer crosses the link as a zstd stream that the server decompresses as it arrives and appends
to the staged `.tar.part` file, so a dropped link still resumes from the (uncompressed) bytes the
server holds, and the sha256 of the staged file is still checked against the diff ID.

The choice is a small model, not a guess: the link's rate is measured by sending incompressible
bytes over the deploy's own ssh connection, this machine's zstd rate and ratio by compressing a
sample of the first layer at each candidate level. The level whose pipeline (compress, send,
decompress) finishes first wins; "none" when the link is faster than any compressor here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Iterator, Protocol

from dlbox import ssh

if TYPE_CHECKING:
    from dlbox.ship.layers import Span
    from dlbox.ship.remote import RemoteState


class Layers(Protocol):
    """What the codec choice reads of the layers to send (ship.send.LayerSource has it)."""

    def size(self, diff_id: str) -> int: ...

    def stream(self, diff_id: str, spans: bool = False) -> Iterator["bytes | Span"]: ...

# zstd levels tried; a negative one is --fast=N (a third less CPU than -1, a quarter more bytes):
# the pick on links so fast that the compressor is the slowest stage (1 Gbit/s here)
LEVELS = (-3, 1, 3)
SLOW_LINK_LEVEL, SLOW_LINK_BPS = 6, 4e6   # level 6 only pays on links under ~32 Mbit/s
SAMPLE = 8 << 20           # bytes of the biggest layer compressed at each level to measure it
LINK_PROBE_S = 0.3         # seconds of incompressible bytes sent to measure the link (0.15 s read 25 MB/s on a 1 Gbit/s link)
LINK_PROBE_MAX = 256 << 20 # … and at most this many
LINK_WARM_UP = 1 << 20     # bytes sent first, untimed
MEASURE_ABOVE = 64 << 20   # below this many bytes to send, measuring costs more than it saves


@dataclass(frozen=True)
class Choice:
    codec: str                      # "zstd" or "none"
    level: int = 0
    link_bps: float = 0.0           # measured, bytes/s
    estimates: dict = field(default_factory=dict)   # codec name -> estimated seconds per GB

    @property
    def name(self) -> str:
        return level_name(self.level) if self.codec == "zstd" else "none"

    def to_dict(self) -> dict:
        return {"codec": self.name, "link_MBps": round(self.link_bps / 1e6, 1),
                "estimated_s_per_GB": {k: round(v, 1) for k, v in self.estimates.items()}}


def zstd_binary() -> str | None:
    return shutil.which("zstd")


def threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def zstd_flag(level: int) -> str:
    return f"-{level}" if level > 0 else f"--fast={-level}"


def level_name(level: int) -> str:
    return f"zstd {zstd_flag(level)}"


def zstd_argv(level: int) -> list[str]:
    return [zstd_binary() or "zstd", "-q", "-c", zstd_flag(level), f"-T{threads()}"]


def measure_level(sample: BinaryIO, level: int) -> tuple[float, float]:
    """(uncompressed bytes/s, compressed/uncompressed ratio) of `zstd -LEVEL` here on the file
    SAMPLE. zstd reads the sample from a file: fed through a pipe by communicate() (4 kB
    writes), the feeding was the slowest part, and every level measured alike."""
    size = sample.seek(0, os.SEEK_END)
    sample.seek(0)
    t0 = time.monotonic()
    proc = subprocess.run(zstd_argv(level), stdin=sample, capture_output=True, check=True)
    dt = max(time.monotonic() - t0, 1e-3)
    return size / dt, len(proc.stdout) / max(size, 1)


def choose(link_bps: float, measured: dict[int, tuple[float, float]]) -> Choice:
    """The level whose compress → send pipeline is fastest (seconds per GB for each candidate).

    Two things make the short measurement safe to act on: a level is taken to be at least as
    fast as any stronger level measured (zstd's levels are ordered by speed; a few MB on a busy
    machine can say otherwise), and levels within 5 % of the fastest count as a tie, won by the
    one that spends the least CPU — the server decompresses and runs docker load meanwhile, and
    needs the CPU more than the link needs the bytes (at 1 Gbit/s here --fast=3 deployed 1.5-2.6 s
    sooner than -1, measured alternately)."""
    gb = 1e9
    est = {"none": gb / link_bps}
    levels: dict[str, int] = {}
    fastest_rate = 0.0
    for level in sorted(measured, reverse=True):        # strongest first
        rate, ratio = measured[level]
        fastest_rate = max(fastest_rate, rate)
        # the stages run concurrently: the slower of compressing and sending decides
        est[level_name(level)] = max(gb / fastest_rate, gb * ratio / link_bps)
        levels[level_name(level)] = level
    fastest = min(est.values())
    best = min((n for n in est if est[n] <= 1.05 * fastest), key=lambda n: levels.get(n, -100))
    if best == "none" or est[best] > 0.95 * est["none"]:   # not worth the CPU for < 5 %
        return Choice("none", 0, link_bps, est)
    return Choice("zstd", levels[best], link_bps, est)


def sample_of(chunks: Iterable["bytes | Span"], size: int) -> bytes:
    """SAMPLE bytes from the middle of a layer of SIZE bytes (its CHUNKS)."""
    return take(chunks, SAMPLE, skip=max(0, size // 2 - SAMPLE // 2))


def take(chunks: Iterable["bytes | Span"], n: int, skip: int = 0) -> bytes:
    """N bytes of CHUNKS after the first SKIP, which Spans pass over without reading (a layer's
    middle is its bulk: the start of a torch layer is Python sources, which compress unlike
    the shared libraries)."""
    out = bytearray()
    for c in chunks:
        if skip >= len(c):
            skip -= len(c)
            continue
        for piece in (c.skip(skip).chunks() if not isinstance(c, bytes) else (c[skip:],)):
            out += piece
            if len(out) >= n:
                return bytes(out[:n])
        skip = 0
    return bytes(out[:n])


def compressed(chunks: Iterator["bytes | Span"], level: int, on_raw: Callable[[int], None]) -> Iterator[bytes]:
    """CHUNKS through `zstd -LEVEL -T<cores>`: a feeder thread writes (a Span of a file with
    sendfile), this generator yields the compressed bytes as they come. ON_RAW(n) reports
    uncompressed bytes consumed (for progress)."""
    proc = subprocess.Popen(zstd_argv(level), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    error: list[BaseException] = []

    def feed() -> None:
        try:
            for c in chunks:
                if isinstance(c, bytes):
                    proc.stdin.write(c)
                else:               # a Span of a file: straight from the page cache into the pipe
                    proc.stdin.flush()
                    c.send_to(proc.stdin.fileno())
                on_raw(len(c))
        except BaseException as exc:  # noqa: BLE001 — re-raised in the consumer
            error.append(exc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    done = False
    try:
        while block := proc.stdout.read1(1 << 20):
            yield block
        done = True
    finally:
        if not done and proc.poll() is None:
            proc.kill()      # the consumer stopped early (a dropped link)
        t.join(timeout=None if done else 5)
        proc.wait()
    if error:
        raise error[0]
    if proc.returncode != 0:
        raise OSError(f"zstd exited with status {proc.returncode}")


def choose_for_deploy(target: ssh.Target, cp: str, source: Layers, missing: list[str],
                      remote: "RemoteState", say: Callable[[str], None], sample: bytes | None = None) -> Choice:
    """zstd at the level the measured link and CPU favour, measured on SAMPLE (taken here from the
    middle of the biggest missing layer when None); DLBOX_SHIP_CODEC=none | zstd:LEVEL | auto
    overrides (benchmarks compare them; zstd:-3 is --fast=3)."""
    forced = os.environ.get("DLBOX_SHIP_CODEC", "auto").strip().lower()
    if forced == "none" or "zstd" not in remote.codecs or zstd_binary() is None:
        return Choice("none")
    if forced.startswith("zstd:") and forced[5:].lstrip("-").isdigit() and int(forced[5:]):
        return Choice("zstd", int(forced[5:]))
    sizes = {d: source.size(d) for d in missing}
    if sum(sizes.values()) < MEASURE_ABOVE:
        return Choice("zstd", 3)
    link = max(measure_link(target, cp), 1.0)   # 0 when the link dropped at once: the send reports it
    biggest = max(sizes, key=sizes.get)
    if not sample:
        sample = sample_of(source.stream(biggest, spans=True), sizes[biggest])
    with tempfile.TemporaryFile() as f:
        f.write(sample)
        measured = {lv: measure_level(f, lv) for lv in LEVELS[:2]}
        rate, ratio = measured[LEVELS[1]]
        if ratio / link > 0.8 / rate:      # the wire is (nearly) the slower stage: stronger levels may pay
            stronger = LEVELS[2:] + ((SLOW_LINK_LEVEL,) if link < SLOW_LINK_BPS else ())
            measured.update({lv: measure_level(f, lv) for lv in stronger})
    choice = choose(link, measured)
    say(f"link {link / 1e6:.1f} MB/s; sending layers with {choice.name}")
    return choice


def measure_link(target: ssh.Target, cp: str) -> float:
    """Bytes/s to the server over this deploy's ssh connection: incompressible bytes streamed for
    about LINK_PROBE_S, timed from the moment the server has read LINK_WARM_UP bytes (neither the
    session's start nor TCP's and ssh's windows opening are the link: without it a new
    connection read 50-60 MB/s on a 1 Gbit/s link that carries 115) until it has read them all."""
    block = os.urandom(1 << 20)   # ssh's zlib window is 32 kB: a repeated 1 MB block stays incompressible
    script = f"head -c 1 >/dev/null; echo go; head -c {LINK_WARM_UP} >/dev/null; echo warm; cat >/dev/null"
    proc = ssh.popen(target, script, control_path=cp,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    n, t0 = 0, time.monotonic()
    try:
        proc.stdin.write(b"g")
        proc.stdin.flush()
        proc.stdout.readline()
        proc.stdin.write(block[:LINK_WARM_UP])
        proc.stdin.flush()
        proc.stdout.readline()
        t0 = time.monotonic()
        while time.monotonic() - t0 < LINK_PROBE_S and n < LINK_PROBE_MAX:
            proc.stdin.write(block)
            n += len(block)
        proc.stdin.close()
    except BrokenPipeError:
        pass        # the link dropped: the send that follows reports it
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return n / max(time.monotonic() - t0, 1e-3)
