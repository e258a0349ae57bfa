"""What a C++ compiler costs in a dlbox image (issue 12: the default for torch.compile).

Measures, in a Debian bookworm container that already has python3 (what dlbox's CPU image has):
the packages and dpkg Installed-Size of `g++`, of `python3-dev` (Inductor's C++ includes
Python.h) and of both, with --no-install-recommends as dlbox installs. With DLBOX_TORCH_IMAGE
set to a built dlbox image that has torch, also whether torch.compile works without a compiler.
Writes benchmarks/results/compiler.json.

    .venv/bin/python benchmarks/compiler.py
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

# A dlbox CPU image (Debian bookworm + python3 + torch) is the honest base; a bare bookworm-slim
# works too where its apt sources answer.
BASE = os.environ.get("DLBOX_BENCH_BASE") or os.environ.get("DLBOX_TORCH_IMAGE") or "debian:bookworm-slim"
OUT = Path(__file__).parent / "results" / "compiler.json"
SCRIPT = r"""
set -e
apt-get update -qq >/dev/null 2>&1
apt-get install -y -qq --no-install-recommends python3 >/dev/null 2>&1
for set in "g++" "python3-dev" "g++ python3-dev"; do
  pkgs=$(apt-get install -s -qq --no-install-recommends $set 2>/dev/null | awk '/^Inst /{print $2}')
  kib=0; for p in $pkgs; do s=$(apt-cache show --no-all-versions $p | awk '/^Installed-Size:/{print $2; exit}'); kib=$((kib + ${s:-0})); done
  echo "$set|$(echo $pkgs | wc -w)|$kib"
done
"""
PROBE = ("import torch\n@torch.compile\ndef f(x):\n    return torch.sin(x) * 2 + x.cos()\n"
         "try:\n    f(torch.randn(8)); print('ok')\nexcept Exception as e:\n    print(type(e).__name__, str(e).splitlines()[0][:160])\n")


def docker(*args: str, timeout: int = 900) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True).stdout


def main() -> None:
    t0 = time.monotonic()
    rows = []
    for line in docker("run", "--rm", "-u", "0", "--entrypoint", "", BASE, "sh", "-c", SCRIPT).strip().splitlines():
        what, count, kib = line.split("|")
        rows.append({"install": what, "packages": int(count), "installed_mb": round(int(kib) / 1024, 1)})
    result = {"base": BASE, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sets": rows,
              "seconds": round(time.monotonic() - t0, 1)}
    image = os.environ.get("DLBOX_TORCH_IMAGE")
    if image:
        result["torch_image"] = image
        result["torch_image_mb"] = round(int(docker("image", "inspect", image, "--format", "{{.Size}}")) / 2**20)
        result["torch_compile_without_compiler"] = docker(
            "run", "--rm", "--entrypoint", "", image, "/opt/venv/bin/python", "-c", PROBE).strip()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
