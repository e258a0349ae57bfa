"""Secrets (issue 11, items 5-10, 16): an index token, an HF_TOKEN, a proxy password and a
registry password are looked for everywhere they used to leak: `docker history`, `docker image
inspect`, `docker inspect` of containers, labels, `ps` during build and run, what dlbox prints,
the files it renders, snapshots and baked images."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time

import pytest

from tests.helpers.proxy import AuthProxy
from tests.security.conftest import DLBOX, dlbox, docker, new_project, run_as, secret_value

pytestmark = [pytest.mark.docker]


class PsWatcher:
    """Samples every process's argv while a command runs (what `ps -ef` shows other users)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.2)

    def __enter__(self) -> "PsWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def text(self) -> str:
        return "\n".join(self.seen)


def _everything_about(image: str) -> str:
    return docker("history", "--no-trunc", image) + docker("image", "inspect", image)


def test_index_token_reaches_the_build_only_as_a_secret(dev):
    token = secret_value("pypitok")
    project = new_project(dev, "secindex")
    text = (project / "dlbox.toml").read_text()
    (project / "dlbox.toml").write_text(text + f'\n[net]\npip_index = "https://__token__:{token}@pypi.org/simple"\n')
    with PsWatcher() as ps:
        proc = dlbox(dev.name, "build", str(project))
    image = proc.stdout.strip()
    assert token not in proc.stdout + proc.stderr
    assert token not in ps.text(), "the token was on a command line during the build"
    assert token not in _everything_about(image)
    assert token not in (project / ".dlbox" / "Dockerfile").read_text()
    assert "/run/secrets/dlbox_index_0" in (project / ".dlbox" / "Dockerfile").read_text()
    plan = dlbox(dev.name, "plan", "--json", str(project)).stdout
    assert token not in plan and "__token__:***@pypi.org" in plan
    leftovers = run_as(dev.name, ["sh", "-c", "grep -rl " + token + " ~/.cache/dlbox 2>/dev/null; true"]).stdout
    assert not leftovers.strip(), f"the token was left in {leftovers}"


def test_run_secrets_are_files_exported_by_the_entrypoint(built, dev):
    token = secret_value("hf_")
    text = (built / "dlbox.toml").read_text()
    (built / "dlbox.toml").write_text(text + '\nsecrets = ["HF_TOKEN"]\n')     # into the example's [run]
    try:
        with PsWatcher() as ps:
            up = dlbox(dev.name, "up", "--detach", str(built), env={"HF_TOKEN": token})
            inside = dlbox(dev.name, "exec", "-C", str(built), "--", "sh", "-c",
                           'printf "%s" "$HF_TOKEN"; ls -l /run/secrets/HF_TOKEN', env={"HF_TOKEN": "other"})
            once = dlbox(dev.name, "run", "-C", str(built), "--", "sh", "-c", 'printf "%s" "$HF_TOKEN"',
                         env={"HF_TOKEN": token})
        assert inside.stdout.startswith(token), "the container sees the secret as $HF_TOKEN"
        assert once.stdout == token
        assert token not in ps.text()
        for p in (up, inside, once):
            assert token not in p.stderr
        name = docker("ps", "--filter", f"label=org.dlbox.project_dir={built}", "--format", "{{.Names}}").split()[0]
        info = docker("inspect", name)
        assert token not in info
        image = json.loads(info)[0]["Config"]["Image"]
        assert token not in _everything_about(image)
        snap = dlbox(dev.name, "snapshot", str(built), "--tag", f"dlbox/secsnap:{dev.uid}").stdout
        assert token not in _everything_about(f"dlbox/secsnap:{dev.uid}"), snap
        leftovers = run_as(dev.name, ["sh", "-c", f"grep -rl {token} ~/.cache/dlbox 2>/dev/null; true"]).stdout
        for f in leftovers.split():
            st = os.stat(f)
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == dev.uid, f
    finally:
        dlbox(dev.name, "down", str(built), check=False)
        docker("rmi", f"dlbox/secsnap:{dev.uid}", check=False)
        (built / "dlbox.toml").write_text(text)
    left = run_as(dev.name, ["sh", "-c", f"grep -rl {token} ~/.cache/dlbox 2>/dev/null; true"]).stdout
    assert not left.strip(), "down removes the container's secret files"


def test_run_env_values_stay_out_of_labels_history_and_ps(built, dev):
    value = secret_value("envval")
    text = (built / "dlbox.toml").read_text()
    (built / "dlbox.toml").write_text(text + f'\nenv = {{MY_SETTING = "{value}"}}\n')
    try:
        with PsWatcher() as ps:
            build = dlbox(dev.name, "build", str(built))
            proc = dlbox(dev.name, "run", "-C", str(built), "--", "sh", "-c", 'sleep 1; printf "%s" "$MY_SETTING"')
        assert proc.stdout == value
        assert value not in ps.text()
        assert value not in _everything_about(build.stdout.strip())
    finally:
        (built / "dlbox.toml").write_text(text)


