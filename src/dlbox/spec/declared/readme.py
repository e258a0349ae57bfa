"""What a README declares: the front matter of a Hugging Face Space (`sdk: gradio` +
`sdk_version: 4.44.0` and `python_version` declare what the Space runs on, though no requirements
file lists it: https://huggingface.co/docs/hub/spaces-config-reference), and the requirements file
its install instructions name (`pip install -r requirements/pt2.txt`)."""

from __future__ import annotations

import shlex
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from dlbox.spec.declared.types import Collector, Dep, Origin, PythonRange

SDKS = ("gradio", "streamlit")
READMES = ("README.md", "README.rst", "README.txt", "README")
PIP = (("pip",), ("pip3",), ("python", "-m", "pip"), ("python3", "-m", "pip"), ("uv", "pip"))


def readme_requirements(project: Path) -> tuple[str, Origin] | None:
    """The first existing requirements file that the README's install commands name with
    `pip install -r FILE` (shell prompts and `!`/`%` notebook prefixes allowed), inside the project,
    and the README line that names it."""
    for name in READMES:
        try:
            lines = (project / name).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            for path in _requirement_args(line):
                target = (project / path).resolve()
                if target.is_relative_to(project.resolve()) and target.is_file():
                    return str(target.relative_to(project.resolve())), Origin(name, number)
        return None
    return None


def _requirement_args(line: str) -> list[str]:
    text = line.strip().lstrip("$>!% ").strip("`")
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return []
    for i in range(len(words)):   # "cd x && pip install -r y": the pip part of a compound line
        for prefix in PIP:
            if tuple(words[i:i + len(prefix)]) == prefix and "install" in words[i + len(prefix):i + len(prefix) + 2]:
                rest = words[i + len(prefix):]
                return [rest[j + 1] for j, w in enumerate(rest[:-1]) if w in ("-r", "--requirement")] + \
                       [w.split("=", 1)[1] for w in rest if w.startswith("--requirement=")]
    return []


def read_space_readme(project: Path, out: Collector) -> None:
    path = project / "README.md"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return
    end = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() == "---"), None)
    if end is None:
        return
    from ruamel.yaml import YAML  # only a README with front matter pays for it
    from ruamel.yaml.error import YAMLError

    try:
        meta = YAML(typ="safe").load("\n".join(lines[1:end]))
    except YAMLError:
        return
    if not isinstance(meta, dict) or meta.get("sdk") not in SDKS:
        return
    out.files.append("README.md")
    line = next((i for i, ln in enumerate(lines[:end], 1) if ln.startswith("sdk:")), None)
    sdk, version = meta["sdk"], str(meta.get("sdk_version") or "").strip()
    spec = f"=={version}" if version else ""
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        spec = ""
    if not any(d.name == sdk for d in out.deps):
        out.deps.append(Dep(name=sdk, requirement=sdk + spec, origin=Origin("README.md", line), specifier=spec,
                            source="readme"))
        out.notes.append(f"README.md:{line}: a Hugging Face Space on {sdk}{spec} (its front matter)")
    py = str(meta.get("python_version") or "").strip()
    if py and out.python is None and py.replace(".", "").isdigit():
        out.python = PythonRange(f"=={'.'.join(py.split('.')[:2])}.*", Origin("README.md"))
