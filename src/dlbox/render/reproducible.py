"""Shell fragments that make the shared layers (base OS, Python, torch) reproducible.

docker 20.10's BuildKit cannot rewrite layer timestamps (rewrite-timestamp came in BuildKit 0.13),
so the steps do it themselves: every file a step creates is stamped with SOURCE_DATE_EPOCH
(reproducible-builds.org), logs the step writes are put back as the base image had them, and
nothing that a lower layer has is deleted — a deletion is a whiteout stamped with the build's
clock. Files keep the times their packages gave them (a .pyc records its source's mtime). With
these, two builds of the same plan inputs, on one machine or two, produce the same diff IDs.
"""

from __future__ import annotations

from dlbox.plan.layout import SOURCE_DATE_EPOCH, TOOLS

ENGINE_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")  # bind-mounted by the engine in RUN

# Files an apt step writes with the build's clock in them (logs, ldconfig's inode cache).
APT_NOISE = ("/var/log/dpkg.log", "/var/log/alternatives.log", "/var/log/apt/history.log", "/var/log/apt/term.log",
             "/var/log/apt/eipp.log.xz", "/var/cache/ldconfig/aux-cache")


def noise_commands() -> tuple[str, str]:
    """(before, after) an apt step: keep copies of the noise files the base has, then put them back
    (and remove the ones the step created)."""
    files = " ".join(APT_NOISE)
    keep = f'for f in {files}; do if [ -e "$f" ]; then cp -p "$f" "$f.dlbox-keep"; fi; done'
    restore = (f'for f in {files}; do if [ -e "$f.dlbox-keep" ]; then mv -f "$f.dlbox-keep" "$f"; '
               'else rm -f "$f"; fi; done')
    return keep, restore


def clamp_command() -> str:
    """Stamp every file the step created (mtime at or after its start, T0) with SOURCE_DATE_EPOCH.
    Run last in a RUN that set T0=$(date +%s) first. The engine's read-only files cannot be
    stamped; a file that still fails costs only reproducibility, never the build."""
    skip = " -o ".join(f"-path {p}" for p in ("/proc", "/sys", "/dev", TOOLS, *ENGINE_FILES))
    return (f"find / -xdev \\( {skip} \\) -prune -o -newermt \"@$((T0 - 1))\" -print0"
            f" | xargs -0r touch -h -d @{SOURCE_DATE_EPOCH} || true")


def forget_uv_cache_info(venv: str) -> str:
    """uv writes <dist-info>/uv_cache.json (listed in RECORD) for a wheel it took from a local file
    (find_links, the distribution's pip wheel): the file's ctime, which no one can set, so the layer
    would record when the tools image or the apt layer was unpacked on this machine. uv reads it
    only to re-check path and URL requirements, which nothing installed here has. Removed, and its
    RECORD line with it."""
    return (f'for f in {venv}/lib/python*/site-packages/*.dist-info/uv_cache.json; do [ -e "$f" ] || continue; '
            "rm -f \"$f\"; sed -i '/\\/uv_cache\\.json,/d' \"${f%/*}/RECORD\"; done")
