"""The stream load on the real engines: the first missing layers, up to the biggest, go straight
into the server's `docker load` while they cross (ship/send.stream_load), with a copy kept for
a resume. Real deploys stream only from 32 MB on; these tests lower that bar to send the test
world's 3-4 MB images the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbox import ssh
from dlbox.errors import HostError
from dlbox.ship import deploy as deploy_mod
from dlbox.ship import layers
from tests.helpers.drop_link import _DroppingPipe
from tests.integration.test_ship_real import (  # noqa: F401  (fixtures: images, env)
    LOCAL,
    RDOCKER,
    REMOTE,
    _ensure_remote_base,
    _partials,
    _rm_remote,
    env,
    images,
    tiny_staging,
)

pytestmark = [pytest.mark.docker, pytest.mark.remote]


@pytest.fixture()
def streaming(monkeypatch, env):
    for k in ("DLBOX_SSH_CONFIG", "DLBOX_REMOTE_STAGING"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.setattr(deploy_mod, "STREAM_ABOVE", 1 << 20)
    _ensure_remote_base()
    return Path(env["DLBOX_REMOTE_STAGING"])


def _token(ref: str) -> str:
    return RDOCKER.run(["run", "--rm", ref, "cat", "/token"]).stdout.decode().strip()


def _drop_after(monkeypatch, limit: int) -> None:
    """The link drops once LIMIT bytes went to the server (tests/helpers/drop_link.py)."""
    real = ssh.popen
    _DroppingPipe.sent = 0

    def popen(*args, **kw):
        proc = real(*args, **kw)
        if proc.stdin is not None:
            proc.stdin = _DroppingPipe(proc, limit)
        return proc

    monkeypatch.setattr(ssh, "popen", popen)


def test_the_biggest_layer_is_loaded_as_it_arrives_and_nothing_is_left(images, streaming):
    _rm_remote(images["v1"])
    r = deploy_mod.deploy(LOCAL, images["v1"], REMOTE)
    assert r.layers_sent == 2 and 3_000_000 < r.raw_bytes < 3_100_000
    assert _token(images["v1"]) == "one"
    assert RDOCKER.inspect("image", images["v1"])["Id"] == LOCAL.inspect("image", images["v1"])["Id"]
    assert r.phases["loads"] == 2, "the stream load of the 3 MB layer, then the token layer's"
    assert not list(streaming.iterdir()), "no copy, no fifo, no manifest left in staging"
    assert _partials(r.image_id) == []


def test_a_link_dropped_mid_stream_resumes_from_the_copy(images, streaming, monkeypatch):
    _rm_remote(images["v2"])
    with monkeypatch.context() as m:
        _drop_after(m, 1_500_000)
        with pytest.raises(deploy_mod.ConnectionLost):
            deploy_mod.deploy(LOCAL, images["v2"], REMOTE)
    parts = list(streaming.glob("*.tar.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < 1_500_000, parts
    assert not list(streaming.glob("stream-*")), "the stream's copy is cut into the layer's .part"
    r = deploy_mod.deploy(LOCAL, images["v2"], REMOTE)
    assert r.resumed_bytes == parts[0].stat().st_size if parts[0].exists() else r.resumed_bytes > 0
    assert r.bytes_sent + r.resumed_bytes > 3_000_000 and r.raw_bytes < 3_000_000, "only the rest is sent"
    assert _token(images["v2"]) == "two"
    assert not list(streaming.glob("*.tar*")) and _partials(r.image_id) == []


def test_wrong_bytes_from_the_store_are_refused_by_docker_load_and_sent_again(images, streaming, monkeypatch):
    """No hash on the stream path: docker load's own diff ID check ("invalid diffID") is the check."""
    real = layers.FastReader.stream

    def flipped(self, chain_id, spans=False):
        for i, chunk in enumerate(real(self, chain_id, spans)):
            yield bytes([chunk[0] ^ 1]) + chunk[1:] if i == 0 else chunk   # the first tar header

    monkeypatch.setattr(layers.FastReader, "stream", flipped)
    _rm_remote(images["v2"])
    notes: list[str] = []
    r = deploy_mod.deploy(LOCAL, images["v2"], REMOTE, say=notes.append)
    assert any("docker save" in n for n in notes), notes
    assert _token(images["v2"]) == "two"
    assert not list(streaming.glob("*.tar*"))


def test_a_staging_disk_too_small_for_the_copy_fails_no_load(images, streaming, tiny_staging, monkeypatch):
    """The copy is for a resume only: the 4 MB layer (random bytes) does not fit in 1 MB, the load
    does, and nothing is left behind."""
    monkeypatch.setenv("DLBOX_REMOTE_STAGING", str(tiny_staging))
    _rm_remote(images["big"])
    r = deploy_mod.deploy(LOCAL, images["big"], REMOTE)
    assert _token(images["big"]) == "big" and r.layers_sent == 2
    assert list(tiny_staging.iterdir()) == []


def test_a_server_whose_staging_dir_cannot_be_made_says_so(images, streaming, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DLBOX_REMOTE_STAGING", str(blocker / "staging"))
    _rm_remote(images["v1"])
    with pytest.raises(HostError, match="staging directory"):
        deploy_mod.deploy(LOCAL, images["v1"], REMOTE)
    assert not RDOCKER.image_exists(images["v1"])
