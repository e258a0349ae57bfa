"""The shape of the package, read from its own imports with `ast` (nothing is imported or run).

Two rules, so the pipeline stays Spec -> Host -> Plan -> render -> engine and every stage has one room:

1. No import cycle, between top-level parts (``plan``, ``engine``, ``workflow``...) or between modules.
   Function-local imports count: moving an import into a function hides a cycle, it does not remove it.
   Imports under ``if TYPE_CHECKING:`` are for annotations only and are left out.
2. No import from a lower stage to a higher one, nor sideways between two parts of the same stage.
   A top-level part not named in ``LAYERS`` fails until it is given a place there (and in README's code map).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dlbox"

# Highest first. A part may import any part on a lower line, and nothing on its own line or above.
LAYERS: list[tuple[str, ...]] = [
    ("cli",),
    ("commands",),
    ("apps",),
    ("workflow", "setup"),
    ("doctor", "ship", "cluster", "k8s"),
    ("engine",),
    ("render",),
    ("plan",),
    ("host",),
    ("spec", "ssh"),
    ("catalog", "report", "redact", "errors"),
    ("checked",),
]
RANK = {part: len(LAYERS) - i for i, names in enumerate(LAYERS) for part in names}
ALWAYS_ALLOWED = {"__init__", "templates"}  # the package's own __init__ (version only); data files


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom at any depth, except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """dlbox modules `name` imports -> the first line that does it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in _import_nodes(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("dlbox") and target != name:
                found.setdefault(target, node.lineno)
    return found


def graph() -> dict[str, dict[str, int]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def where(module: str, line: int) -> str:
    path = all_modules()[module]
    return f"{path.relative_to(PACKAGE.parent.parent)}:{line}"


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_top_level_part_has_a_layer():
    unknown = sorted({part(m) for m in all_modules()} - set(RANK) - ALWAYS_ALLOWED)
    assert not unknown, f"give {unknown} a place in LAYERS (tests/unit/test_imports.py) and README's code map"


def test_no_import_cycle_between_modules():
    g = graph()
    cycles = find_cycles({m: set(t) for m, t in g.items()})
    assert not cycles, "import cycles between modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycle_between_parts():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        for target in targets:
            if part(module) != part(target):
                edges[part(module)].add(part(target))
    cycles = find_cycles(edges)
    assert not cycles, "import cycles between parts:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_runs_up_or_sideways():
    bad = []
    for module, targets in graph().items():
        src = part(module)
        for target, line in targets.items():
            dst = part(target)
            if src == dst or src in ALWAYS_ALLOWED or dst in ALWAYS_ALLOWED:
                continue
            if src in RANK and dst in RANK and RANK[dst] >= RANK[src]:
                bad.append(f"{where(module, line)}: {module} imports {target} ({src} may not import {dst})")
    assert not bad, "imports against the layering (" + " > ".join(
        ", ".join(names) for names in LAYERS
    ) + "):\n" + "\n".join(sorted(bad))


def test_the_checker_sees_function_local_and_relative_imports(tmp_path):
    # A guard on the guard: the reader must see imports hidden in functions and skip TYPE_CHECKING ones.
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dlbox.cli import main\n"
        "def f():\n    from dlbox.engine.docker import Docker\n    from .. import errors\n"
    )
    mod = tmp_path / "m.py"
    mod.write_text(src)
    modules = {"dlbox.host.m": mod, "dlbox.engine.docker": mod, "dlbox.cli": mod, "dlbox.errors": mod}
    found = imports_of("dlbox.host.m", mod, modules)
    assert set(found) == {"dlbox.engine.docker", "dlbox.errors"}


def test_readme_code_map_names_every_room():
    readme = (PACKAGE.parents[1] / "README.md").read_text()
    code_map = readme[readme.index("## Code map"):]
    code_map = code_map[: code_map.find("\n## ", 5) if "\n## " in code_map[5:] else len(code_map)]
    rooms = sorted({part(m) for m in all_modules()} - {"__init__"})
    missing = [r for r in rooms if f"src/dlbox/{r}" not in code_map and f"`{r}.py`" not in code_map]
    assert not missing, f"README's code map does not name {missing}"
    order = " > ".join(", ".join(names) for names in LAYERS)
    flat = " ".join(code_map.split())
    assert " ".join(order.split()) in flat, "README's code map states the layering of LAYERS"
