"""ship against the real world: registry on 127.0.0.1, a second engine behind real sshd.

Small images only (debian:bookworm-slim + a few MB); the large-image figures are in
benchmarks/ship.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dlbox.engine.docker import Docker

pytestmark = [pytest.mark.docker, pytest.mark.remote]

WORLD = os.environ.get("DLBOX_WORLD")
if not WORLD or not Path(WORLD, "env").is_file() or not os.environ.get("DLBOX_TEST_REMOTE"):
    if os.environ.get("CI"):   # scripts/test.sh brings the world up: its absence in CI is a failure
        raise RuntimeError("the SSH/registry test world is not up (scripts/test.sh starts it)")
    pytest.skip("the test world is not up: WORLD_REMOTE=1 bash scripts/world.sh up && source /tmp/dlbox-world/env",
                allow_module_level=True)

DLBOX = Path(__file__).resolve().parents[2] / ".venv/bin/dlbox"
DROP_LINK = Path(__file__).resolve().parents[1] / "helpers" / "drop_link.py"
REMOTE = os.environ["DLBOX_TEST_REMOTE"]
LOCAL = Docker()
RDOCKER = Docker(host=f"unix://{os.environ['DLBOX_TEST_REMOTE_SOCKET']}")
BASE = "debian:bookworm-slim"


def _build(tag: str, token: str, mb: int = 3) -> str:
    dockerfile = (f"FROM {BASE}\nRUN head -c {mb * 1000000} /dev/urandom > /data-{token}\n"
                  f"RUN echo {token} > /token\n")
    env = {"DOCKER_BUILDKIT": "1"}
    Docker(binary="/usr/bin/docker").run(["build", "-q", "-t", tag, "-"], input=dockerfile, env=env, timeout=300)
    return tag


@pytest.fixture(scope="session")
def images():
    if not LOCAL.image_exists(BASE):
        from dlbox.engine.bootstrap import bootstrap

        bootstrap(LOCAL, BASE, say=lambda m: None)   # no registry here: made from Debian packages
    return {"v1": _build("dlbox-test/ship:v1", "one"), "v2": _build("dlbox-test/ship:v2", "two"),
            "big": _build("dlbox-test/ship:big", "big", mb=4)}


@pytest.fixture()
def env(tmp_path):
    e = dict(os.environ, DLBOX_SSH_CONFIG=os.environ["DLBOX_TEST_SSH_CONFIG"],
             DLBOX_REMOTE_STAGING=str(tmp_path / "staging"))
    return e


def _rm_remote(*refs: str) -> None:
    RDOCKER.run(["rmi", "-f", *refs], check=False, timeout=60)


def _ensure_remote_base() -> None:
    if not RDOCKER.image_exists(BASE):
        save = LOCAL.popen(["save", BASE], stdout=subprocess.PIPE)
        RDOCKER.run(["load"], input=save.stdout.read(), timeout=300)
        save.wait()


def dlbox(*args: str, env: dict, timeout: float = 300, drop_after: int | None = None) -> subprocess.CompletedProcess:
    """The dlbox CLI; with `drop_after`, through tests/helpers/drop_link.py (the link drops after N bytes)."""
    argv = [str(DLBOX)] if drop_after is None else [str(DLBOX.with_name("python")), str(DROP_LINK), str(drop_after)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _json(p: subprocess.CompletedProcess) -> dict:
    import json

    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# -- export / import ------------------------------------------------------------------------

def test_export_import_roundtrip_and_damage(images, tmp_path, env):
    f = tmp_path / "v1.tar.zst"
    p = dlbox("export", "--image", images["v1"], "-o", str(f), env=env)
    assert p.returncode == 0, p.stderr
    assert f.is_file() and Path(str(f) + ".sha256").read_text().split()[1] == "v1.tar.zst"
    p = dlbox("import", str(f), env=env)
    assert p.returncode == 0 and "loaded dlbox-test/ship:v1" in p.stdout, p.stdout + p.stderr

    trunc = tmp_path / "trunc.tar.zst"
    trunc.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    Path(str(trunc) + ".sha256").write_text(Path(str(f) + ".sha256").read_text())
    p = dlbox("import", str(trunc), env=env)
    assert p.returncode == 1 and "damaged or truncated" in p.stderr and "Traceback" not in p.stderr

    Path(str(f) + ".sha256").write_text("0" * 64 + "  v1.tar.zst\n")
    p = dlbox("import", str(f), env=env)
    assert p.returncode == 1 and "does not match" in p.stderr and "Traceback" not in p.stderr


def test_export_unknown_image(env):
    p = dlbox("export", "--image", "dlbox-test/no-such:image", env=env)
    assert p.returncode == 1 and "no image 'dlbox-test/no-such:image'" in p.stderr and "Traceback" not in p.stderr


# -- push -----------------------------------------------------------------------------------

def test_push_to_plain_http_registry(images, env):
    reg = os.environ["DLBOX_TEST_REGISTRY"]
    p = dlbox("push", "--image", images["v1"], "--registry", f"{reg}/ci", env=env)
    assert p.returncode == 0, p.stderr
    assert f"pushed {reg}/ci/dlbox-test/ship:v1@sha256:" in p.stdout
    import urllib.request

    with urllib.request.urlopen(f"http://{reg}/v2/ci/dlbox-test/ship/tags/list", timeout=10) as r:
        assert b"v1" in r.read()


# -- deploy ---------------------------------------------------------------------------------

def test_deploy_sends_only_missing_layers_then_nothing(images, env):
    _ensure_remote_base()
    _rm_remote(images["v1"], images["v2"])
    r1 = _json(dlbox("deploy", "--image", images["v1"], REMOTE, "--json", env=env))
    assert r1["layers_present"] == 1 and r1["layers_sent"] == 2
    assert 3_000_000 < r1["bytes_sent"] < 3_200_000 < r1["image_bytes"]
    out = RDOCKER.run(["run", "--rm", images["v1"], "cat", "/token"]).stdout.decode().strip()
    assert out == "one"
    assert RDOCKER.inspect("image", images["v1"])["Id"] == LOCAL.inspect("image", images["v1"])["Id"]
    r2 = _json(dlbox("deploy", "--image", images["v1"], REMOTE, "--json", env=env))
    assert r2["already_there"] and r2["bytes_sent"] == 0
    staging = Path(env["DLBOX_REMOTE_STAGING"])
    assert not list(staging.glob("*.tar*")), "staged layers are removed once loaded"
    assert _partials(r1["image_id"]) == [], "the partial images loaded on the way are gone"


def _partials(image_id: str) -> list[str]:
    """Partial images (ship/load.py) the server still holds for IMAGE_ID."""
    out = RDOCKER.run(["image", "ls", "-q", "--no-trunc", "--filter", f"label=org.dlbox.deploy-partial={image_id}"])
    return out.stdout.decode().split()


def test_deploy_loads_while_sending_and_resumes_from_what_was_loaded(env):
    """Two 2 MB layers; the link drops inside the second. What arrived (the first layer staged,
    or already loaded as a partial image) is not sent again, and no partial image is left."""
    _ensure_remote_base()
    dockerfile = (f"FROM {BASE}\nRUN head -c 2000000 /dev/urandom > /a\nRUN head -c 2000000 /dev/urandom > /b\n"
                  "RUN echo two-layers > /token\n")
    Docker(binary="/usr/bin/docker").run(["build", "-q", "-t", "dlbox-test/ship:two", "-"], input=dockerfile,
                                         env={"DOCKER_BUILDKIT": "1"}, timeout=300)
    _rm_remote("dlbox-test/ship:two")
    p = dlbox("deploy", "--image", "dlbox-test/ship:two", REMOTE, "--json", env=env, drop_after=3_000_000)
    assert p.returncode == 1 and "resumes" in p.stderr and "Traceback" not in p.stderr, p.stderr
    r = _json(dlbox("deploy", "--image", "dlbox-test/ship:two", REMOTE, "--json", env=env))
    assert r["bytes_sent"] < 2_500_000, "the first layer and the start of the second are not sent again"
    assert RDOCKER.run(["run", "--rm", "dlbox-test/ship:two", "cat", "/token"]).stdout.decode().strip() == "two-layers"
    assert _partials(r["image_id"]) == []
    assert r["phases"]["loads"] >= 1
    LOCAL.run(["rmi", "dlbox-test/ship:two"], check=False)
    _rm_remote("dlbox-test/ship:two")


def test_deploy_resumes_after_dropped_connection(images, env):
    _ensure_remote_base()
    _rm_remote(images["v2"])
    p = dlbox("deploy", "--image", images["v2"], REMOTE, "--json", env=env, drop_after=1_500_000)
    assert p.returncode == 1 and "connection" in p.stderr and "resumes" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    parts = list(Path(env["DLBOX_REMOTE_STAGING"]).glob("*.part"))
    assert parts and 0 < parts[0].stat().st_size <= 1_500_000
    r = _json(dlbox("deploy", "--image", images["v2"], REMOTE, "--json", env=env))
    assert r["resumed_bytes"] == parts[0].stat().st_size if parts[0].exists() else r["resumed_bytes"] > 0
    assert r["bytes_sent"] < 3_000_000 and r["bytes_sent"] + r["resumed_bytes"] > 3_000_000
    assert RDOCKER.run(["run", "--rm", images["v2"], "cat", "/token"]).stdout.decode().strip() == "two"


@pytest.fixture()
def tiny_staging(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    d = tmp_path / "tiny"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dlbox-test-tiny", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_deploy_disk_full_cleans_up_and_keeps_old_image(images, env, tiny_staging):
    _ensure_remote_base()
    _json(dlbox("deploy", "--image", images["v1"], REMOTE, "--json", env=env))  # the "old" image
    _rm_remote(images["big"])
    p = dlbox("deploy", "--image", images["big"], REMOTE, env=dict(env, DLBOX_REMOTE_STAGING=str(tiny_staging)))
    assert p.returncode == 1 and "ran out of disk space" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert list(tiny_staging.iterdir()) == []
    assert RDOCKER.run(["run", "--rm", images["v1"], "cat", "/token"]).stdout.decode().strip() == "one"
    assert not RDOCKER.image_exists(images["big"])


def test_deploy_unreachable_host_fails_fast(images, env):
    t0 = time.monotonic()
    p = dlbox("deploy", "--image", images["v1"], "root@127.0.0.1:1", env=env, timeout=60)
    assert p.returncode == 1 and "Cannot reach root@127.0.0.1:1 over SSH" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and time.monotonic() - t0 < 15


def test_deploy_host_without_docker(images, env):
    p = dlbox("deploy", "--image", images["v1"], REMOTE, env=dict(env, DLBOX_REMOTE_DOCKER="/nonexistent/docker"))
    assert p.returncode == 1 and "Docker is not installed" in p.stderr and "dlbox setup docker" in p.stderr


def test_deploy_unknown_image(env):
    p = dlbox("deploy", "--image", "dlbox-test/no-such:image", REMOTE, env=env)
    assert p.returncode == 1 and "no image" in p.stderr and "Traceback" not in p.stderr


# -- remote facts, snapshot ------------------------------------------------------------------

def test_remote_facts(monkeypatch):
    from dlbox.engine.remote import remote_docker
    from dlbox.host.remote import observe_server

    monkeypatch.setenv("DLBOX_SSH_CONFIG", os.environ["DLBOX_TEST_SSH_CONFIG"])
    info = remote_docker(REMOTE).info()
    assert info["DockerRootDir"].startswith(os.environ["DLBOX_WORLD"])
    host = observe_server(REMOTE, info)
    assert host.driver is None  # no NVIDIA driver in the test world
    assert host.limits.memlock_hard is None or host.limits.memlock_hard > 0
    assert host.server == REMOTE and host.home and host.engine.docker_root == info["DockerRootDir"]


def test_snapshot_labels_origin(images):
    from dlbox.ship.snapshot import snapshot

    name = "dlbox-test-ship-snapshot"
    LOCAL.run(["rm", "-f", name], check=False)
    LOCAL.run(["run", "-d", "--name", name, images["v1"], "sh", "-c", "echo hi > /made-by-hand; sleep 60"])
    try:
        time.sleep(0.3)
        r = snapshot(LOCAL, name, "dlbox-test/ship:snap")
        labels = LOCAL.inspect("image", "dlbox-test/ship:snap")["Config"]["Labels"]
        assert labels["org.dlbox.snapshot.container"] == name
        assert labels["org.dlbox.snapshot.image"] == images["v1"]
        assert r.id.startswith("sha256:")
        out = LOCAL.run(["run", "--rm", "dlbox-test/ship:snap", "cat", "/made-by-hand"]).stdout.decode().strip()
        assert out == "hi"
    finally:
        LOCAL.run(["rm", "-f", name], check=False)


def test_deploy_without_store_access_uses_docker_save(images, env, monkeypatch):
    """Non-root users cannot read the engine's layer store: one `docker save` is the fallback."""
    from dlbox.ship import deploy as deploy_mod
    from dlbox.ship import layers, send

    for k in ("DLBOX_SSH_CONFIG", "DLBOX_REMOTE_STAGING"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.setattr(layers, "_layerdb_root", lambda _d: None)
    monkeypatch.setattr(send, "config_bytes", lambda _d, _i: None)
    _ensure_remote_base()
    _rm_remote(images["v2"])
    r = deploy_mod.deploy(LOCAL, images["v2"], REMOTE)
    assert r.layers_sent == 2 and r.bytes_sent < 3_200_000
    assert RDOCKER.run(["run", "--rm", images["v2"], "cat", "/token"]).stdout.decode().strip() == "two"


def test_deploy_falls_back_to_docker_save_when_the_store_gives_wrong_bytes(images, env, monkeypatch):
    """The server's hash is the only check of what the store reader produced: a layer it rejects
    is read again with `docker save` and the deploy still succeeds."""
    from dlbox.ship import deploy as deploy_mod
    from dlbox.ship import layers

    for k in ("DLBOX_SSH_CONFIG", "DLBOX_REMOTE_STAGING"):
        monkeypatch.setenv(k, env[k])
    real = layers.FastReader.stream

    def flipped(self, chain_id, spans=False):
        for i, chunk in enumerate(real(self, chain_id, spans)):
            yield bytes([chunk[0] ^ 1]) + chunk[1:] if i == 0 else chunk   # the first tar header

    monkeypatch.setattr(layers.FastReader, "stream", flipped)
    _ensure_remote_base()
    _rm_remote(images["v2"])
    notes: list[str] = []
    r = deploy_mod.deploy(LOCAL, images["v2"], REMOTE, say=notes.append)
    assert r.layers_sent == 2 and any("docker save" in n for n in notes), notes
    assert RDOCKER.run(["run", "--rm", images["v2"], "cat", "/token"]).stdout.decode().strip() == "two"
