"""Read what a project declares about its environment: `read_declared(project) -> Declared`.

Files read, when present: requirements.txt (or the file dlbox.toml names, with its -r/-c
includes), pyproject.toml, setup.cfg, setup.py, environment.yml/.yaml, uv.lock,
.python-version; plus the code itself for torch.compile calls (and, for `init`, its imports).
Pure reading: nothing is installed or resolved here. Errors are SpecErrors naming file:line.
"""

from __future__ import annotations

from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from dlbox.errors import SpecError
from dlbox.spec.declared.code import CodeScan, scan_code
from dlbox.spec.declared.conda import read_environment
from dlbox.spec.declared.pyproject import read_pyproject
from dlbox.spec.declared.readme import read_space_readme, readme_requirements
from dlbox.spec.declared.requirements import read_requirements
from dlbox.spec.declared.setup_py import read_setup
from dlbox.spec.declared.system import system_needs
from dlbox.spec.declared.types import (
    Collector,
    Declared,
    Dep,
    Extension,
    FindLinks,
    Index,
    LocalPackage,
    LockedPackage,
    Origin,
    PythonRange,
    SystemNeed,
    Unmapped,
    UvLock,
)

__all__ = ["read_declared", "declared_for", "default_requirements", "Declared", "Dep", "Extension", "FindLinks", "Index", "LocalPackage", "LockedPackage",
           "Origin", "PythonRange", "SystemNeed", "Unmapped", "UvLock", "CodeScan", "ENV_FILES"]

ENV_FILES = ("environment.yml", "environment.yaml")


def read_declared(project: Path | str, *, requirements: str | None = None, imports: bool = False,
                  backend: bool = True) -> Declared:
    """Everything the project at `project` declares. `requirements`: the file dlbox.toml names
    (else requirements.txt when present). `imports`: also propose PyPI names for its imports.
    `backend`: ask the build backend when setup.py cannot be read without running it."""
    project = Path(project).resolve()
    out = Collector()
    req = project / (requirements or default_requirements(project) or "requirements.txt")
    if requirements and not req.is_file():
        raise SpecError(f"{requirements}: no such requirements file in {project}")
    if req.is_file():
        read_requirements(project, req, out)
    pyproject_package = False
    dynamic = False
    if (project / "pyproject.toml").is_file():
        data = read_pyproject(project, out)
        pyproject_package = any(p.path == "." for p in out.local_packages)
        dynamic = "dependencies" in ((data.get("project") or {}).get("dynamic") or ())
    if (project / "setup.py").is_file() or (project / "setup.cfg").is_file() or dynamic:
        read_setup(project, out, pyproject_package=pyproject_package, dynamic=dynamic and backend)
    system: list[SystemNeed] = []
    for env in ENV_FILES:
        if (project / env).is_file():
            system += read_environment(project, project / env, out)
            break
    if (project / "uv.lock").is_file():
        from dlbox.spec.declared.uvlock import read_uv_lock
        read_uv_lock(project, out)
    _python_version_file(project, out)
    read_space_readme(project, out)
    scan = scan_code(project, imports=imports)
    deps = tuple(out.deps)
    extensions = tuple(e for p in out.local_packages for e in p.extensions)
    system += system_needs(deps, extensions, tuple(scan.torch_compile))
    if not deps and not out.local_packages and not out.lock:
        out.notes.append("no dependencies declared (no requirements.txt, pyproject.toml, setup.py, "
                         "environment.yml or uv.lock)")
    own = {canonicalize_name(p.name) for p in out.local_packages if p.name}   # `import whisper` in whisper
    imported = tuple(d for d in scan.proposal() if d.name not in own) if imports else ()
    return out.freeze(system=tuple(system), torch_compile=tuple(scan.torch_compile), imported=imported)


def default_requirements(project: Path) -> str | None:
    """The project's requirements file when it is not requirements.txt but still unambiguous:
    the one requirements*.txt at the top (requirements-gpu.txt), else requirements/requirements.txt,
    requirements/base.txt or requirements/main.txt, else the file the README's install commands
    name (`pip install -r requirements/pt2.txt`)."""
    if (project / "requirements.txt").is_file():
        return "requirements.txt"
    top = sorted(p.name for p in project.glob("requirements*.txt") if p.is_file())
    if len(top) == 1:
        return top[0]
    for name in ("requirements/requirements.txt", "requirements/base.txt", "requirements/main.txt"):
        if (project / name).is_file():
            return name
    named = readme_requirements(project)   # README: pip install -r requirements/pt2.txt
    return named[0] if named else None


def declared_for(spec) -> Declared:
    """What the project of a loaded Spec declares (its [env] requirements file, if named).
    The build backend is not run here: plan stays fast; `init` asks it."""
    return read_declared(spec.project_dir, requirements=spec.env.requirements, backend=False)


def _python_version_file(project: Path, out: Collector) -> None:
    """.python-version (pyenv, uv): "3.10" or "3.10.12" means that minor version."""
    f = project / ".python-version"
    if not f.is_file():
        return
    first = next((ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")), "")
    parts = first.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        out.notes.append(f".python-version: {first!r} is not a CPython version; ignored")
        return
    out.files.append(".python-version")
    spec = f"=={parts[0]}.{parts[1]}.*"
    if out.python is None:
        out.python = PythonRange(spec, Origin(".python-version", 1))
        return
    try:
        both = SpecifierSet(out.python.specifier) & SpecifierSet(spec)
    except InvalidSpecifier:
        return
    out.python = PythonRange(str(both), Origin(f"{out.python.origin}, .python-version:1"))
