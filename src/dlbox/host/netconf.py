"""Read the host's network settings the way its own tools do: proxies from the environment,
and the CA bundle, index and find-links that pip is configured with (env, then pip.conf).

So a machine behind a TLS-intercepting proxy, or with pip pointed at a mirror or a local
wheel directory, gets the same inside the image with no dlbox configuration.

`root` is where the host's files are (a saved or mounted root replays another machine);
the paths reported are the host's own.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from urllib.parse import urlsplit

from dlbox.host import NetFacts

LIVE = Path("/")


def _at(root: Path, p: str | os.PathLike) -> Path:
    return root / str(p).lstrip("/")


def pip_config_files(env: dict[str, str]) -> list[Path]:
    """pip's config files, lowest precedence first (pip docs: 'Configuration')."""
    home = Path(env.get("HOME", "~")).expanduser()
    xdg = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(xdg)] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(env.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def pip_settings(env: dict[str, str], root: Path = LIVE) -> dict[str, str]:
    """Merged [global]/[install] settings of pip.conf files, overridden by PIP_* variables."""
    merged: dict[str, str] = {}
    for f in pip_config_files(env):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(_at(root, f))
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if cp.has_section(section):
                merged.update({k: v for k, v in cp.items(section)})
    for key in ("index-url", "extra-index-url", "find-links", "cert"):
        var = "PIP_" + key.upper().replace("-", "_")
        if env.get(var):
            merged[key] = env[var]
    return merged


def _local_dir(link: str, root: Path = LIVE) -> str | None:
    if link.startswith("file://"):
        link = urlsplit(link).path
    if "://" in link:
        return None
    p = Path(link).expanduser()
    return str(p) if _at(root, p).is_dir() else None


def _proxy(env: dict[str, str], name: str) -> str | None:
    return env.get(name.upper()) or env.get(name.lower()) or None


def listening_addresses(port: int, proc_net: str = "/proc/net") -> set[str]:
    """Local addresses (hex, as the kernel prints them) of TCP sockets listening on PORT."""
    found = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(proc_net, name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, _, hexport = fields[1].partition(":")
            if fields[3] == "0A" and int(hexport, 16) == port:   # 0A = LISTEN
                found.add(addr)
    return found


_LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}   # 127.0.0.1 and ::1


def listens_on_loopback_only(url: str | None, proc_net: str = "/proc/net") -> bool:
    """True when URL's host is loopback and the listener on its port is bound to loopback only.

    A desktop proxy on 127.0.0.1:7890 that does not 'allow LAN' cannot be reached from a
    container through host.docker.internal. (A test bind on 0.0.0.0 cannot tell: Linux refuses
    it whenever anything holds the port.)
    """
    if not url:
        return False
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        return False
    addrs = listening_addresses(parts.port, proc_net)
    return bool(addrs) and addrs <= _LOOPBACK_HEX


def observe_net(env: dict[str, str] | None = None, root: Path = LIVE) -> NetFacts:
    env = dict(os.environ if env is None else env)
    pip = pip_settings(env, root)
    ca, ca_from = None, ""
    for source, value in (
        ("PIP_CERT", env.get("PIP_CERT")),
        ("pip.conf cert", pip.get("cert")),
        ("REQUESTS_CA_BUNDLE", env.get("REQUESTS_CA_BUNDLE")),
        ("SSL_CERT_FILE", env.get("SSL_CERT_FILE")),
    ):
        if value and _at(root, value).is_file():
            ca, ca_from = value, source
            break
    index = pip.get("index-url")
    index = index if index and index.startswith(("http://", "https://")) else None
    extra = tuple(u for u in pip.get("extra-index-url", "").split() if u.startswith(("http://", "https://")))
    links = tuple(d for d in (_local_dir(x, root) for x in pip.get("find-links", "").split()) if d)
    http, https = _proxy(env, "http_proxy"), _proxy(env, "https_proxy")
    no_proxy = tuple(s.strip() for s in (_proxy(env, "no_proxy") or "").split(",") if s.strip())
    return NetFacts(
        http_proxy=http,
        https_proxy=https,
        no_proxy=no_proxy,
        ca_bundle=ca,
        ca_bundle_from=ca_from,
        pip_index=index,
        pip_extra_index=extra,
        find_links=tuple(dict.fromkeys(links)),
        proxy_loopback_only=listens_on_loopback_only(https or http, str(_at(root, "/proc/net"))),
        python_mirror=_python_mirror(env.get("UV_PYTHON_INSTALL_MIRROR")),
    )


def _python_mirror(value: str | None) -> str | None:
    """UV_PYTHON_INSTALL_MIRROR when it is an URL a build can use (spec.grammar.url), else None."""
    from dlbox.spec.grammar import url

    try:
        return url(value.strip().rstrip("/")) if value and value.strip() else None
    except ValueError:
        return None
