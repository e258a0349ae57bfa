"""The project's own package: importable in the container without `pip install -e .` by hand.

Decision (issue 12 scope 6):
- A project that is a package (pyproject [build-system], setup.py, `-e .`) is installed
  *editable* at image build time from the build context mounted at /workspace; at run time
  /workspace is the live bind mount, so code edits need no rebuild while its metadata, entry
  points and `importlib.metadata.version()` work.
- Compiled extensions (setup.py ext_modules, torch.utils.cpp_extension) are built in that same
  step, against the image's torch (no build isolation), with CUDA_HOME and TORCH_CUDA_ARCH_LIST
  from the plan's GPUs. The compiled files live in the image under /opt/dlbox/ext/ (same
  relative paths as in the project) and a fallback import finder serves them, so the bind-mounted
  source tree never needs them. They are rebuilt when the image is: when the lock, the
  package metadata (pyproject.toml / setup.py / setup.cfg) or any extension source
  (*.c *.cc *.cpp *.cu *.cuh *.h *.hpp) changes (engine/stage.py puts these in the tag).
Pure: reads only what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.catalog import load

EXT_DIR = "/opt/dlbox/ext"
EXT_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hpp")
META_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


@dataclass(frozen=True)
class ProjectPackage:
    path: str                        # project-relative: "."
    name: str | None
    extensions: tuple[str, ...]      # extension module names
    cuda: bool                       # a CUDAExtension among them
    arch_list: str | None            # TORCH_CUDA_ARCH_LIST, e.g. "8.6;9.0+PTX"
    cuda_home: str | None            # /usr/local/cuda on devel images


def wants_devel(declared) -> bool:
    return any(e.kind == "cuda" for e in getattr(declared, "extensions", ()))


def arch_list(choice, caps: list[str]) -> str | None:
    """From the GPUs the plan was made for; without them, every arch the torch wheel has."""
    if not choice.gpu:
        return None
    caps = sorted(set(c for c in caps if c), key=lambda c: tuple(int(x) for x in c.split(".")))
    if caps:
        return ";".join(caps[:-1] + [caps[-1] + "+PTX"])
    t = choice.torch
    arch = load().arch_row(t.version, t.variant) if t else None
    return ";".join(arch.archs) if arch else None


def plan_project_package(declared, choice, caps: list[str]) -> tuple[ProjectPackage | None, list[str], list[str]]:
    """(the package step or None, reasons, extra apt packages)."""
    if declared is None:
        return None, [], []
    pkg = next((p for p in getattr(declared, "local_packages", ()) if p.path in (".", "./")), None)
    if pkg is None:
        return None, [], []
    exts = tuple(e.name for e in pkg.extensions)
    cuda = any(e.kind == "cuda" for e in pkg.extensions)
    reasons = [f"{pkg.origin}: the project is a package ({pkg.name or pkg.path}); installed editable from "
               "/workspace at build time, so it imports in the container and code edits need no rebuild"]
    apt: list[str] = []
    arch = None
    if exts:
        apt = ["g++"]
        arch = arch_list(choice, caps) if cuda else None
        where = f"compiled into {EXT_DIR} in the image (rebuilt when an extension source, the lock or the metadata changes)"
        if cuda and not choice.has_nvcc:
            reasons.append(f"extensions {', '.join(exts)} include a CUDAExtension but this image has no nvcc "
                           f"(no GPU planned): they build for the CPU only if setup.py allows it; {where}")
        else:
            reasons.append(f"extensions {', '.join(exts)}: built against the image's torch with g++"
                           + (f", CUDA_HOME=/usr/local/cuda, TORCH_CUDA_ARCH_LIST={arch}" if cuda and arch else "")
                           + f"; {where}")
    return ProjectPackage(pkg.path, pkg.name, exts, cuda, arch,
                          "/usr/local/cuda" if choice.has_nvcc else None), reasons, apt
