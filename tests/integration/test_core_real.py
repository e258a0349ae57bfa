"""The core loop against the real engine: build the example, train in it, run as the host user,
publish ports on loopback only, keep secrets out of the image, never rebuild what did not change,
and fail clearly on bad input. Every test drives the `dlbox` command like a user does."""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.proxy import AuthProxy

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
DLBOX = str(Path(sys.executable).with_name("dlbox"))
DEV_USER, OUTSIDER = "dlboxdev", "dlboxoutsider"


def dlbox(*args: str, cwd: Path | None = None, env: dict | None = None, user: str | None = None,
          timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    argv = [DLBOX, *args]
    if user:
        home = pwd.getpwnam(user).pw_dir
        keep = {k: full_env[k] for k in ("PATH", "PIP_CERT", "PIP_FIND_LINKS", "DOCKER_BUILDKIT", "LANG") if k in full_env}
        argv = ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", f"USER={user}"] + \
            [f"{k}={v}" for k, v in keep.items()] + argv
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dlbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_example(dst: Path, name: str, extra: str = "") -> Path:
    shutil.copytree(ROOT / "examples" / "digits", dst, ignore=shutil.ignore_patterns(".dlbox", "outputs"))
    text = (dst / "dlbox.toml").read_text().replace('name = "digits"', f'name = "{name}"')
    (dst / "dlbox.toml").write_text(text + extra)
    return dst


def other_address() -> str | None:
    """A non-loopback IPv4 address of this host."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


def ensure_user(name: str, docker_group: bool) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", name], check=True)
    if docker_group:
        subprocess.run(["usermod", "-aG", "docker", name], check=True)


@pytest.fixture(scope="session")
def digits(docker_engine, tmp_path_factory) -> Path:
    """examples/digits built once for the session (reuses the image if the inputs are unchanged)."""
    project = copy_example(tmp_path_factory.mktemp("digits") / "digits", "digits")
    dlbox("build", str(project))
    return project


@pytest.fixture(scope="session")
def users(docker_engine):
    if os.geteuid() != 0:
        pytest.skip("creating test users needs root")
    ensure_user(DEV_USER, docker_group=True)
    ensure_user(OUTSIDER, docker_group=False)


def test_train_in_container(digits):
    proc = dlbox("run", "-C", str(digits), "--", "python", "train.py")
    metrics = json.loads((digits / "outputs" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.8 and metrics["torch"].startswith("2.13.0")
    assert "no NVIDIA GPU" in proc.stderr, "one clear warning when the host cannot give a GPU"


def test_unchanged_project_is_not_rebuilt(digits):
    first = dlbox("build", str(digits)).stdout.strip()
    again = dlbox("build", str(digits))
    assert again.stdout.strip() == first and "built" not in again.stderr


def test_code_edit_needs_no_rebuild(digits):
    tag = dlbox("build", str(digits)).stdout.strip()
    (digits / "train.py").write_text((digits / "train.py").read_text() + "\n# an edit\n")
    assert dlbox("build", str(digits)).stdout.strip() == tag, "the code is bind-mounted, not in the image"


def test_up_exec_down_and_second_up_reuses(digits):
    try:
        first = dlbox("up", "--detach", str(digits))
        assert "started" in first.stderr
        out = dlbox("exec", "-C", str(digits), "--", "sh", "-c", "id -u; pwd; whoami; echo $HOME").stdout.split()
        assert out == [str(os.getuid()), "/workspace", "dlbox" if os.getuid() else "root", "/home/dlbox"]
        second = dlbox("up", "--detach", str(digits))
        assert "running" in second.stderr and "built" not in second.stderr
        listing = dlbox("ls").stdout
        assert "dlbox-digits-" in listing
    finally:
        dlbox("down", str(digits))
    missing = dlbox("exec", "-C", str(digits), "--", "true", check=False)
    assert missing.returncode == 1 and "no running container" in missing.stderr and "dlbox up" in missing.stderr


def test_files_written_inside_belong_to_the_invoking_user(digits, users):
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="dlbox-dev-"))      # pytest's tmp dirs are root-only
    try:
        project = copy_example(home / "mine", "digits")
        subprocess.run(["chown", "-R", DEV_USER, str(home)], check=True)
        dlbox("run", "-C", str(project), "--", "python", "train.py", user=DEV_USER)
        st = (project / "outputs" / "metrics.json").stat()
        assert st.st_uid == pwd.getpwnam(DEV_USER).pw_uid and st.st_uid != 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_socket_permission_denied_says_how_to_join_the_group(digits, users):
    proc = dlbox("ls", user=OUTSIDER, check=False)
    assert proc.returncode == 1
    assert "Permission denied on the Docker socket" in proc.stderr and "usermod -aG docker" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_engine_down_says_how_to_start_it(digits):
    proc = dlbox("build", str(digits), env={"DOCKER_HOST": "unix:///tmp/dlbox-no-such-engine.sock"}, check=False)
    assert proc.returncode == 1 and "Docker engine is not running" in proc.stderr
    assert "fix:" in proc.stderr and "dockerd" in proc.stderr and "Traceback" not in proc.stderr


def test_ports_answer_on_loopback_only(digits, tmp_path):
    port = random.randint(20000, 29999)
    extra = '\n[run.env]\nPYTHONDONTWRITEBYTECODE = "1"\n'
    project = copy_example(tmp_path / "web", "portcheck", extra)
    text = (project / "dlbox.toml").read_text().replace(
        'shm = "host"', f'shm = "host"\nports = ["{port}:8000"]\ncommand = "python -m http.server 8000"')
    (project / "dlbox.toml").write_text(text)
    try:
        dlbox("up", "--detach", str(project))
        deadline = time.monotonic() + 30
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        addr = other_address()
        if addr:
            s = socket.socket()
            s.settimeout(2)
            assert s.connect_ex((addr, port)) != 0, f"port {port} must not answer on {addr}"
            s.close()
        taken = copy_example(tmp_path / "clash", "portclash")
        (taken / "dlbox.toml").write_text((taken / "dlbox.toml").read_text().replace(
            'shm = "host"', f'shm = "host"\nports = ["{port}:8000"]'))
        clash = dlbox("up", "--detach", str(taken), check=False)
        assert clash.returncode == 1 and f"port {port} is already in use by container dlbox-portcheck-" in clash.stderr
    finally:
        dlbox("down", str(project))


def test_secrets_stay_out_of_the_image_and_proxy_with_credentials_works(digits, tmp_path):
    """A desktop-style proxy on 127.0.0.1 with a password: the build reaches PyPI through it (host
    network for build steps) and nothing of the password or the CA ends up in the image."""
    secret = f"pw{random.randint(10**8, 10**9)}"
    project = copy_example(tmp_path / "proxied", "proxied")
    # a package spec unique to this run: its layer cannot come from the cache, uv must go out
    (project / "dlbox.toml").write_text((project / "dlbox.toml").read_text().replace(
        'requirements = "requirements.txt"', f'requirements = "requirements.txt"\npip = ["six!=0.0.{random.randint(1, 10**6)}"]'))
    with AuthProxy("alice", secret) as proxy:
        url = f"http://alice:{secret}@127.0.0.1:{proxy.port}"
        env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}
        proc = dlbox("build", str(project), env=env)
        image = proc.stdout.strip()
        assert any(t.startswith("pypi.org:443") or "pythonhosted" in t for t in proxy.tunnels), proxy.tunnels
        assert proxy.refused == 0
    assert secret not in proc.stdout + proc.stderr
    history = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True).stdout
    inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True).stdout
    for text in (history, inspect):
        assert secret not in text and "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    layers = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                             "ls /run/secrets 2>/dev/null; grep -rl dlbox_ca /etc/apt 2>/dev/null; env"],
                            capture_output=True, text=True).stdout
    assert secret not in layers and "dlbox_ca" not in layers


def test_container_trusts_the_host_ca_bundle(digits):
    """HTTPS from a container fails here without the host bundle (test-world.md §4): dlbox mounts it."""
    code = "import urllib.request; print(urllib.request.urlopen('https://pypi.org/simple/six/', timeout=30).status)"
    proc = dlbox("run", "-C", str(digits), "--", "python", "-c", code)
    assert proc.stdout.strip().endswith("200")


def test_ctrl_c_during_build_leaves_no_tagged_image(docker_engine, tmp_path):
    name = f"ctrlc{random.randint(10**5, 10**6)}"
    project = copy_example(tmp_path / name, name)
    (project / "dlbox.toml").write_text((project / "dlbox.toml").read_text().replace(
        "[env]", '[env]\napt = ["gcc"]'))
    # Ctrl-C in a terminal: a runner started in the background (`cmd &` without job control)
    # passes SIGINT down as ignored, and the build would never see the signal (exit 0)
    proc = subprocess.Popen([DLBOX, "build", str(project)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        # the engine's first step line: the build is under way (a fully cached build ends about
        # a second later; the apt step's own line came moments before such a build ended)
        if line.startswith("#1 "):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in "".join(seen) + rest[1]
    images = subprocess.run(["docker", "images", "-q", "--filter", f"reference=dlbox/{name}-*"],
                            capture_output=True, text=True).stdout
    assert images.strip() == "", "an interrupted build must not leave a tag that `up` would use"


def test_base_image_that_exists_nowhere(docker_engine, tmp_path):
    project = tmp_path / "nobase"
    project.mkdir()
    (project / "dlbox.toml").write_text('[env]\nbase = "dlbox-test/no-such-image:1"\ntorch = "none"\n')
    proc = dlbox("build", str(project), check=False)
    assert proc.returncode == 1 and "dlbox-test/no-such-image:1" in proc.stderr and "cannot be pulled" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_spec_typo_through_the_cli(tmp_path):
    (tmp_path / "dlbox.toml").write_text('[run]\ngpu = "all"\n')
    proc = dlbox("build", str(tmp_path), check=False)
    assert proc.returncode == 2 and f"{tmp_path}/dlbox.toml:2: unknown key 'gpu'" in proc.stderr
    assert "did you mean 'gpus'" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_reports_gpu_skip_and_cpu_ok(digits):
    proc = dlbox("verify", "--json", str(digits))
    checks = {c["id"]: c["status"] for c in json.loads(proc.stdout)}
    for gpu_check in ("nvidia-smi", "torch-cuda", "gpu-devices", "gpu-matmul"):
        assert checks[gpu_check] == "skip"
    for cpu_check in ("torch-import", "cpu-matmul"):
        assert checks[cpu_check] == "ok"
    strict = dlbox("verify", "--json", "--require-gpu", str(digits), check=False)
    assert strict.returncode == 1


def test_render_is_buildable_by_plain_docker(digits):
    dlbox("render", str(digits))
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    argv = ["/usr/bin/docker", "build", "-q", "-f", ".dlbox/Dockerfile", "--secret",
            "id=dlbox_ca,src=/etc/ssl/certs/ca-certificates.crt", "-t", "dlbox-test/ejected:1", "."]
    proc = subprocess.run(argv, cwd=digits, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr


def test_gpu_asked_for_on_a_host_without_one_is_explained(digits, tmp_path):
    """The engine's own error (`could not select device driver "" with capabilities: [[gpu]]`,
    test-world.md §7) goes through the explainer: cause and fix, no traceback."""
    project = copy_example(tmp_path / "wantsgpu", "digits")
    (project / "dlbox.toml").write_text((project / "dlbox.toml").read_text().replace('gpus = "auto"', 'gpus = "all"'))
    proc = dlbox("run", "-C", str(project), "--", "true", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert 'could not select device driver' in proc.stderr
    assert "cause:" in proc.stderr and "fix:" in proc.stderr and "NVIDIA Container Toolkit" in proc.stderr
    verify = dlbox("verify", "--json", str(project), check=False)
    checks = json.loads(verify.stdout)
    assert verify.returncode == 1 and checks[0]["id"] == "container-start" and checks[0]["status"] == "fail"
