"""`dlbox setup mirrors`: apt mirror, pip/uv index, Docker registry mirrors."""

from __future__ import annotations

import re
import tomllib
from urllib.parse import urlsplit

from dlbox.doctor.resources import mirror_problem
from dlbox.errors import HostError
from dlbox.host.facts import Facts
from dlbox.host.sysroot import SysRoot
from dlbox.setup.config import DAEMON_JSON, json_change, text_change
from dlbox.setup.files import FileChange, set_ini_option
from dlbox.setup.steps import Command, Options, Step

# The official hosts that mirror how-tos `sed` away (archive/security.ubuntu.com, deb/security.debian.org).
OFFICIAL_APT = re.compile(
    r"https?://(?:deb\.debian\.org|security\.debian\.org|(?:[a-z]{2}\.)?archive\.ubuntu\.com|security\.ubuntu\.com)(?=/)")


def apt_changes(sysroot: SysRoot, mirror: str) -> list[FileChange]:
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HostError(f"not an apt mirror URL: {mirror}", fix="e.g. --apt-mirror https://mirrors.ustc.edu.cn")
    base = f"{parts.scheme}://{parts.netloc}"
    files = ["/etc/apt/sources.list"] + sysroot.glob("/etc/apt/sources.list.d", "*.list") \
        + sysroot.glob("/etc/apt/sources.list.d", "*.sources")
    return [text_change(sysroot, f, lambda t: OFFICIAL_APT.sub(base, t)) for f in files if sysroot.exists(f)]


def uv_edit(url: str, path: str) -> "callable":
    def edit(text: str) -> str:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HostError(f"{path} is not valid TOML ({exc}); left untouched", fix=f"fix {path} by hand") from None
        if data.get("index-url") == url or any(i.get("url") == url and i.get("default") for i in data.get("index", [])):
            return text
        if "index-url" in data:
            return re.sub(r"(?m)^index-url\s*=.*$", f'index-url = "{url}"', text, count=1)
        if any(i.get("default") for i in data.get("index", [])):
            raise HostError(f"{path} already has a default [[index]]; left untouched", fix=f"edit {path} by hand")
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return f'{text}{sep}[[index]]\nurl = "{url}"\ndefault = true\n'
    return edit


def plan_mirrors(sysroot: SysRoot, opts: Options) -> Step:
    if not (opts.apt_mirror or opts.pip_index or opts.registry_mirrors):
        raise HostError("setup mirrors needs at least one mirror",
                        fix="dlbox setup mirrors --apt-mirror https://mirrors.ustc.edu.cn "
                            "--pip-index https://mirrors.aliyun.com/pypi/simple/ --registry-mirror https://MIRROR")
    step = Step("mirrors: apt, pip/uv, Docker registry")
    if opts.apt_mirror:
        step.actions += apt_changes(sysroot, opts.apt_mirror)
    if opts.pip_index:
        home = sysroot.home().rstrip("/")
        pip_conf, uv_toml = f"{home}/.config/pip/pip.conf", f"{home}/.config/uv/uv.toml"
        step.actions.append(text_change(sysroot, pip_conf, lambda t: set_ini_option(t, "global", "index-url", opts.pip_index)))
        step.actions.append(text_change(sysroot, uv_toml, uv_edit(opts.pip_index, uv_toml)))
    if opts.registry_mirrors:
        bad = [p for p in map(mirror_problem, opts.registry_mirrors) if p]
        if bad:
            raise HostError("bad registry mirror: " + "; ".join(bad), fix="--registry-mirror https://HOST[:PORT]")

        def daemon_edit(d: dict) -> None:
            have = list(d.get("registry-mirrors") or [])
            d["registry-mirrors"] = have + [m for m in opts.registry_mirrors if m not in have]

        daemon = json_change(sysroot, DAEMON_JSON, daemon_edit)
        step.actions.append(daemon)
        if daemon.changed:
            if Facts(sysroot).systemd:
                step.actions.append(Command(("systemctl", "restart", "docker"), "dockerd reads daemon.json at start"))
            else:
                step.notes.append("no systemd here: restart dockerd to load the new registry mirrors")

    def verify() -> list[str]:
        return [f"{a.host_path} still differs" for a in plan_mirrors(sysroot, opts).actions
                if isinstance(a, FileChange) and a.changed]

    step.verify = verify
    return step
