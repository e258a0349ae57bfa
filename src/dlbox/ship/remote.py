"""What `dlbox deploy` runs on the server: short POSIX sh scripts, built here as text.

The server needs only sh, coreutils, tar, docker (zstd and openssl when present); no Python.
Every script prints `DLBOX:<word>` lines that the client parses, and uses `$D` (the staging
directory, `$HOME` expands there) and `$DK` (the server's docker command).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass

# What a failed write in a server script says when the staging disk is the cause (a `case` pattern).
WRITE_ERRORS = '*"No space"*|*"quota"*|*"Quota"*|*"Permission denied"*|*"Read-only"*'
# Partial images (ship/load.py) carry this label, valued with the image ID they lead to.
PARTIAL_LABEL = "org.dlbox.deploy-partial"
# `openssl dgst` hashes at ~0.9 GB/s here where coreutils' sha256sum (no SHA-NI) does 0.16 GB/s:
# at 1 Gbit/s sha256sum was the slowest stage of the whole send (benchmarks/results/ship_shaped*.json).
HASHER = 'if command -v openssl >/dev/null 2>&1; then HS="openssl dgst -sha256 -r"; else HS=sha256sum; fi'


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
    if fresh:   # uncompressed: tee reads stdin itself (one pipe less per byte than `cat | tee`)
        pipeline = ("zstd -dc | " if compressed else "") + 'tee "$P" | $HS > "$H"'
    else:
        pipeline = ("zstd -dc" if compressed else "cat") + ' >> "$P"'
    return f"""D={d}; P="$D/{hex_id}.tar.part"; H="$P.sha256"
mkdir -p "$D" || exit 70
{HASHER}
rm -f "$H"
err=$( {{ {pipeline}; }} 2>&1 )
case "$err" in {WRITE_ERRORS})
  rm -f "$H"; echo "DLBOX:write-failed $err"; exit 71;; esac
