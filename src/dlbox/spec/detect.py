"""`dlbox init`: write a dlbox.toml from what the project already declares.

Reads requirements.txt, environment.yml (conda) or pyproject.toml for the Python version,
a torch pin and where the dependencies are. Writes nothing when dlbox.toml exists.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.errors import SpecError
from dlbox.spec import SPEC_FILE

DEFAULT_PYTHON = "3.11"
WEB_PORTS = {"gradio": "7860", "streamlit": "8501", "fastapi": "8000", "flask": "5000", "jupyterlab": "8888"}


@dataclass
class Detected:
    python: str = DEFAULT_PYTHON
    torch: str = "auto"
    requirements: str | None = None
    pip: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _torch_pin(lines: list[str]) -> str | None:
    for ln in lines:
        m = re.match(r"^\s*torch\s*==\s*([0-9][0-9.]*)", ln)
        if m:
            return m.group(1)
    return None


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;@]", ln.strip(), maxsplit=1)[0].lower() for ln in lines if ln.strip()}


def _python_from_spec(text: str) -> str | None:
    m = re.search(r"3\.(\d+)", text or "")
    return f"3.{m.group(1)}" if m else None


def detect(project: Path) -> Detected:
    d = Detected()
    lines: list[str] = []
    req = project / "requirements.txt"
    env_yml = next((project / n for n in ("environment.yml", "environment.yaml") if (project / n).is_file()), None)
    pyproject = project / "pyproject.toml"
    if req.is_file():
        d.requirements = "requirements.txt"
        lines = [ln for ln in req.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        d.notes.append("dependencies: requirements.txt")
    elif env_yml is not None:
        text = env_yml.read_text()
        py = re.search(r"^\s*-\s*python\s*[=<>]*\s*([0-9.]+)", text, re.M)
        if py:
            d.python = _python_from_spec(py.group(1)) or d.python
        pip_block = re.search(r"^\s*-\s*pip:\s*\n((?:\s+-\s*.+\n?)+)", text, re.M)
        pip_lines = [re.sub(r"^\s*-\s*", "", ln).strip() for ln in (pip_block.group(1).splitlines() if pip_block else [])]
        conda = [re.sub(r"^\s*-\s*", "", ln).strip() for ln in re.findall(r"^\s*-\s*[A-Za-z][^:\n]*$", text, re.M)]
        conda = [c.replace("=", "==", 1) if re.match(r"^[\w.-]+=[0-9]", c) else c for c in conda]
        skip = {"python", "pip", "cudatoolkit", "pytorch-cuda", "cudnn", "mkl"}
        keep = [c for c in conda if _names([c]) - skip] + pip_lines
        keep = [("torch" + c[7:]) if c.startswith("pytorch") else c for c in keep]
        lines = keep
        d.pip = [c for c in keep if not c.startswith("torch") or c.startswith(("torchvision", "torchaudio"))]
        d.notes.append(f"dependencies: {env_yml.name} (conda packages mapped to pip names)")
    elif pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{pyproject}: not valid TOML: {exc}") from None
        proj = data.get("project", {})
        d.python = _python_from_spec(proj.get("requires-python", "")) or d.python
        lines = list(proj.get("dependencies", []))
        d.pip = [ln for ln in lines if not re.match(r"^\s*torch\b(?![-_a-z])", ln)]
        d.notes.append("dependencies: pyproject.toml [project] dependencies")
    if d.python not in ("3.10", "3.11", "3.12"):
        d.notes.append(f"python {d.python} from the project; dlbox's images have 3.10-3.12 from the OS")
    pin = _torch_pin(lines)
    if pin:
        d.torch = pin
        d.notes.append(f"torch pinned to {pin} by the project")
    names = _names(lines)
    d.ports = sorted({p for n, p in WEB_PORTS.items() if n in names})
    return d


def spec_text(d: Detected) -> str:
    out = ["# dlbox.toml: the project's deep-learning environment. `dlbox plan` shows what it resolves to.",
           *(f"# detected {n}" for n in d.notes), "", "[env]", f'python = "{d.python}"',
           f'torch = "{d.torch}"          # "auto": the newest torch this host\'s driver and GPU can run']
    if d.requirements:
        out.append(f'requirements = "{d.requirements}"')
    if d.pip:
        out.append("pip = [" + ", ".join(f'"{p}"' for p in d.pip) + "]")
    out += ["", "[run]", 'gpus = "auto"          # all GPUs when the host can give them, else CPU with a warning',
            'shm = "host"           # --ipc=host: PyTorch DataLoader workers need more than 64 MB of /dev/shm']
    out.append("ports = [" + ", ".join(f'"{p}"' for p in d.ports) + "]" if d.ports else '# ports = ["7860"]')
    out += ["", "[net]", 'proxy = "auto"         # from this shell\'s http(s)_proxy', ""]
    return "\n".join(out)


def init(project: Path, *, force: bool = False) -> tuple[Path, Detected]:
    target = project / SPEC_FILE
    if target.exists() and not force:
        raise SpecError(f"{target} already exists", fix="edit it, or `dlbox init --force` (the old file is kept as .bak)")
    d = detect(project)
    if target.exists():
        target.replace(target.with_suffix(".toml.bak"))
    target.write_text(spec_text(d))
    return target, d
