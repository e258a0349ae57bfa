"""What the project's Python code shows: the modules it imports (mapped to PyPI names through
catalog/import_names.json, as a proposal for `dlbox init`) and where it calls torch.compile."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.spec.declared.catalog import import_rows
from dlbox.spec.declared.types import Dep, Origin

SKIP_DIRS = {".git", ".venv", "venv", "env", ".env", "node_modules", "build", "dist", "site-packages",
             "__pycache__", ".tox", ".mypy_cache", ".pytest_cache", ".eggs", "wandb", "outputs", "logs"}
MAX_FILES = 3000
MAX_BYTES = 2_000_000


@dataclass
class CodeScan:
    imports: dict[str, Origin] = field(default_factory=dict)     # top-level module -> first place imported
    unknown: dict[str, Origin] = field(default_factory=dict)     # not stdlib, not local, not in the table
    torch_compile: list[Origin] = field(default_factory=list)
    files: int = 0
    truncated: bool = False

    def proposal(self) -> list[Dep]:
        rows = import_rows()
        out: dict[str, Dep] = {}
        for module, where in sorted(self.imports.items()):
            name = rows.get(module)
            if name and name not in out:
                out[name] = Dep(name=name, requirement=name, origin=where, source="imports")
        return sorted(out.values(), key=lambda d: d.name)


def python_files(project: Path) -> list[Path]:
    found: list[Path] = []
    stack = [project]
    while stack and len(found) < MAX_FILES:
        d = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                continue
            if e.is_dir() and e.name not in SKIP_DIRS and not e.name.startswith("."):
                stack.append(e)
            elif e.suffix == ".py" and e.is_file():
                found.append(e)
    return found


def scan_code(project: Path, *, imports: bool = True) -> CodeScan:
    """imports=False: only torch.compile calls (files without ".compile" are not parsed: fast)."""
    scan = CodeScan()
    files = python_files(project)
    scan.truncated = len(files) >= MAX_FILES
    top_level = _modules_in(project) | _modules_in(project / "src")
    plain_dirs = {d.name for d in project.iterdir() if d.is_dir()} if project.is_dir() else set()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    rows = import_rows()
    for f in files:
        try:
            if f.stat().st_size > MAX_BYTES:
                continue
            data = f.read_bytes()
            if not imports and b".compile" not in data:
                continue
            tree = ast.parse(data, filename=str(f))
        except (SyntaxError, ValueError, OSError):
            continue
        scan.files += 1
        rel = str(f.relative_to(project))
        build_script = rel == "setup.py"   # its imports (setuptools, torch.utils.cpp_extension) are the build's
        # what `import X` finds before site-packages: the project's own top-level modules and
        # packages, and a script's neighbours (its directory is sys.path[0]; not inside a package)
        local = top_level if (f.parent / "__init__.py").is_file() else top_level | _modules_in(f.parent)
        for node in ast.walk(tree):
            for module in () if build_script else _imported(node):
                top = module.split(".")[0]
                key = module if module in rows else top
                # a plain directory (data/, datasets/) is not what `import datasets` means
                if top in stdlib or top in local or (top in plain_dirs and key not in rows):
                    continue
                where = Origin(rel, node.lineno)
                (scan.imports if key in rows else scan.unknown).setdefault(key, where)
            line = _torch_compile_line(node)
            if line:
                scan.torch_compile.append(Origin(rel, line))
    scan.torch_compile.sort(key=lambda o: (o.file, o.line or 0))
    return scan


def _modules_in(directory: Path) -> set[str]:
    """The modules `import X` finds in DIRECTORY: X.py files and X/ packages (with __init__.py)."""
    try:
        return {e.stem if e.suffix == ".py" else e.name for e in directory.iterdir()
                if (e.suffix == ".py" and e.is_file()) or (e.is_dir() and (e / "__init__.py").is_file())}
    except OSError:
        return set()


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _torch_compile_line(node: ast.AST) -> int | None:
    """The line of torch.compile(model), @torch.compile(...) (a Call) or a bare @torch.compile."""
    if isinstance(node, ast.Call) and _is_torch_compile_ref(node.func):
        return node.lineno
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return next((d.lineno for d in node.decorator_list if _is_torch_compile_ref(d)), None)
    return None


def _is_torch_compile_ref(f: ast.AST) -> bool:
    return isinstance(f, ast.Attribute) and f.attr == "compile" and isinstance(f.value, ast.Name) \
        and f.value.id == "torch"
