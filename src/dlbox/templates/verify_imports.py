#!/usr/bin/env python3
"""Run inside a dlbox container: import every top-level dependency, exercise the torch family's
compiled parts, and torch.compile a small function when asked. Prints ONE JSON object.

Stand-alone (stdlib only until it imports what it checks). Input: one JSON argument
{"deps": [PyPI names], "compile": bool}. It judges nothing: dlbox.doctor.imports does.
"""

import importlib
import importlib.metadata as md
import importlib.util
import json
import re
import sys
import time
import traceback

SKIP_MODULES = {"tests", "test", "docs", "doc", "examples", "benchmarks", "scripts", "tools", "build"}


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def modules_of(dist, table):
    mods = sorted(m for m, dists in table.items() if any(canon(d) == canon(dist) for d in dists)
                  and m.isidentifier() and not m.startswith("_") and m not in SKIP_MODULES)
    if not mods:
        guess = canon(dist).replace("-", "_")
        if importlib.util.find_spec(guess) is not None:
            mods = [guess]
    return mods


def attempt(fn):
    t0 = time.monotonic()
    try:
        detail = fn()
        return {"ok": True, "detail": detail or "", "seconds": round(time.monotonic() - t0, 2)}
    except BaseException as exc:  # noqa: BLE001 - report everything, including SystemExit from a bad import
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-1500:], "trace": "".join(tb)[-3000:],
                "seconds": round(time.monotonic() - t0, 2)}


def torchvision_ops():
    import torch
    import torchvision
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    return f"torchvision {torchvision.__version__}: ops.nms ran (kept {keep.tolist()})"


def torchaudio_libs():
    import torch
    import torchaudio
    if importlib.util.find_spec("torchaudio.lib._torchaudio") is not None:
        importlib.import_module("torchaudio.lib._torchaudio")
        what = "libtorchaudio loaded"
    else:
        what = "no compiled library in this release"
    torchaudio.functional.resample(torch.zeros(1, 160), 16000, 8000)
    return f"torchaudio {torchaudio.__version__}: {what}, functional.resample ran"


def compile_small():
    import torch

    def f(x):
        return torch.sin(x) * 2 + torch.cos(x)

    g = torch.compile(f)
    x = torch.randn(16)
    assert torch.allclose(g(x), f(x), atol=1e-5)
    return f"torch.compile compiled and ran a small function (torch {torch.__version__})"


def main():
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    table = md.packages_distributions()
    out = {"imports": {}, "family": {}, "compile": None}
    for dist in cfg.get("deps", []):
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            out["imports"][dist] = {"installed": False, "modules": {}}
            continue
        mods = modules_of(dist, table)
        out["imports"][dist] = {"installed": True, "version": version,
                                "modules": {m: attempt(lambda m=m: importlib.import_module(m) and None) for m in mods}}
    names = {canon(d) for d in cfg.get("deps", [])}
    if "torchvision" in names:
        out["family"]["torchvision"] = attempt(torchvision_ops)
    if "torchaudio" in names:
        out["family"]["torchaudio"] = attempt(torchaudio_libs)
    if cfg.get("compile"):
        out["compile"] = attempt(compile_small)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
