"""One torch per machine and per server, small build contexts, gc — on the real engines.

Two projects with the example's base, Python and torch (the local CPU wheel) and different apt/pip
lists: their shared layers have equal diff IDs, each build sends only a few KB of context, nothing
is linked into the projects, a fresh (--no-cache) build of the shared stage gets the same diff IDs,
and a server that has one project receives only the other's own layers. No timing assertions.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dlbox import workflow
from dlbox.workflow import containers
from dlbox.engine.docker import Docker
from dlbox.engine.tools import stage_tools
from dlbox.ship.layers import FastReader, chain_ids, image_facts
from tests.integration.test_core_real import copy_example, dlbox

pytestmark = [pytest.mark.docker]

LOCAL = Docker()
SHARED_LAYERS = 4   # base, engine-file stubs, Python's apt packages, venv + torch


def _build(project: Path):
    """What `dlbox build -q` does: refresh the lock when its inputs changed, then build."""
    p = workflow.load_project(project, docker=LOCAL, say=lambda m: None)
    workflow.ensure_lock(p, say=lambda m: None)
    p = workflow.load_project(project, docker=LOCAL, say=lambda m: None)
    return containers.ensure_image(p, force=False, quiet=True, say=lambda m: None)


@pytest.fixture(scope="module")
def two_projects(docker_engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    tag = random.randint(10**5, 10**6)
    a = copy_example(root / "a", f"share-a{tag}")
    (a / "dlbox.toml").write_text((a / "dlbox.toml").read_text().replace(
        'requirements = "requirements.txt"', 'requirements = "requirements.txt"\npip = ["six"]'))
    b = copy_example(root / "b", f"share-b{tag}")
    (b / "dlbox.toml").write_text((b / "dlbox.toml").read_text().replace(
        'requirements = "requirements.txt"', 'requirements = "requirements.txt"\napt = ["less"]\npip = ["packaging"]'))
    ra, rb = _build(a), _build(b)
    yield {"a": a, "b": b, "ra": ra, "rb": rb}
    for r in (ra, rb):
        LOCAL.run(["rmi", r.image], check=False)


def test_shared_layers_have_equal_diff_ids_and_contexts_are_small(two_projects):
    fa, fb = image_facts(LOCAL, two_projects["ra"].image), image_facts(LOCAL, two_projects["rb"].image)
    assert fa.diff_ids[:SHARED_LAYERS] == fb.diff_ids[:SHARED_LAYERS], "base, Python and torch stored once"
    assert fa.diff_ids[SHARED_LAYERS:] != fb.diff_ids[SHARED_LAYERS:]
    torch_bytes = FastReader(LOCAL).size(chain_ids(fa.diff_ids)[SHARED_LAYERS - 1]) or 0
    assert torch_bytes > 300_000_000, "the shared venv layer holds torch"
    for key in ("ra", "rb"):
        r = two_projects[key]
        if r.built:  # an unchanged project is not rebuilt, so there is no context to measure
            assert r.context_bytes is not None and r.context_bytes < 1_000_000, r.context_bytes
    for key in ("a", "b"):
        stage = two_projects[key] / ".dlbox"
        assert not (stage / "bin").exists() and not (stage / "links").exists(), "nothing linked into the project"


def test_a_requirements_edit_sends_only_the_requirements_file(two_projects):
    a = two_projects["a"]
    # a new dependency: the lock changes, and with it the image (a comment would change neither)
    (a / "requirements.txt").write_text((a / "requirements.txt").read_text() + "\nidna\n")
    r = _build(a)
    assert r.built and r.context_bytes is not None and r.context_bytes < 100_000
    assert image_facts(LOCAL, r.image).diff_ids[:SHARED_LAYERS] == \
        image_facts(LOCAL, two_projects["ra"].image).diff_ids[:SHARED_LAYERS]
    LOCAL.run(["rmi", r.image], check=False)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def test_a_fresh_build_of_the_shared_stage_gets_the_same_diff_ids(two_projects, tmp_path):
    """Another machine: another clock, empty caches (--no-cache empties BuildKit's cache mounts too),
    and a tools image (uv, the local torch wheel) unpacked at another time, whose wheel ctime uv
    writes into each dist-info's uv_cache.json (the build removes them). Same shared layers, so a
    deploy between the two machines sends none of them."""
    a = two_projects["a"]
    text = (a / ".dlbox" / "Dockerfile").read_text()
    tools = re.search(r"from=(dlbox/tools:[0-9a-f]+)", text)[1]
    find_links = workflow.load_project(a, docker=LOCAL, say=lambda m: None).plan.build.find_links
    n = random.randint(10**5, 10**6)
    ctx = tmp_path / "tools"
    shutil.copytree(stage_tools(find_links), ctx, copy_function=_link_or_copy)
    (ctx / "another-machine").write_text(f"{n}\n")   # a layer of its own: the engine unpacks the files anew
    copy, tag = f"dlbox-test/tools-copy:{n}", f"dlbox-test/shared-nocache:{n}"
    (a / ".dlbox" / "Dockerfile.elsewhere").write_text(text.replace(tools, copy))
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    try:
        for argv, cwd in ((["-f", str(ctx / "Dockerfile.tools"), "-t", copy, str(ctx)], None),
                          (["--no-cache", "--target", "dlbox-shared", "-f", ".dlbox/Dockerfile.elsewhere", "--secret",
                            "id=dlbox_ca,src=/etc/ssl/certs/ca-certificates.crt", "-t", tag, "."], a)):
            proc = subprocess.run(["/usr/bin/docker", "build", "-q", *argv], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=1800)
            assert proc.returncode == 0, proc.stderr[-2000:]
        fresh = image_facts(LOCAL, tag).diff_ids
        assert fresh == image_facts(LOCAL, two_projects["ra"].image).diff_ids[:SHARED_LAYERS]
    finally:
        LOCAL.run(["rmi", tag, copy], check=False)


@pytest.mark.remote
def test_the_second_project_sends_only_its_own_layers(two_projects, tmp_path):
    if not os.environ.get("DLBOX_TEST_REMOTE"):
        pytest.skip("the SSH test world is not up")
    env = dict(os.environ, DLBOX_SSH_CONFIG=os.environ["DLBOX_TEST_SSH_CONFIG"],
               DLBOX_REMOTE_STAGING=str(tmp_path / "staging"))
    remote = Docker(host=f"unix://{os.environ['DLBOX_TEST_REMOTE_SOCKET']}")
    ia, ib = two_projects["ra"].image, two_projects["rb"].image
    remote.run(["rmi", ia, ib], check=False)
    try:
        first = json.loads(dlbox("deploy", "--image", ia, os.environ["DLBOX_TEST_REMOTE"], "--json", env=env).stdout)
        second = json.loads(dlbox("deploy", "--image", ib, os.environ["DLBOX_TEST_REMOTE"], "--json", env=env).stdout)
        fb = image_facts(LOCAL, ib)
        chains = chain_ids(fb.diff_ids)
        own = sum(FastReader(LOCAL).tar_size(c) or 0 for c in chains[SHARED_LAYERS:])
        assert second["layers_present"] >= SHARED_LAYERS, second
        assert second["raw_bytes"] <= own * 1.05 + 65536, (second, own)
        assert second["bytes_sent"] <= second["raw_bytes"] + 65536
        assert first["layers_sent"] + first["layers_present"] <= first["layers_total"]   # a repeated layer goes once
    finally:
        remote.run(["rmi", ia, ib], check=False)
