"""`dlbox init`: write a dlbox.toml from what the project declares (dlbox.spec.declared).

It always says what it read, what it chose and why, and what it could not map. With nothing
declared, the imports of the code become the proposal (catalog/import_names.json), written
active so the project runs unedited, and marked for review. Writes nothing when dlbox.toml exists.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from dlbox.catalog.pythons import choose_python
from dlbox.errors import SpecError
from dlbox.spec import SPEC_FILE
from dlbox.spec.declared import Declared, default_requirements, read_declared
from dlbox.spec.declared.readme import readme_requirements

DEFAULT_PYTHON = "3.11"
WEB_PORTS = {"gradio": "7860", "streamlit": "8501", "fastapi": "8000", "flask": "5000", "jupyterlab": "8888"}
TORCH = "torch"


@dataclass
class Detected:
    python: str = DEFAULT_PYTHON
    torch: str = "auto"
    requirements: str | None = None
    pip: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # what was read and decided, for people
    problems: list[str] = field(default_factory=list)   # what needs a person: unmapped, refusals
    proposed: bool = False                              # pip came from the import scan


def _torch_pin(d: Declared) -> tuple[str | None, str | None]:
    """(exact version, note) from `torch==2.2.2+cu121`; ranges stay for the plan to honour."""
    dep = d.dep(TORCH)
    if dep is None or not dep.specifier:
        return None, None
    spec = dep.specifier
    if spec.endswith(".*") and spec.count(".") == 3:   # conda's pytorch=2.1.0 -> ==2.1.0.*: that release
        spec = spec[:-2]
    if spec.startswith("==") and "," not in spec and "*" not in spec:
        version = spec[2:].split("+", 1)[0]
        variant = f" (its +{dep.local_version} variant is chosen by the plan from the host)" if dep.local_version else ""
        return version, f"torch pinned to {version} by {dep.origin}{variant}"
    return None, f"torch {spec} ({dep.origin}): the plan keeps torch inside this range"


def detect(project: Path, *, prefer_python: tuple[str, ...] = ()) -> Detected:
    """`prefer_python`: minors this host has a local torch wheel for (see catalog.pythons)."""
    declared = read_declared(project, imports=True)
    d = Detected()
    d.notes += [f"read {', '.join(declared.files)}"] if declared.files else []
    pin, note = _torch_pin(declared)
    if pin:
        d.torch = pin
    if note:
        d.notes.append(note)
    _python(d, declared, prefer_python)
    req_name = default_requirements(project)
    if req_name:
        d.requirements = req_name
        named = readme_requirements(project)
        if named is not None and named[0] == req_name:
            d.notes.append(f"requirements file {req_name}: the one the README installs ({named[1]})")
        d.pip = [x.requirement for x in declared.deps if x.source == "readme" and x.requirement]
    else:
        d.pip = [x.requirement or x.url for x in declared.deps
                 if x.group is None and x.name != TORCH and (x.requirement or x.url)]
    names = set(declared.names())
    # a package that installs itself but lists no dependency (install_requires=[]) declares
    # nothing about its environment either: its imports are the proposal
    nothing = not declared.lock and not any(x.group is None for x in declared.deps)
    if nothing:
        proposal = [x for x in declared.imported]
        d.proposed = bool(proposal)
        d.pip += [x.name for x in proposal if x.name != TORCH and x.name not in d.pip]
        if proposal:
            what = "nothing declared" if declared.empty else "the package declares no dependencies"
            d.notes.append(f"{what}: dependencies proposed from the code's imports: "
                           + ", ".join(f"{x.name} ({x.origin})" for x in proposal))
        else:
            d.problems.append("nothing declared and no third-party imports found: add [env] pip = [...] by hand")
        names |= {x.name for x in proposal}
    else:
        # git+https://github.com/huggingface/peft.git without #egg=: pip learns its name by building
        # it; the repository's name is a good enough guess to not call `import peft` undeclared
        guessed = {canonicalize_name(d.url.rstrip("/").rsplit("/", 1)[-1].split("@")[0].removesuffix(".git"))
                   for d in declared.deps if d.url and not d.name}
        missing = [x for x in declared.imported if x.name not in names | guessed and x.name != TORCH]
        if missing:
            d.notes.append("imported but not declared (not added): "
                           + ", ".join(f"{x.name} ({x.origin})" for x in missing))
    for p in declared.local_packages:
        d.notes.append(f"the project installs {p.path} ({p.origin})"
                       + (f"; extensions: {', '.join(f'{e.name} [{e.kind}]' for e in p.extensions)}"
                          if p.extensions else ""))
    for s in declared.system:
        d.notes.append(f"system packages {' '.join(s.debian)} for {s.because}"
                       + (f" ({s.origin})" if s.origin else "") + f": {s.reason}")
    for u in declared.unmapped:
        d.problems.append(f"{u.origin}: conda package {u.name} is not installed from PyPI: {u.reason}")
    for i in declared.indexes:
        d.notes.append(f"index {i.url} ({i.kind}, {i.origin})")
    d.notes += [n for n in declared.notes if not n.startswith("no dependencies declared")]
    d.ports = sorted({p for n, p in WEB_PORTS.items() if n in names})
    return d


def _python(d: Detected, declared: Declared, prefer: tuple[str, ...]) -> None:
    rng = declared.python
    choice = choose_python(rng.specifier if rng else None, where=str(rng.origin) if rng else "",
                           torch=d.torch if d.torch != "auto" else None, prefer=prefer)
    if choice.python:
        d.python = choice.python
        d.notes.append(choice.reason)
        return
    # no Python fits: write the nearest that works and say so; `plan` repeats it
    d.problems.append(choice.refusal or "no Python fits")
    fix = choice.refusal or ""
    if 'python = "' in fix:
        d.python = fix.split('python = "', 1)[1].split('"', 1)[0]
    if 'torch = "' in fix:
        d.torch = fix.split('torch = "', 1)[1].split('"', 1)[0]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(p) for p in items) + "]"


def spec_text(d: Detected) -> str:
    out = ["# dlbox.toml: the project's deep-learning environment. `dlbox plan` shows what it resolves to.",
           *(f"# {n}" for n in d.notes), *(f"# CHECK: {p}" for p in d.problems), "", "[env]",
           f"python = {json.dumps(d.python)}",
           f'torch = {json.dumps(d.torch)}          # "auto": the newest torch this host\'s driver and GPU can run']
    if d.requirements:
        out.append(f"requirements = {json.dumps(d.requirements)}")
    if d.pip:
        if d.proposed:
            out.append("# proposed from the code's imports (nothing was declared): check, then keep or edit")
        out.append("pip = " + _toml_list(d.pip))
    out += ["", "[run]", 'gpus = "auto"          # all GPUs when the host can give them, else CPU with a warning',
            'shm = "host"           # --ipc=host: PyTorch DataLoader workers need more than 64 MB of /dev/shm']
    out.append("ports = " + _toml_list(d.ports) if d.ports else '# ports = ["7860"]')
    out += ["", "[net]", 'proxy = "auto"         # from this shell\'s http(s)_proxy', ""]
    return "\n".join(line.replace("\n", " ") for line in out)


def init(project: Path, *, force: bool = False, prefer_python: tuple[str, ...] = ()) -> tuple[Path, Detected]:
    target = project / SPEC_FILE
    if target.exists() and not force:
        raise SpecError(f"{target} already exists", fix="edit it, or `dlbox init --force` (the old file is kept as .bak)")
    d = detect(project, prefer_python=prefer_python)
    text = spec_text(d)
    if target.exists() and target.read_bytes() != text.encode():
        _backup(target)
    real = target.resolve() if target.is_symlink() else target     # a linked dlbox.toml stays a link
    tmp = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, real)
    return target, d


def _backup(target: Path) -> Path:
    """dlbox.toml.bak, else .bak.1, .bak.2…: `init --force` twice keeps the user's original."""
    data, n = target.read_bytes(), 0
    while True:
        backup = target.with_name(target.name + (".bak" if n == 0 else f".bak.{n}"))
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            n += 1
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return backup
