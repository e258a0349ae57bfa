"""dlbox deploy against the tutorials' `docker save IMAGE | ssh HOST docker load`, same run, same server.

    source /tmp/dlbox-world/env && .venv/bin/python benchmarks/ship.py

Image: the digits example's environment image (torch CPU, ~1.1 GB) plus a code layer — what
`dlbox build --bake` makes — built as dlbox-bench/ship:v1; v2 changes one line of the code.
Without that env image, a debian image with 400 MB of random data stands in.
Writes benchmarks/results/ship.json. Targets (issue 5): second deploy sends < 2x the changed
layers and is >= 10x faster than the baseline; first deploy no slower than the baseline.

Shaped links (issue 14): `--shaped` also runs the first deploy, both ways, with the link to the
server limited by `tc` (tbf on the host end of the veth) to 100 Mbit/s and 1 Gbit/s, then dlbox's
second deploy after a code edit; target: first deploy >= 1.8x faster than the baseline. The link is
shared by everyone's tests: the limit is set only around each measured transfer and always removed
(finally + atexit + SIGTERM), never left on. Writes benchmarks/results/ship_shaped.json (--name=NAME: NAME.json).
--rates=100mbit,1gbit picks the links; --rounds=N (3) first deploys each way, alternating, and the
speedup is median over median; --codecs=none,zstd:1 adds first deploys with that codec forced
(DLBOX_SHIP_CODEC) after the automatic one. Each figure records the 1-minute load average before
and after it: the machine is shared, and every stage here is CPU-bound at 1 Gbit/s.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlbox import ssh
from dlbox.engine.docker import Docker
from dlbox.ship.deploy import deploy
from dlbox.ship.layers import FastReader, chain_ids, image_facts

ROOT = Path(__file__).resolve().parents[1]
LOCAL = Docker()
BUILDER = Docker(binary="/usr/bin/docker")


def env_image() -> str:
    for arg in sys.argv[1:]:
        if arg.startswith("--image="):
            return arg.split("=", 1)[1]
    out = LOCAL.run(["image", "ls", "--filter", "label=org.dlbox.project=digits", "--format",
                     "{{.Repository}}:{{.Tag}}"]).stdout.decode().split()
    envs = [r for r in out if r.startswith("dlbox/") and not r.endswith(":baked") and "-jupyter-" not in r]
    if envs:
        return envs[0]
    df = "FROM debian:bookworm-slim\nRUN head -c 400000000 /dev/urandom > /data\n"
    BUILDER.run(["build", "-q", "-t", "dlbox-bench/ship:env", "-"], input=df, env={"DOCKER_BUILDKIT": "1"}, timeout=900)
    return "dlbox-bench/ship:env"


def bake(base: str, tag: str, line: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        src = (ROOT / "examples/digits/train.py").read_text()
        Path(d, "train.py").write_text(src + f"\n# {line}\n")
        Path(d, "Dockerfile").write_text(f"FROM {base}\nCOPY train.py /workspace/train.py\n"
                                         f'LABEL org.dlbox.baked="true"\n')
        BUILDER.run(["build", "-q", "-t", tag, d], env={"DOCKER_BUILDKIT": "1"}, timeout=900)
    return tag


def remote_reset(remote: Docker, *refs: str) -> None:
    remote.run(["rmi", "-f", *refs], check=False, timeout=300)
    remote.run(["image", "prune", "-f"], check=False, timeout=300)


def baseline(ref: str, target: ssh.Target) -> dict:
    """The tutorials' command, with the bytes counted on the way."""
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    save = LOCAL.popen(["save", ref], stdout=subprocess.PIPE)
    load = subprocess.Popen(["ssh"] + (["-F", os.environ["DLBOX_SSH_CONFIG"]] if os.environ.get("DLBOX_SSH_CONFIG") else [])
                            + [target.destination, "docker load"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    n = 0
    while chunk := save.stdout.read(1 << 20):
        load.stdin.write(chunk)
        n += len(chunk)
    load.stdin.close()
    assert save.wait() == 0 and load.wait() == 0
    return {"bytes_sent": n, "seconds": round(time.monotonic() - t0, 2), "loadavg_1min": [load0, os.getloadavg()[0]]}


def ours(ref: str, target: ssh.Target) -> dict:
    load = os.getloadavg()[0]
    r = deploy(LOCAL, ref, str(target))
    return {"bytes_sent": r.bytes_sent, "raw_bytes": r.raw_bytes, "seconds": round(r.seconds, 2),
            "layers_sent": r.layers_sent, "layers_total": r.layers_total, "image_bytes": r.image_bytes,
            "codec": r.codec, "link": r.link, "phases": r.phases, "loadavg_1min": [load, os.getloadavg()[0]]}


def changed_bytes(old: str, new: str) -> int:
    a, b = image_facts(LOCAL, old), image_facts(LOCAL, new)
    fast = FastReader(LOCAL)
    n = 0
    for i, (d, c) in enumerate(zip(b.diff_ids, chain_ids(b.diff_ids))):
        if i >= len(a.diff_ids) or a.diff_ids[: i + 1] != b.diff_ids[: i + 1]:
            n += fast.tar_size(c) or 0
    return n


RATES = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--rates=")),
             ["100mbit", "1gbit"])
CODECS = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--codecs=")), [])
LINK_DEV = "dlbr0"   # scripts/world.sh: the host end of the veth into the server's namespace


def unshape() -> None:
    subprocess.run(["tc", "qdisc", "del", "dev", LINK_DEV, "root"], capture_output=True)


@contextlib.contextmanager
def shaped(rate: str):
    """The host→server direction limited to RATE (e.g. 100mbit) for the duration of the block."""
    burst = "1mb" if rate.endswith("gbit") else "256kb"
    unshape()
    subprocess.run(["tc", "qdisc", "add", "dev", LINK_DEV, "root", "tbf", "rate", rate, "burst", burst,
                    "latency", "50ms"], check=True)
    try:
        yield
    finally:
        unshape()


ROUNDS = int(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--rounds=")), "3"))
SETTLE_S = 5   # after removing images the server's engine deletes their files for a few seconds


def shaped_runs(target: ssh.Target, remote: Docker, v1: str, v2: str, base: str) -> dict:
    """Per link: ROUNDS first deploys each way, alternating (baseline, dlbox, baseline, …) so a
    drift in this shared machine's speed falls on both; the speedup is median over median. Then
    dlbox's second deploy after a code edit, and the forced codecs."""
    atexit.register(unshape)
    signal.signal(signal.SIGTERM, lambda *_: (unshape(), sys.exit(143)))
    runs = {}
    for rate in RATES:
        base_runs, ours_runs = [], []
        for _ in range(ROUNDS):
            for runner, out in ((baseline, base_runs), (ours, ours_runs)):
                remote_reset(remote, v1, v2, base)
                time.sleep(SETTLE_S)
                with shaped(rate):
                    out.append(runner(v1, target))
                print(rate, runner.__name__, out[-1]["seconds"], flush=True)
        with shaped(rate):
            second = ours(v2, target)
        b_med = statistics.median(r["seconds"] for r in base_runs)
        o_med = statistics.median(r["seconds"] for r in ours_runs)
        runs[rate] = {"first_deploy": {"baseline": base_runs, "dlbox": ours_runs,
                                       "baseline_median_s": b_med, "dlbox_median_s": o_med},
                      "second_deploy_after_code_edit": {"dlbox": second},
                      "first_speedup_per_round": [round(b["seconds"] / o["seconds"], 2)
                                                  for b, o in zip(base_runs, ours_runs)],
                      "first_speedup": round(b_med / max(o_med, 1e-3), 2)}
        for forced in CODECS:     # the automatic choice against each codec forced, same link, same run
            remote_reset(remote, v1, v2, base)
            time.sleep(SETTLE_S)
            os.environ["DLBOX_SHIP_CODEC"] = forced
            try:
                with shaped(rate):
                    runs[rate]["first_deploy"][f"dlbox_codec_{forced}"] = ours(v1, target)
            finally:
                del os.environ["DLBOX_SHIP_CODEC"]
        runs[rate]["first_ge_1_8x_faster"] = runs[rate]["first_speedup"] >= 1.8
        print(rate, json.dumps(runs[rate]), flush=True)
    return runs


def main() -> int:
    if not os.environ.get("DLBOX_TEST_REMOTE"):
        print("source /tmp/dlbox-world/env first (WORLD_REMOTE=1 bash scripts/world.sh up)", file=sys.stderr)
        return 2
    os.environ.setdefault("DLBOX_SSH_CONFIG", os.environ.get("DLBOX_TEST_SSH_CONFIG", ""))
    # a staging dir of our own: other sessions' deploys to the shared test server clean theirs up
    os.environ.setdefault("DLBOX_REMOTE_STAGING", f"/tmp/dlbox-bench-staging-{os.getpid()}")
    target = ssh.Target.parse(os.environ["DLBOX_TEST_REMOTE"])
    remote = Docker(host=f"unix://{os.environ['DLBOX_TEST_REMOTE_SOCKET']}")
    base = env_image()
    v1 = bake(base, "dlbox-bench/ship:v1", "version one")
    v2 = bake(base, "dlbox-bench/ship:v2", f"changed at {time.time()}")
    every = [v1, v2, base]
    staging = os.environ["DLBOX_REMOTE_STAGING"]
    atexit.register(lambda: subprocess.run(["ssh", "-F", os.environ["DLBOX_SSH_CONFIG"], target.destination,
                                            f"rm -rf {staging} {staging}.lock"], capture_output=True))
    if "--shaped" in sys.argv:
        runs = shaped_runs(target, remote, v1, v2, base)
        name = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--name=")), "ship_shaped")
        out = ROOT / f"benchmarks/results/{name}.json"
        out.write_text(json.dumps({"image": {"env_image": base, "v1": v1, "v2": v2}, "links": runs,
                                   "machine": {"nproc": os.cpu_count(), "note": "2 cores shared with other sessions; "
                                               "loadavg_1min = [before, after] each figure"}},
                                  indent=2) + "\n")
        remote_reset(remote, v2, v1, base)
        print(f"wrote {out}")
        return 0

    remote_reset(remote, *every)
    base_first = baseline(v1, target)
    remote_reset(remote, *every)
    time.sleep(2)
    ours_first = ours(v1, target)

    base_second = baseline(v2, target)  # the server has v1 (from the dlbox deploy)
    remote_reset(remote, v2)
    ours_second = ours(v2, target)
    changed = changed_bytes(v1, v2)

    result = {
        "image": {"env_image": base, "v1": v1, "v2": v2, "image_bytes": ours_first["image_bytes"],
                  "changed_layer_bytes": changed},
        "first_deploy": {"baseline": base_first, "dlbox": ours_first},
        "second_deploy": {"baseline": base_second, "dlbox": ours_second},
        "targets": {
            "second_sends_lt_2x_changed": ours_second["bytes_sent"] < 2 * changed,
            "second_speedup_vs_baseline": round(base_second["seconds"] / max(ours_second["seconds"], 1e-3), 1),
            "second_ge_10x_faster": base_second["seconds"] >= 10 * ours_second["seconds"],
            "first_no_slower": ours_first["seconds"] <= base_first["seconds"],
        },
        "machine": {"nproc": os.cpu_count(), "link": "veth into a network namespace (no network limit)"},
    }
    out = ROOT / "benchmarks/results/ship.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    remote_reset(remote, v2, v1, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
