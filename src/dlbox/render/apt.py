"""The shell of the apt steps: caches, the build's CA, the plan's mirror.

Plain data for the template. Both BuildKit cache mounts are keyed by the base OS and locked
(apt takes its own locks in them): the debs (/var/cache/apt) and the package lists
(/var/lib/apt/lists). With the lists in a cache, `apt-get update` of a cold layer build is an
incremental refresh (If-Modified-Since, pdiffs) instead of 15.8 MB of downloads each time, and
the lists are in no layer, so there is nothing to clean up (deleting files of a lower layer
would leave whiteouts stamped with the build's clock).
"""

from __future__ import annotations

from dlbox.plan.layout import APT_BUILD_CA, APT_CACHE
from dlbox.plan.model import Plan

SYSTEM_APT = ("ca-certificates",)
APT_LISTS = "/var/lib/apt/lists"
MIRROR_HOSTS = {
    "debian": (("deb.debian.org/debian-security", "{m}-security"), ("deb.debian.org/debian", "{m}")),
    "ubuntu": (("archive.ubuntu.com/ubuntu", "{m}"), ("security.ubuntu.com/ubuntu", "{m}")),
}
# Translations of package descriptions: about 6 MB of lists that no install reads.
APT_UPDATE = "apt-get $APT_CA -o Acquire::Languages=none update -q"


def apt_mounts(plan: Plan) -> list[str]:
    os_key = plan.build.base_os.replace(".", "")
    return [f"--mount=type=cache,id=dlbox-apt-{os_key},target={APT_CACHE},sharing=locked",
            f"--mount=type=cache,id=dlbox-apt-lists-{os_key},target={APT_LISTS},sharing=locked",
            f"--mount=type=secret,id=dlbox_ca,target={APT_BUILD_CA}"]


def apt_prepare(plan: Plan) -> list[str]:
    b = plan.build
    cmds = [
        # Official images delete downloaded debs after every install; the cache mount keeps them.
        "rm -f /etc/apt/apt.conf.d/docker-clean",
        f'APT_CA=""; if [ -s {APT_BUILD_CA} ]; then APT_CA="-o Acquire::https::CaInfo={APT_BUILD_CA}"; fi',
    ]
    if b.apt_mirror:
        family = "ubuntu" if b.base_os.startswith("ubuntu") else "debian"
        mirror = b.apt_mirror.rstrip("/")
        exprs = " ".join(
            f"-e 's#https\\?://{src}#{dst.format(m=mirror)}#g'" for src, dst in MIRROR_HOSTS[family]
        )
        cmds.append(f"for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do [ -f \"$f\" ] && sed -i {exprs} \"$f\"; done")
        if b.base_image.startswith(("nvidia/cuda", "nvcr.io/nvidia/cuda")):
            # NVIDIA's own apt repository is usually what is unreachable where a mirror is needed
            cmds.append("rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list")
    return cmds
