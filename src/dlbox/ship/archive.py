"""`dlbox export` / `dlbox import`: an image as one zstd file with a SHA-256 sidecar.

export: `docker save REF | zstd -T0 -3 > FILE.part`, hashed while written, renamed when complete,
then `FILE.sha256` in `sha256sum` format (so `sha256sum -c` works too). The 20.10 engine cannot
read `.tar.zst` itself (`docker load` and `docker import` both fail on it), so import pipes
`zstd -dc` into `docker load` — only after the whole file matched its sidecar.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dlbox.engine.docker import Docker
from dlbox.errors import DlboxError, EngineError, HostError
from dlbox.ship.layers import CHUNK
from dlbox.ship.progress import Meter

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(DlboxError):
    """The archive is damaged, truncated or does not match its checksum."""


@dataclass(frozen=True)
class ExportResult:
    image: str
    file: str
    sha256: str
    image_bytes: int
    file_bytes: int
    seconds: float


@dataclass(frozen=True)
class ImportResult:
    file: str
    loaded: tuple[str, ...]
    seconds: float


def zstd_binary() -> str:
    z = shutil.which("zstd")
    if not z:
        raise HostError("The zstd program is not installed.", fix="sudo apt-get install zstd")
    return z


def compress_argv(level: int = 3) -> list[str]:
    return [zstd_binary(), "-T0", f"-{level}", "-q", "-c"]


def decompress_argv() -> list[str]:
    return [zstd_binary(), "-d", "-q", "-c"]


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def check_space(out: Path, image_bytes: int, say: Callable[[str], None]) -> None:
    """Before export: the archive is at most about the image's size (zstd only shrinks it, by how
    much depends on the content). Refuse when even a 10x smaller archive cannot fit; warn when
    the uncompressed size does not."""
    free = shutil.disk_usage(out.parent).free
    if image_bytes and free < image_bytes // 10:
        raise HostError(f"Not enough space for {out}: the image is {_mb(image_bytes)} uncompressed and the archive "
                        f"needs a good part of that; {out.parent} has {_mb(free)} free.",
                        fix=f"free space there, or export elsewhere: dlbox export -o /other/disk/{out.name}")
    if image_bytes and free < image_bytes:
        say(f"{out.parent} has {_mb(free)} free and the image is {_mb(image_bytes)} uncompressed: "
            "the archive fits only if zstd shrinks it enough")


def export_image(docker: Docker, ref: str, out: Path, *, meter: Meter | None = None,
                 say: Callable[[str], None] = lambda _m: None) -> ExportResult:
    """Write REF to OUT (zstd) and OUT.sha256. Nothing is left at OUT (nor OUT.part) when it fails,
    a full disk included."""
    meter = meter or Meter()
    t0 = time.monotonic()
    data = docker.inspect("image", ref)
    if data is None:
        raise EngineError(f"There is no image '{ref}' on this machine's engine.",
                          fix="dlbox build --bake   (or docker images to find the name)")
    size = int(data.get("Size") or 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_space(out, size, say)
    part = out.with_name(out.name + ".part")
    h, written, done = hashlib.sha256(), 0, False
    save = docker.popen(["save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    z = subprocess.Popen(compress_argv(), stdin=save.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    save.stdout.close()  # zstd owns it now; save gets SIGPIPE if zstd dies
    try:
        with open(part, "wb") as f:
            meter.start(f"export {ref}", None)
            try:
                while chunk := z.stdout.read(CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                    written += len(chunk)
                    meter.advance(len(chunk))
                f.flush()
                os.fsync(f.fileno())     # a full disk shows here, not after the rename
            finally:
                meter.stop()
        z_err = z.stderr.read().decode(errors="replace")
        save_err = save.stderr.read().decode(errors="replace")
        if save.wait() != 0 or z.wait() != 0:
            if save.returncode != 0:
                raise docker.error(save_err, f"docker save {ref}")
            raise HostError(f"zstd failed while writing {out}: {z_err.strip() or 'no message'}",
                            fix="check free space where the archive goes")
        digest = h.hexdigest()
        sc_tmp = sidecar(out).with_name(sidecar(out).name + ".part")
        sc_tmp.write_text(f"{digest}  {out.name}\n")
        os.replace(part, out)
        os.replace(sc_tmp, sidecar(out))
        done = True
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise HostError(f"{out.parent} ran out of space after {_mb(written)} of the archive; the partial file "
                            f"was removed. The image is {_mb(size)} uncompressed; {out.parent} has "
                            f"{_mb(shutil.disk_usage(out.parent).free)} free now.",
                            fix=f"free space there, or export elsewhere: dlbox export -o /other/disk/{out.name}") from None
        raise
    finally:
        if not done:
            for proc in (z, save):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            part.unlink(missing_ok=True)
            sidecar(out).with_name(sidecar(out).name + ".part").unlink(missing_ok=True)
    return ExportResult(ref, str(out), digest, size, written, time.monotonic() - t0)


def read_sidecar(path: Path) -> str:
    sc = sidecar(path)
    if not sc.is_file():
        raise ArchiveError(f"{path}: no checksum file {sc.name} next to it.",
                           fix=f"copy {sc.name} along with the archive (dlbox export writes both)")
    m = re.match(r"^([0-9a-fA-F]{64})\b", sc.read_bytes().decode(errors="replace").strip())
    if not m:
        raise ArchiveError(f"{sc}: not a sha256 checksum file.", fix="re-export the image with dlbox export")
    return m.group(1).lower()


def verify(path: Path, *, meter: Meter | None = None) -> str:
    """Raise ArchiveError unless PATH is a zstd file whose sha256 equals its sidecar."""
    meter = meter or Meter()
    if path.is_dir():
        raise ArchiveError(f"{path}: is a directory, not an archive.", fix="give the .tar.zst file dlbox export wrote")
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file.")
    expected = read_sidecar(path)
    with open(path, "rb") as f:
        if f.read(4) != ZSTD_MAGIC:
            raise ArchiveError(f"{path}: not a zstd archive made by dlbox export.")
    h = hashlib.sha256()
    meter.start(f"verify {path.name}", path.stat().st_size)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                meter.advance(len(chunk))
    finally:
        meter.stop()
    if h.hexdigest() != expected:
        raise ArchiveError(f"{path} is damaged or truncated: its sha256 {h.hexdigest()[:16]}… does not match "
                           f"{sidecar(path).name} ({expected[:16]}…). Nothing was loaded.",
                           fix="copy the file again (rsync --partial resumes), or re-export it")
    return expected


def import_archive(docker: Docker, path: Path, *, meter: Meter | None = None) -> ImportResult:
    t0 = time.monotonic()
    docker.ping()    # an unreachable engine is said first, not after minutes of hashing (nor as a zstd error)
    verify(path, meter=meter)
    with open(path, "rb") as f:
        z = subprocess.Popen(decompress_argv(), stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = docker.popen(["load"], stdin=z.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        z.stdout.close()
        out, err = load.communicate()
        z_err = z.stderr.read().decode(errors="replace")
        z.wait()
    pipe_broke = z.returncode < 0 or "Write error" in z_err or "Broken pipe" in z_err
    if load.returncode != 0 and (z.returncode == 0 or pipe_broke):
        # the engine stopped reading (went away, disk full…): zstd's broken pipe is only the echo
        raise docker.error(err.decode(errors="replace"), "docker load")
    if z.returncode != 0:
        raise ArchiveError(f"{path}: zstd could not decompress it ({z_err.strip()}).", fix="re-export the image")
    loaded = tuple(ln.split(":", 1)[1].strip() for ln in out.decode().splitlines() if ln.startswith("Loaded image"))
    return ImportResult(str(path), loaded, time.monotonic() - t0)
