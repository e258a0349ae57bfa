"""setup.py / setup.cfg: the project is a package; its requirements, Python range and extensions.

setup.cfg is read as setuptools reads it (configparser). setup.py is read without running it
when its `setup()` arguments are literals (or a requirements file it opens); otherwise the build
backend itself is asked (PEP 517 `prepare_metadata_for_build_wheel`, through uv in a throwaway
environment), and its METADATA read with `packaging.metadata`. Extensions are found in the
source: `CUDAExtension`, `CppExtension` (torch.utils.cpp_extension) and setuptools `Extension`.
"""

from __future__ import annotations

import ast
import configparser
import email.parser
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import platformdirs
from packaging.utils import canonicalize_name

from dlbox.errors import SpecError
from dlbox.spec.declared.pyproject import parse_requirement
from dlbox.spec.declared.requirements import read_requirements
from dlbox.spec.declared.types import (
    Collector,
    Extension,
    LocalPackage,
    Origin,
    PythonRange,
)

_EXT = {"CUDAExtension": "cuda", "CppExtension": "cpp", "Extension": "cpp", "Pybind11Extension": "cpp",
        "SYCLExtension": "cpp", "cythonize": "cpp"}


def read_setup(project: Path, out: Collector, *, pyproject_package: bool, dynamic: bool = False) -> None:
    """Add what setup.cfg/setup.py declare. `dynamic`: pyproject leaves dependencies to the backend."""
    cfg = project / "setup.cfg"
    py = project / "setup.py"
    complete = False
    name = None
    if cfg.is_file():
        complete, name = _setup_cfg(cfg, out)
    extensions: tuple[Extension, ...] = ()
    if py.is_file():
        out.files.append("setup.py")
        try:
            tree = ast.parse(py.read_text(), filename="setup.py")
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise SpecError(f"setup.py:{getattr(exc, 'lineno', '')}: cannot parse it: {exc}") from None
        extensions = _extensions(tree)
        got, name2 = _setup_call(project, tree, out)
        complete, name = complete or got, name or name2
    if (py.is_file() or dynamic) and not complete:
        _backend(project, out)
    if not pyproject_package and (py.is_file() or cfg.is_file()):
        out.local_packages.append(LocalPackage(
            path=".", origin=Origin("setup.py" if py.is_file() else "setup.cfg"), editable=True,
            name=canonicalize_name(name) if name else None, backend="setuptools (setup.py)",
            build_requires=("setuptools",), extensions=extensions))
    elif extensions:
        i = next(i for i, p in enumerate(out.local_packages) if p.path == ".")
        p = out.local_packages[i]
        out.local_packages[i] = LocalPackage(**{**p.__dict__, "extensions": extensions})


def _setup_cfg(cfg: Path, out: Collector) -> tuple[bool, str | None]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(cfg.read_text())
    except configparser.Error as exc:
        raise SpecError(f"setup.cfg: cannot parse it: {str(exc).splitlines()[0]}") from None
    out.files.append("setup.cfg")
    lines = cfg.read_text().splitlines()

    def origin(text: str) -> Origin:
        return Origin("setup.cfg", next((n for n, ln in enumerate(lines, 1) if text in ln), None))

    opts = parser["options"] if parser.has_section("options") else {}
    for r in _cfg_list(opts.get("install_requires", "")):
        out.deps.append(parse_requirement(r, origin(r), group=None, source="setup.cfg"))
    if parser.has_section("options.extras_require"):
        for extra, value in parser["options.extras_require"].items():
            for r in _cfg_list(value):
                out.deps.append(parse_requirement(r, origin(r), group=f"extra:{extra}", source="setup.cfg"))
    if opts.get("python_requires"):
        out.python = PythonRange(opts["python_requires"].strip(), origin(opts["python_requires"].strip()))
    name = parser["metadata"].get("name") if parser.has_section("metadata") else None
    return "install_requires" in opts, name


