"""Issue 11 item 19: a staged layer on the server that fails verification is discarded and sent
again; two deploys of one image at once serialise instead of both failing.

Before: a staged `<diffid>.tar` was trusted by its size, so one flipped byte made every later
deploy fail with `invalid diffID`, forever; two deploys at once appended to the same `.part`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dlbox.ship.layers import image_facts, saved_layers
from tests.integration.test_ship_real import (  # noqa: F401  (fixtures: images, env)
    DLBOX,
    LOCAL,
    RDOCKER,
    REMOTE,
    _ensure_remote_base,
    _json,
    _rm_remote,
    dlbox,
    env,
    images,
)

pytestmark = [pytest.mark.docker, pytest.mark.remote]


def _token(ref: str) -> str:
    return RDOCKER.run(["run", "--rm", ref, "cat", "/token"]).stdout.decode().strip()


def test_damaged_staged_layer_is_sent_again(images, env, tmp_path):
    _ensure_remote_base()
    _rm_remote(images["v2"])
    facts = image_facts(LOCAL, images["v2"])
    top = facts.diff_ids[-1]
    files, _ = saved_layers(LOCAL, facts, {top}, tmp_path / "layers")
    data = bytearray(files[top].read_bytes())
    data[len(data) // 2] ^= 0x01                      # one flipped byte, same size
    staging = Path(env["DLBOX_REMOTE_STAGING"])
    staging.mkdir(parents=True, exist_ok=True)
    (staging / f"{top.split(':', 1)[1]}.tar").write_bytes(bytes(data))
    r = _json(dlbox("deploy", "--image", images["v2"], REMOTE, "--json", env=env))
    assert r["layers_sent"] >= 1 and r["resumed_bytes"] == 0
    assert _token(images["v2"]) == "two"
    assert not list(staging.glob("*.tar*")), "staged layers are removed once loaded"


def test_damaged_partial_layer_is_sent_whole(images, env, tmp_path):
    _ensure_remote_base()
    _rm_remote(images["v1"])
    facts = image_facts(LOCAL, images["v1"])
    big = facts.diff_ids[-2]                           # the 3 MB layer
    files, _ = saved_layers(LOCAL, facts, {big}, tmp_path / "layers")
    data = bytearray(files[big].read_bytes()[:1_000_000])
    data[1000] ^= 0x01
    staging = Path(env["DLBOX_REMOTE_STAGING"])
    staging.mkdir(parents=True, exist_ok=True)
    (staging / f"{big.split(':', 1)[1]}.tar.part").write_bytes(bytes(data))
    r = _json(dlbox("deploy", "--image", images["v1"], REMOTE, "--json", env=env))
    assert r["resumed_bytes"] == 0 and _token(images["v1"]) == "one"


@pytest.mark.parametrize("round_", range(2))
def test_two_deploys_of_one_image_at_once(images, env, round_):
    _ensure_remote_base()
    _rm_remote(images["big"])
    procs = [subprocess.Popen([str(DLBOX), "deploy", "--image", images["big"], REMOTE, "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert _token(images["big"]) == "big"
