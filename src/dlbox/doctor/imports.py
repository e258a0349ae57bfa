"""Judge templates/verify_imports.py's observations: every top-level dependency imports, the
torch family's compiled parts load, torch.compile compiles. A failure names the package and
the likely fix. Pure.
"""

from __future__ import annotations

import re

from dlbox.report import Check

# shared libraries a wheel expects from the OS -> the Debian package that has them
# (packages.debian.org file search, bookworm)
SYSTEM_LIBS = {
    "libGL.so.1": "libgl1", "libgthread-2.0.so.0": "libglib2.0-0", "libglib-2.0.so.0": "libglib2.0-0",
    "libxcb.so.1": "libxcb1", "libSM.so.6": "libsm6", "libXext.so.6": "libxext6", "libXrender.so.1": "libxrender1",
    "libsndfile.so.1": "libsndfile1", "libsndfile.so": "libsndfile1", "libgomp.so.1": "libgomp1",
    "libEGL.so.1": "libegl1", "libX11.so.6": "libx11-6", "libavcodec": "ffmpeg", "libavformat": "ffmpeg",
}


def likely_fix(package: str, error: str, *, gpu: bool, cuda_builders: frozenset[str] = frozenset()) -> tuple[str, str]:
    """(status, fix) for an import failure's text."""
    if "does not exist" in error and "::" in error and "operator" in error:
        return "fail", (f"{package} was built for another torch build than the one installed (the family was mixed): "
                        "`dlbox lock --force` pins torch, torchvision and torchaudio from one source, then `dlbox build`")
    m = re.search(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file", error)
    if m:
        lib = m.group(1)
        if re.match(r"lib(cudart|cublas|cudnn|nvrtc|cufft|curand|cusparse|nccl|c10_cuda|torch_cuda)", lib):
            return "fail", (f"{package} wants CUDA's {lib}, which this torch build does not bring: a CUDA build of "
                            f"{package} next to a CPU torch; `dlbox lock --force` keeps the family on one build")
        deb = next((d for prefix, d in SYSTEM_LIBS.items() if lib.startswith(prefix)), None)
        if deb:
            return "fail", f'{package} needs the system library {lib}: add "{deb}" to [env] apt in dlbox.toml'
        return "fail", f"{package} needs the system library {lib}: add the Debian package that has it to [env] apt"
    if "No module named" in error:
        mod = re.search(r"No module named '([^']+)'", error)
        return "fail", (f"{package} imports {mod.group(1) if mod else 'a module'}, which is not installed: add it to the "
                        "project's requirements, then `dlbox lock`")
    if not gpu and package in cuda_builders:
        return "warn", f"{package} builds CUDA kernels and may need a GPU (or nvcc) to import; check on the GPU host"
    if "CUDA" in error and not gpu:
        return "warn", f"{package} needs a GPU to import; this container has none (run `dlbox verify` on the GPU host)"
    return "fail", "see the error; `dlbox exec -- python -c 'import …'` reproduces it"


def compile_fix(error: str) -> str:
    if "InvalidCxxCompiler" in error or "No working C++ compiler" in error or "g++" in error or "cc1plus" in error:
        return 'torch.compile needs a C++ compiler at run time: add "g++" to [env] apt (or set compiler in dlbox.toml)'
    if "Python.h" in error:
        return 'torch.compile builds a Python extension: add "python3-dev" to [env] apt'
    return "see the error; torch.compile's own message names the missing part"


def import_checks(obs: dict, *, gpu: bool, cuda_builders: frozenset[str] = frozenset()) -> list[Check]:
    out: list[Check] = []
    for dist, info in sorted((obs.get("imports") or {}).items()):
        cid = f"import {dist}"
        if not info.get("installed"):
            out.append(Check(cid, "fail", f"{dist} is declared but not installed in the image",
                             "`dlbox lock --force` then `dlbox build`: the lock should hold every declared package"))
            continue
        mods = info.get("modules") or {}
        if not mods:
            out.append(Check(cid, "warn", f"{dist} {info.get('version')} is installed but has no importable "
                                          "top-level module dlbox could find", ""))
            continue
        bad = {m: r for m, r in mods.items() if not r.get("ok")}
        if not bad:
            out.append(Check(cid, "ok", f"{dist} {info.get('version')}: import {', '.join(sorted(mods))}"))
            continue
        m, r = next(iter(sorted(bad.items())))
        status, fix = likely_fix(dist, r.get("error", "") + "\n" + r.get("trace", ""), gpu=gpu,
                                 cuda_builders=cuda_builders)
        out.append(Check(cid, status, f"import {m} failed: {r.get('error', '')[:400]}", fix))
    for member, r in sorted((obs.get("family") or {}).items()):
        cid = f"{member} compiled ops"
        if r.get("ok"):
            out.append(Check(cid, "ok", r.get("detail", "")))
        else:
            status, fix = likely_fix(member, r.get("error", "") + "\n" + r.get("trace", ""), gpu=gpu)
            out.append(Check(cid, status, r.get("error", "")[:400], fix))
    c = obs.get("compile")
    if c is not None:
        if c.get("ok"):
            out.append(Check("torch.compile", "ok", f"{c.get('detail', '')} in {c.get('seconds', 0):.1f} s"))
        else:
            out.append(Check("torch.compile", "fail", c.get("error", "")[:400],
                             compile_fix(c.get("error", "") + c.get("trace", ""))))
    return out
