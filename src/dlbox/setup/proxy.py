"""`dlbox setup proxy URL`: one proxy for the daemon, the client and apt, with a sane NO_PROXY.

The shell's own variables are the user's business (their ~/.bashrc); doctor reports them.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from dlbox.errors import HostError
from dlbox.host.facts import Facts
from dlbox.host.sysroot import SysRoot
from dlbox.setup.config import DAEMON_JSON, client_config_path, json_change, text_change
from dlbox.setup.files import set_apt_option, set_systemd_env
from dlbox.setup.steps import Command, Options, Step

APT_PROXY_FILE = "/etc/apt/apt.conf.d/95dlbox-proxy"
DROPIN = "/etc/systemd/system/docker.service.d/http-proxy.conf"
# gradio and every local server break when localhost goes through the proxy.
DEFAULT_NO_PROXY = ("localhost", "127.0.0.1", "::1", "host.docker.internal")


def no_proxy_list(extra: str | None) -> str:
    items = list(DEFAULT_NO_PROXY) + [e.strip() for e in (extra or "").split(",") if e.strip()]
    return ",".join(dict.fromkeys(items))


def wsl_hint(sysroot: SysRoot) -> str:
    host = (sysroot.read_text("/etc/hostname") or "").strip() or "$(hostname)"
    return f"http://{host}.local:7890"


def validate(url: str | None, sysroot: SysRoot, facts: Facts) -> str:
    if not url:
        example = wsl_hint(sysroot) if facts.wsl == "WSL2" else "http://proxy.example.com:3128"
        note = " (under WSL2 the Windows host answers by name as HOSTNAME.local)" if facts.wsl == "WSL2" else ""
        raise HostError(f"setup proxy needs the proxy URL{note}", fix=f"dlbox setup proxy {example}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise HostError(f"not a proxy URL: {url}", fix="give it as http://HOST:PORT")
    return url


def daemon_supports_json_proxies(facts: Facts) -> bool:
    # daemon.json "proxies" arrived in Docker Engine 23.0.
    return bool(facts.engine_version and facts.engine_version >= (23,))


def plan_proxy(sysroot: SysRoot, opts: Options) -> Step:
    facts = Facts(sysroot)
    url = validate(opts.url, sysroot, facts)
    no_proxy = no_proxy_list(opts.no_proxy)
    has_password = bool(urlsplit(url).password)
    secret_mode = 0o600 if has_password else 0o644  # new files holding a password
    step = Step("proxy: daemon, client, apt")
    if facts.wsl == "WSL2" and ".local" not in url:
        step.notes.append(f"WSL2: the Windows host's proxy is reachable by name, e.g. {wsl_hint(sysroot)}")

    if daemon_supports_json_proxies(facts):
        def daemon_edit(d: dict) -> None:
            d.setdefault("proxies", {}).update({"http-proxy": url, "https-proxy": url, "no-proxy": no_proxy})

        daemon = json_change(sysroot, DAEMON_JSON, daemon_edit)
    else:
        daemon = text_change(sysroot, DROPIN, lambda t: set_systemd_env(
            t, {"HTTP_PROXY": url, "HTTPS_PROXY": url, "NO_PROXY": no_proxy}), secret_mode)
    daemon = replace(daemon, private=has_password and daemon.changed)
    step.actions.append(daemon)

    def client_edit(d: dict) -> None:
        d.setdefault("proxies", {}).setdefault("default", {}).update(
            {"httpProxy": url, "httpsProxy": url, "noProxy": no_proxy})

    step.actions.append(replace(json_change(sysroot, client_config_path(sysroot), client_edit, mode=0o600),
                                private=has_password))
    step.actions.append(replace(text_change(sysroot, APT_PROXY_FILE, lambda t: set_apt_option(
        set_apt_option(t, "Acquire::http::Proxy", url), "Acquire::https::Proxy", url), secret_mode),
        private=has_password))

    if daemon.changed:
        if facts.systemd:
            step.actions += [Command(("systemctl", "daemon-reload")),
                             Command(("systemctl", "restart", "docker"), "the daemon reads its proxy at start")]
        else:
            step.notes.append("no systemd here: restart dockerd with HTTP_PROXY/HTTPS_PROXY/NO_PROXY in its environment")

    def verify() -> list[str]:
        left = [a for a in plan_proxy(sysroot, opts).actions if getattr(a, "changed", False)]
        return [f"{a.host_path} still differs" for a in left]

    step.verify = verify
    return step