s=$(wc -c < "$P")
if [ "$s" -lt {size} ]; then rm -f "$H"; echo "DLBOX:short $s"; exit 72; fi
if [ "$s" -gt {size} ]; then rm -f "$P" "$H"; echo "DLBOX:long $s"; exit 73; fi
if [ -s "$H" ]; then h=$(cut -c1-64 "$H"); else h=$($HS < "$P" | cut -c1-64); fi
rm -f "$H"
if [ "$h" = {hex_id} ]; then mv -f "$P" "$D/{hex_id}.tar"; echo DLBOX:ok; else rm -f "$P"; echo "DLBOX:badhash $h"; exit 74; fi
"""


def load_script(name: str, blobs: list[str], drop: list[str], final_image: str | None = None) -> str:
    """`docker load` of the manifest tar on stdin plus the staged layers BLOBS (hex diff IDs);
    on success the staged files DROP are removed (the engine holds them now). FINAL_IMAGE (the
    image's ID, on the last load only): then remove its partial images, and partial images of
    any image left by deploys that stopped more than a day ago."""
    d, dk = staging_dir(), remote_docker_cmd()
    links = " && ".join(f'(ln -f "$D/{b}.tar" {b}.tar 2>/dev/null || cp "$D/{b}.tar" {b}.tar)' for b in blobs) or "true"
    files = " ".join(f'"$D/{b}.tar"' for b in drop)
    rm = f"\n[ $rc -eq 0 ] && rm -f {files}" if drop else ""
    tidy = f"\nif [ $rc -eq 0 ]; then\n{_tidy_partials(final_image)}\nfi" if final_image else ""
    return f"""D={d}; DK={dk}; W="$D/load-{name}"
rm -rf "$W" && mkdir -p "$W" && cd "$W" && tar -xf - && {links} || exit 75
tar -cf - . | "$DK" load; rc=$?
cd / && rm -rf "$W"{rm}{tidy}
exit $rc
"""


def _tidy_partials(final_image: str) -> str:
    """Once FINAL_IMAGE is loaded: remove its partial images, and (in the background: the deploy
    is done) those of any image left by deploys that stopped more than a day ago."""
    return f"""  old=$("$DK" image ls -q --no-trunc --filter label={PARTIAL_LABEL}={final_image} 2>/dev/null)
  [ -n "$old" ] && "$DK" rmi $old >/dev/null 2>&1
  ("$DK" image prune -f --filter label={PARTIAL_LABEL} --filter until=24h </dev/null >/dev/null 2>&1 &)"""


def stream_load_script(image_hex: str, members: list[tuple[str, int, int]], compressed: bool,
                       final_image: str | None = None) -> str:
    """`docker load` of the tar stream on stdin (zstd-compressed when COMPRESSED) *while it arrives*.
    The stream (ship/send.stream_members) holds the layers MEMBERS — (hex diff ID, offset of its
    bytes in the stream, size) — then the manifest and the config of the image IMAGE_HEX.

    `tee` keeps a copy of the stream in the staging dir (compressed, as it crossed). On success it
    is removed (the engine holds the layers); when the load fails for any other reason than wrong bytes (a dropped link),
    what arrived of each layer is cut out of it as `<hex>.tar.part`, which the next deploy resumes
    from. No hash here: `docker load` checks every layer against its diff ID ("invalid diffID"),
    and then nothing is kept. A staging disk too full for the copy fails no load that succeeded.
    Prints DLBOX:ok, DLBOX:badbytes, DLBOX:write-failed or DLBOX:load-failed (+ docker's output)."""
    d, dk, name = staging_dir(), remote_docker_cmd(), image_hex[:16]
    parts = " ".join(f'"$D/{h}.tar.part"' for h, _o, _n in members)
    # the copy is of the bytes as they cross: compressed, a third of the layer to write
    copy, unzip, unpack = (('"$S.zst"', " | zstd -dc", 'zstd -dcq "$S.zst" > "$S" 2>/dev/null; rm -f "$S.zst"')
                           if compressed else ('"$S"', "", ":"))
    tidy = f"\n{_tidy_partials(final_image)}" if final_image else ""
    keep = "\n".join(f'[ "$n" -gt {o} ] && tail -c +{o + 1} "$S" | head -c {size} > "$D/{h}.tar.part"'
                      for h, o, size in members)
    return f"""D={d}; DK={dk}; S="$D/stream-{name}.part"; E="$D/stream-{name}.err"
mkdir -p "$D" && rm -f "$S" "$S.zst" "$E" {parts} || {{ echo "DLBOX:write-failed cannot use $D"; exit 71; }}
out=$( {{ tee {copy} 2>"$E"{unzip} | "$DK" load; }} 2>&1 ); rc=$?
err=$(cat "$E" 2>/dev/null); rm -f "$E"
if [ $rc -eq 0 ]; then
  rm -f "$S" "$S.zst"{tidy}
  echo DLBOX:ok; exit 0
fi
case "$out" in *"invalid diffID"*) rm -f "$S" "$S.zst"; echo DLBOX:badbytes; printf '%s\\n' "$out"; exit 74;; esac
case "$err" in {WRITE_ERRORS})
  rm -f "$S" "$S.zst"; echo "DLBOX:write-failed $err"; exit 71;; esac
{unpack}
n=$(wc -c < "$S" 2>/dev/null || echo 0)
{keep}
rm -f "$S"
echo DLBOX:load-failed; printf '%s\\n' "$out" "$err"; exit 76
"""


def remove_images_script(image_ids: list[str]) -> str:
    """Remove these (partial) images; those still in use stay, silently."""
    ids = " ".join(shlex.quote(i) for i in image_ids)
    return f'DK={remote_docker_cmd()}; "$DK" rmi {ids} >/dev/null 2>&1; exit 0' if ids else "exit 0"


def cleanup_script(blobs: list[str]) -> str:
    d = staging_dir()
    files = " ".join(f'"$D/{b}.tar.part" "$D/{b}.tar"' for b in blobs)
    return f"D={d}; rm -f {files}; exit 0"
