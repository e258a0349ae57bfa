"""One torch per machine and per server: disk and deploy bytes of three projects, same run.

    source /tmp/dlbox-world/env && .venv/bin/python benchmarks/layers.py [--rebuild]

Three projects with the same base, Python and torch (the local 2.13.0+cpu wheel) and different
apt/pip lists are built with dlbox. Measured:
- unique bytes on disk (every distinct layer of the three images once, sizes from the engine's
  layer store) against the target: the shared layers once + each project's own layers, + 5 %;
  the old layout (issue 14: only the base layer shared) is what the same images would cost with
  every layer above the base stored per project;
- build context bytes of each first build, of a later build after a requirements edit, and of the
  tools image (uv + local wheels, once per engine);
- deploy: A to the server, then B: B must send only its own layers (+5 %);
- --rebuild: A's Dockerfile built again with --no-cache (another build, another clock): the
  shared layers must get the same diff IDs, and deploying that image to a server that has A's
  sends none of them.
Writes benchmarks/results/layers.json. The machine is shared: times are noisy, bytes are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbox import workflow
from dlbox.workflow import containers
from dlbox.engine.docker import Docker
from dlbox.engine.tools import tools_ref
from dlbox.ship.deploy import deploy
from dlbox.ship.layers import chain_ids, image_facts

ROOT = Path(__file__).resolve().parents[1]
LOCAL = Docker()
LAYERDB = Path("/var/lib/docker/image/overlay2/layerdb/sha256")
PROJECTS = {
    "perfbench-a": {"apt": [], "pip": ["six"], "req": "einops\n"},
    "perfbench-b": {"apt": ["jq"], "pip": ["tqdm"], "req": "einops\n"},
    "perfbench-c": {"apt": ["less"], "pip": ["pyyaml"], "req": "packaging\n"},
}


def write_project(root: Path, name: str, cfg: dict) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "dlbox.toml").write_text(
        f'name = "{name}"\n[env]\npython = "3.11"\ntorch = "auto"\nrequirements = "requirements.txt"\n'
        f"apt = {json.dumps(cfg['apt'])}\npip = {json.dumps(cfg['pip'])}\n")
    (d / "requirements.txt").write_text(cfg["req"])
    return d


def layer_size(chain: str) -> int:
    return int((LAYERDB / chain.split(":", 1)[1] / "size").read_text())


def build(d: Path) -> dict:
    p = workflow.load_project(d, docker=LOCAL, say=lambda m: None)
    t0 = time.monotonic()
    r = containers.ensure_image(p, quiet=True, say=lambda m: None)
    return {"image": r.image, "built": r.built, "seconds": round(time.monotonic() - t0, 1),
            "context_bytes": r.context_bytes, "tools": tools_ref(p.plan.build.find_links)}


def layers(ref: str) -> list[dict]:
    f = image_facts(LOCAL, ref)
    return [{"diff_id": d, "chain_id": c, "bytes": layer_size(c)} for d, c in zip(f.diff_ids, chain_ids(f.diff_ids))]


def remote_docker() -> Docker:
    return Docker(host=f"unix://{os.environ['DLBOX_TEST_REMOTE_SOCKET']}")


def ship(ref: str) -> dict:
    os.environ.setdefault("DLBOX_SSH_CONFIG", os.environ.get("DLBOX_TEST_SSH_CONFIG", ""))
    os.environ.setdefault("DLBOX_REMOTE_STAGING", f"/tmp/dlbox-bench-staging-{os.getpid()}")
    r = deploy(LOCAL, ref, os.environ["DLBOX_TEST_REMOTE"])
    return {"bytes_sent": r.bytes_sent, "raw_bytes": r.raw_bytes, "codec": r.codec, "layers_sent": r.layers_sent,
            "layers_present": r.layers_present, "seconds": round(r.seconds, 1)}


def save(out: dict) -> None:
    """Written after every phase: a long run that fails late keeps what it measured."""
    path = ROOT / "benchmarks/results/layers.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    rebuild = "--rebuild" in sys.argv
    out: dict = {"machine": "2 cores shared by ~8 sessions (noisy times)", "projects": {}}
    with tempfile.TemporaryDirectory(prefix="dlbox-layers-") as tmp:
        dirs = {n: write_project(Path(tmp), n, cfg) for n, cfg in PROJECTS.items()}
        for n, d in dirs.items():
            out["projects"][n] = {"first_build": build(d)}
            print(n, out["projects"][n]["first_build"], flush=True)
        imgs = {n: out["projects"][n]["first_build"]["image"] for n in dirs}
        ls = {n: layers(ref) for n, ref in imgs.items()}
        common = set.intersection(*({x["chain_id"] for x in v} for v in ls.values()))
        sizes = {x["chain_id"]: x["bytes"] for v in ls.values() for x in v}
        shared_bytes = sum(sizes[c] for c in common)
        own = {n: sum(x["bytes"] for x in v if x["chain_id"] not in common) for n, v in ls.items()}
        unique_on_disk = sum(sizes.values())
        base_bytes = ls["perfbench-a"][0]["bytes"]
        old_layout = base_bytes + sum(sum(x["bytes"] for x in v[1:]) for v in ls.values())
        biggest_shared = max((sizes[c] for c in common), default=0)
        out["disk"] = {
            "layers": {n: [{"diff_id": x["diff_id"][:19], "MB": round(x["bytes"] / 1e6, 1),
                            "shared": x["chain_id"] in common} for x in v] for n, v in ls.items()},
            "shared_layers_bytes": shared_bytes, "torch_layer_bytes": biggest_shared, "own_bytes": own,
            "unique_bytes_on_disk": unique_on_disk,
            "target_bytes": int((shared_bytes + sum(own.values())) * 1.05),
            "old_layout_bytes": old_layout,
            "ratio_vs_old_layout": round(old_layout / unique_on_disk, 2),
        }
        out["disk"]["meets_target"] = unique_on_disk <= out["disk"]["target_bytes"]
        print({k: v for k, v in out["disk"].items() if k != "layers"}, flush=True)
        save(out)

        # a later build: one more dependency (context = the requirements file)
        a = dirs["perfbench-a"]
        (a / "requirements.txt").write_text("einops\nsix\n")
        out["projects"]["perfbench-a"]["after_requirements_edit"] = build(a)
        tools = out["projects"]["perfbench-a"]["first_build"]["tools"]
        t = LOCAL.inspect("image", tools) or {}
        out["tools_image"] = {"ref": tools, "bytes": int(t.get("Size") or 0),
                              "note": "uv + local wheels; built once per engine, its context sent once"}

        # deploys: A, then B to the same server
        rd = remote_docker()
        rd.run(["rmi", "-f", *imgs.values()], check=False, timeout=300)
        save(out)
        try:
            out["deploy"] = {"A_first": ship(imgs["perfbench-a"]), "B_after_A": ship(imgs["perfbench-b"])}
        except Exception as exc:  # noqa: BLE001 — e.g. the shared machine's disk is full: say so
            out["deploy"] = {"error": str(exc)}
            save(out)
            raise
        out["deploy"]["B_own_bytes"] = own["perfbench-b"]
        out["deploy"]["B_sends_only_own_layers"] = (
            out["deploy"]["B_after_A"]["raw_bytes"] <= 1.05 * own["perfbench-b"] + 1_000_000)
        print(out["deploy"], flush=True)

        if rebuild:
            ref2 = "dlbox-bench/perfbench-a:nocache"
            t0 = time.monotonic()
            subprocess.run(["/usr/bin/docker", "build", "--no-cache", "-q", "-f", str(a / ".dlbox/Dockerfile"),
                            "-t", ref2, str(a)], check=True, env=dict(os.environ, DOCKER_BUILDKIT="1"),
                           stdout=subprocess.DEVNULL)
            again = layers(ref2)
            first = layers(out["projects"]["perfbench-a"]["after_requirements_edit"]["image"])
            n_shared = len([x for x in ls["perfbench-a"] if x["chain_id"] in common])
            same = [x["diff_id"] == y["diff_id"] for x, y in zip(first[:n_shared], again[:n_shared])]
            out["reproducible"] = {"no_cache_build_seconds": round(time.monotonic() - t0, 1),
                                   "shared_layers": n_shared, "same_diff_ids": same,
                                   "deploy_to_server_with_A": ship(ref2)}
            print(out["reproducible"], flush=True)
    save(out)
    print("wrote benchmarks/results/layers.json")


if __name__ == "__main__":
    main()