def test_proxy_password_is_in_no_inspect_and_no_snapshot(built, dev):
    secret = secret_value("proxypw")
    with AuthProxy("alice", secret, bind="0.0.0.0") as proxy:
        url = f"http://alice:{secret}@127.0.0.1:{proxy.port}"
        env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}
        try:
            with PsWatcher() as ps:
                up = dlbox(dev.name, "up", "--detach", str(built), env=env)
                inside = dlbox(dev.name, "exec", "-C", str(built), "--", "sh", "-c", 'printf "%s" "$HTTPS_PROXY"',
                               env=env)
            assert secret in inside.stdout, "processes in the container still get the proxy"
            assert secret not in up.stdout + up.stderr and secret not in ps.text()
            name = docker("ps", "--filter", f"label=org.dlbox.project_dir={built}", "--format", "{{.Names}}").split()[0]
            assert secret not in docker("inspect", name)
            dlbox(dev.name, "snapshot", str(built), "--tag", f"dlbox/secproxy:{dev.uid}", env=env)
            assert secret not in _everything_about(f"dlbox/secproxy:{dev.uid}")
            out = docker("run", "--rm", "--entrypoint", "env", f"dlbox/secproxy:{dev.uid}")
            assert secret not in out
        finally:
            dlbox(dev.name, "down", str(built), check=False)
            docker("rmi", f"dlbox/secproxy:{dev.uid}", check=False)


def test_rendered_files_hold_no_secret(built, dev):
    secret = secret_value("renderpw")
    token = secret_value("hf_")
    text = (built / "dlbox.toml").read_text()
    (built / "dlbox.toml").write_text(text + '\nsecrets = ["HF_TOKEN"]\n')
    url = f"http://alice:{secret}@10.9.9.9:3128"
    env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "HF_TOKEN": token}
    try:
        dlbox(dev.name, "compose", "--force", str(built), env=env)
        dlbox(dev.name, "devcontainer", str(built), env=env)
        for f in [built / "compose.yaml", built / ".devcontainer" / "devcontainer.json",
                  *(built / ".dlbox").glob("Dockerfile*")]:
            body = f.read_text()
            assert secret not in body and token not in body, f
        compose = (built / "compose.yaml").read_text()
        assert "no-new-privileges" in compose and '"ALL"' in compose
    finally:
        (built / "dlbox.toml").write_text(text)


def test_setup_proxy_keeps_the_password_in_0600_files(tmp_path):
    (tmp_path / "etc/docker").mkdir(parents=True)
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.write_text('{"log-driver": "json-file"}')
    daemon.chmod(0o644)
    # files that exist already, readable by all: a password written into them must make them 0600
    for f in ("etc/systemd/system/docker.service.d/http-proxy.conf", "etc/apt/apt.conf.d/95dlbox-proxy"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("# kept\n")
        (tmp_path / f).chmod(0o644)
    (tmp_path / "root/.docker").mkdir(parents=True)
    (tmp_path / ".dlbox").mkdir()
    (tmp_path / ".dlbox/env.json").write_text(json.dumps({"HOME": "/root"}))
    secret = secret_value("setuppw")
    proc = subprocess.run([DLBOX, "setup", "proxy", f"http://u:{secret}@10.0.0.1:3128", "--yes", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert secret not in proc.stdout + proc.stderr
    holding = [p for p in tmp_path.rglob("*") if p.is_file() and secret in p.read_text(errors="replace")]
    assert holding, "the proxy was written somewhere"
    for p in holding:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{p} holds the password and others can read it"


def test_push_never_echoes_the_registry_password(built, dev):
    secret = secret_value("regpw")
    image = dlbox(dev.name, "build", str(built)).stdout.strip()
    with PsWatcher() as ps:
        proc = dlbox(dev.name, "push", "--image", image, "--registry", f"bob:{secret}@127.0.0.1:5000/sec", check=False)
    out = proc.stdout + proc.stderr
    assert secret not in out and secret not in ps.text()
    assert proc.returncode == 0, out
    assert "127.0.0.1:5000/sec/" in out
    cfg = run_as(dev.name, ["sh", "-c", f"grep -rl {secret} ~/.docker ~/.cache/dlbox 2>/dev/null; true"]).stdout
    assert not cfg.strip(), "the password was kept on disk"


@pytest.mark.parametrize("key, value", [
    ("apt", '["x\\nUSER 0\\nRUN touch /pwned"]'),
    ("apt", '["curl; touch /pwned"]'),
    ("pip", '["numpy\\nUSER root"]'),
    ("pip", '["six; touch /pwned #"]'),
])
def test_spec_values_cannot_add_instructions(dev, key, value):
    project = new_project(dev, "secinject")
    text = (project / "dlbox.toml").read_text().replace("[env]\n", f"[env]\n{key} = {value}\n", 1)
    (project / "dlbox.toml").write_text(text)
    proc = dlbox(dev.name, "build", str(project), check=False)
    assert proc.returncode == 2 and "dlbox.toml:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (project / ".dlbox" / "Dockerfile").exists()


def test_baked_image_holds_no_credential_files(dev):
    """Item 8 (implemented with the real-projects work): .env, private keys and credential files
    never reach the image `build --bake` makes for export/push/deploy."""
    project = new_project(dev, "secbake")
    (project / ".env").write_text("HF_TOKEN=hf_secret_in_dotenv\n")
    (project / ".ssh").mkdir()
    (project / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    (project / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\nx\n")
    (project / ".netrc").write_text("machine x login y password z\n")
    subprocess.run(["chown", "-R", f"{dev.uid}:{dev.gid}", str(project)], check=True)
    image = dlbox(dev.name, "build", "--bake", str(project)).stdout.strip().splitlines()[-1]
    listing = docker("run", "--rm", "--entrypoint", "sh", image, "-c", "cd /workspace && find . -maxdepth 3")
    for f in (".env", "id_ed25519", "id_rsa", ".netrc"):
        assert f not in listing, f"{f} was baked into {image}"
    assert "train.py" in listing