def _cfg_list(value: str) -> list[str]:
    return [ln.split(" #", 1)[0].strip() for ln in value.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _setup_call(project: Path, tree: ast.Module, out: Collector) -> tuple[bool, str | None]:
    """Literal setup() arguments. True when install_requires was read."""
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    call = next((n for n in ast.walk(tree) if isinstance(n, ast.Call) and _callee(n) == "setup"), None)
    if call is None:
        return False, None
    kw = {k.arg: k.value for k in call.keywords if k.arg}

    def literal(node):
        if isinstance(node, ast.Name) and node.id in assigned:
            node = assigned[node.id]
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None

    name = literal(kw["name"]) if "name" in kw else None
    pr = literal(kw["python_requires"]) if "python_requires" in kw else None
    if isinstance(pr, str):
        out.python = PythonRange(pr, Origin("setup.py", kw["python_requires"].lineno))
    extras = literal(kw["extras_require"]) if "extras_require" in kw else None
    for extra, reqs in (extras or {}).items() if isinstance(extras, dict) else ():
        for r in reqs if isinstance(reqs, list) else [reqs]:
            out.deps.append(parse_requirement(r, Origin("setup.py", kw["extras_require"].lineno),
                                              group=f"extra:{extra}", source="setup.py"))
    if "install_requires" not in kw:
        return True, name if isinstance(name, str) else None
    node = kw["install_requires"]
    reqs = literal(node)
    if isinstance(reqs, (list, tuple)) and all(isinstance(r, str) for r in reqs):
        for r in reqs:
            if r.strip() and not r.strip().startswith("#"):
                out.deps.append(parse_requirement(r.strip(), Origin("setup.py", node.lineno), group=None,
                                                  source="setup.py"))
        return True, name if isinstance(name, str) else None
    # install_requires=read("requirements.txt"): the file it names, read as pip would
    files = [c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and isinstance(c.value, str)
             and c.value.endswith(".txt") and "requirement" in c.value and (project / c.value).is_file()]
    if files:
        read_requirements(project, project / files[0], out, source="setup.py")
        out.notes.append(f"setup.py: install_requires read from {files[0]}, the file setup.py opens")
        return True, name if isinstance(name, str) else None
    return False, name if isinstance(name, str) else None


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _extensions(tree: ast.Module) -> tuple[Extension, ...]:
    """Calls of the extension classes, also through a variable (`ext = CUDAExtension if cuda else
    CppExtension; ext(...)`, as pytorch/extension-cpp's setup.py does): kind "cuda" when CUDAExtension
    is among what the variable may hold."""
    aliases: dict[str, str] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            refs = {x.id for x in ast.walk(n.value) if isinstance(x, ast.Name) and x.id in _EXT} | \
                   {x.attr for x in ast.walk(n.value) if isinstance(x, ast.Attribute) and x.attr in _EXT}
            if refs and not isinstance(n.value, ast.Call):
                aliases[n.targets[0].id] = "cuda" if "CUDAExtension" in refs else "cpp"
    strings = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
               and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
               for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        callee = _callee(n)
        kind = _EXT.get(callee) or aliases.get(callee)
        if kind:
            arg = n.args[0] if n.args else next((k.value for k in n.keywords if k.arg == "name"), None)
            name = _text(arg, strings) or f"{callee}() at setup.py:{n.lineno}"
            found.append(Extension(kind=kind, name=name, origin=Origin("setup.py", n.lineno)))
    return tuple(found)


def _text(node, strings: dict[str, str]) -> str | None:
    """A string literal, a module-level string constant, or an f-string of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return strings.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = [_text(v.value if isinstance(v, ast.FormattedValue) else v, strings) for v in node.values]
        return "".join(parts) if all(p is not None for p in parts) else None
    return None


_HOOK = """
import sys, pyproject_hooks, tomllib, pathlib
src, outdir = sys.argv[1], sys.argv[2]
pp = pathlib.Path(src, "pyproject.toml")
bs = tomllib.loads(pp.read_text()).get("build-system", {}) if pp.is_file() else {}
caller = pyproject_hooks.BuildBackendHookCaller(src, bs.get("build-backend", "setuptools.build_meta:__legacy__"),
                                                backend_path=bs.get("backend-path"))
print(caller.prepare_metadata_for_build_wheel(outdir))
"""


def _cache_file(project: Path) -> Path:
    """Where the backend's answer for these exact build files is kept (plan runs often; uv takes seconds)."""
    h = hashlib.sha256()
    for name in ("setup.py", "setup.cfg", "pyproject.toml"):
        f = project / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"") + b"\0")
    base = Path(os.environ.get("DLBOX_CACHE") or platformdirs.user_cache_dir("dlbox"))
    return base / "metadata" / f"{h.hexdigest()[:32]}.METADATA"


def _backend(project: Path, out: Collector) -> None:
    """Ask the build backend for METADATA, in a throwaway environment uv makes (needs an index).
    The answer is cached by the content of setup.py/setup.cfg/pyproject.toml."""
    cached = _cache_file(project)
    if cached.is_file():
        _metadata(cached.read_text(), out)
        return
    uv = _uv()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [uv, "run", "--no-project", "--isolated", "--quiet", "--python", sys.executable,
                "--with", "pyproject-hooks", "--with", "setuptools>=61", "--with", "wheel",
                "python", "-c", _HOOK, str(project), tmp]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.notes.append(f"setup.py: the build backend could not be asked ({exc}); dependencies not read: "
                             "list them under [env] pip")
            return
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            out.notes.append(f"setup.py: running the build backend failed ({last}); dependencies not read: "
                             "list them under [env] pip")
            return
        text = (Path(tmp) / r.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(text)
    except OSError:
        pass
    _metadata(text, out)


def _metadata(text: str, out: Collector) -> None:
    meta = email.parser.Parser().parsestr(text)
    out.notes.append("setup.py: dependencies read from the build backend's metadata")
    out.deps[:] = [d for d in out.deps if d.source != "setup.py"]   # the backend's word replaces the AST's
    if meta.get("Requires-Python"):
        out.python = PythonRange(meta["Requires-Python"], Origin("setup.py"))
    for r in meta.get_all("Requires-Dist") or ():
        dep = parse_requirement(r, Origin("setup.py"), group=None, source="setup.py")
        if dep.marker and "extra ==" in dep.marker:
            extra = dep.marker.split("extra ==", 1)[1].strip().strip("'\"").split("'")[0].split('"')[0]
            dep = type(dep)(**{**dep.__dict__, "group": f"extra:{extra}"})
        out.deps.append(dep)


def _uv() -> str:
    import shutil
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return found
