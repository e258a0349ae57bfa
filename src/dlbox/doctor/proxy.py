"""Proxies at the four layers the tutorials configure, and whether they agree.

shell: http_proxy/https_proxy/no_proxy; apt: Acquire::http(s)::Proxy; daemon: the systemd
drop-in's Environment= or daemon.json "proxies"; client: ~/.docker/config.json "proxies".
Every URL shown goes through `mask_secrets`: a proxy password is never printed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from dlbox.host.facts import DAEMON_JSON, Facts
from dlbox.redact import mask_secrets
from dlbox.report import Check

APT_FILES = ("/etc/apt/apt.conf",)
DROPIN_DIR = "/etc/systemd/system/docker.service.d"
_APT_PROXY = re.compile(r'^\s*Acquire::(https?)::Proxy\s+"([^"]*)"\s*;', re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Layer:
    name: str
    where: str
    http: str | None = None
    https: str | None = None
    no_proxy: str | None = None  # None: this layer has no such setting (apt)

    @property
    def url(self) -> str | None:
        return self.http or self.https


def proxy_key(url: str) -> tuple[str, int | None]:
    """What must match across layers: host and port. `HOST.local` and `HOST` are the same
    Windows host under WSL2 (the tutorials use both forms for the same proxy)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower().removesuffix(".local")
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port


def shell_layer(facts: Facts) -> Layer:
    env = facts.sys.env()

    def get(name: str) -> str | None:
        return env.get(name) or env.get(name.upper()) or None

    return Layer("shell", "environment", get("http_proxy"), get("https_proxy"), get("no_proxy") or "")


def apt_layer(facts: Facts) -> Layer:
    found: dict[str, str] = {}
    files = list(APT_FILES) + facts.sys.glob("/etc/apt/apt.conf.d", "*")
    where = []
    for f in files:
        text = facts.sys.read_text(f) or ""
        for scheme, url in _APT_PROXY.findall(text):
            found[scheme.lower()] = url  # later files win, as in apt
            where.append(f)
    return Layer("apt", ", ".join(dict.fromkeys(where)) or "apt.conf", found.get("http"), found.get("https"))


def daemon_layer(facts: Facts) -> Layer:
    proxies = facts.daemon_json.get("proxies") or {}
    if proxies:
        return Layer("daemon", f"{DAEMON_JSON} proxies", proxies.get("http-proxy"), proxies.get("https-proxy"),
                     proxies.get("no-proxy") or "")
    env: dict[str, str] = {}
    where = []
    for f in facts.sys.glob(DROPIN_DIR, "*.conf"):
        for line in (facts.sys.read_text(f) or "").splitlines():
            if not line.strip().startswith("Environment="):
                continue
            where.append(f)
            for item in shlex.split(line.split("=", 1)[1]):
                k, _, v = item.partition("=")
                env[k.upper()] = v
    if where:
        return Layer("daemon", ", ".join(dict.fromkeys(where)), env.get("HTTP_PROXY"), env.get("HTTPS_PROXY"),
                     env.get("NO_PROXY", ""))
    info = facts.info or {}
    # docker info shows what the running daemon uses, even when set some other way.
    return Layer("daemon", "docker info", info.get("HttpProxy") or None, info.get("HttpsProxy") or None,
                 info.get("NoProxy") or "")


def client_layer(facts: Facts) -> Layer:
    d = (facts.client_config.get("proxies") or {}).get("default") or {}
    return Layer("client", f"{facts.client_config_path} proxies", d.get("httpProxy"), d.get("httpsProxy"),
                 d.get("noProxy") or "")


def layers(facts: Facts) -> list[Layer]:
    return [shell_layer(facts), apt_layer(facts), daemon_layer(facts), client_layer(facts)]


def check_proxies(facts: Facts) -> Check:
    ls = layers(facts)
    have = [lay for lay in ls if lay.url]
    if not have:
        return Check("proxy", "ok", "no proxy at any layer (shell, apt, daemon, client)")
    shown = "; ".join(f"{lay.name}={mask_secrets(lay.url)}" for lay in have)
    keys = {proxy_key(u) for lay in have for u in (lay.http, lay.https) if u}
    url = mask_secrets(have[0].url or "")
    if len(keys) > 1:
        return Check("proxy", "warn", f"the layers disagree: {shown}", f"dlbox setup proxy {url}   (one URL for all four layers)")
    missing = [lay.name for lay in ls if not lay.url]
    if missing:
        return Check("proxy", "warn", f"{shown}; none in {', '.join(missing)} (those will not use the proxy)",
                     f"dlbox setup proxy {url}")
    return Check("proxy", "ok", f"all four layers use {url}")


def check_no_proxy(facts: Facts) -> Check:
    bad = []
    for lay in layers(facts):
        if not lay.url or lay.no_proxy is None:
            continue
        entries = {e.strip().lower() for e in lay.no_proxy.split(",")}
        lacking = [h for h in ("localhost", "127.0.0.1") if h not in entries]
        if lacking:
            bad.append(f"{lay.name} lacks {', '.join(lacking)}")
    if not any(lay.url for lay in layers(facts)):
        return Check("proxy.no-proxy", "skip", "no proxy")
    if bad:
        # gradio and other local servers are reached through the proxy otherwise, and fail.
        return Check("proxy.no-proxy", "warn", "NO_PROXY " + "; ".join(bad) + " (gradio and local ports break)",
                     "dlbox setup proxy URL   (sets NO_PROXY=localhost,127.0.0.1,::1,host.docker.internal)")
    return Check("proxy.no-proxy", "ok", "NO_PROXY covers localhost and 127.0.0.1 at every layer")


def check_secret_files(facts: Facts) -> Check:
    """Proxy passwords in files others can read (a daemon.json written before dlbox made it 0600)."""
    files = [DAEMON_JSON, *facts.sys.glob(DROPIN_DIR, "*.conf"), *APT_FILES,
             *facts.sys.glob("/etc/apt/apt.conf.d", "*"), facts.client_config_path]
    exposed = []
    for f in dict.fromkeys(files):
        text = facts.sys.read_text(f) or ""
        if mask_secrets(text) == text:
            continue                      # no password in it
        try:
            mode = facts.sys.path(f).stat().st_mode
        except OSError:
            continue
        if mode & 0o077:
            exposed.append(f)
    if not exposed:
        return Check("proxy.secret-files", "ok", "no proxy password in a file others can read")
    return Check("proxy.secret-files", "warn", f"a proxy password is readable by other users in {', '.join(exposed)}",
                 f"sudo chmod 600 {' '.join(exposed)}")
