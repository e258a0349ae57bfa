"""Issue 11 items 14 and 22: odd input files and an unreachable engine each get one clear error.

- `requirements = "../x.txt"` used to install the project's own x.txt (BuildKit resolves the mount
  inside the context) and never rebuilt when ../x.txt changed: now refused, naming the fix.
- non-UTF-8 dlbox.toml / nvidia-smi output: a traceback before; now the file and the byte.
- `dlbox import` with the engine unreachable: a zstd "premature end" before; now the engine.
"""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from tests.helpers.dlbox_cli import dlbox

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"


def _one_clear_error(proc, *needles: str) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 70), text
    assert "Traceback" not in text and "unexpectedly" not in text, text
    errors = [ln for ln in text.splitlines() if ln.lower().startswith("error")]
    assert len(errors) == 1, text
    for n in needles:
        assert n in text, text
    return text


@pytest.fixture
def project(tmp_path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    (p / "dlbox.toml").write_text('name = "odd"\n[env]\ntorch = "none"\n')
    return p


def test_requirements_outside_the_project_is_refused(project):
    (project.parent / "x.txt").write_text("six\n")
    (project / "x.txt").write_text("packaging\n")     # what the build used to install instead
    (project / "dlbox.toml").write_text('[env]\ntorch = "none"\nrequirements = "../x.txt"\n')
    text = _one_clear_error(dlbox("plan", str(project), check=False), "'../x.txt'", "outside the project")
    assert "dlbox.toml:3" in text and "cp ../x.txt" in text


def test_requirements_linked_out_of_the_project_is_refused(project):
    (project.parent / "x.txt").write_text("six\n")
    (project / "req.txt").symlink_to(project.parent / "x.txt")
    (project / "dlbox.toml").write_text('[env]\ntorch = "none"\nrequirements = "req.txt"\n')
    _one_clear_error(dlbox("build", str(project), check=False), "links to", "outside the project")


def test_requirements_in_a_subdirectory_still_work(project):
    (project / "deps").mkdir()
    (project / "deps" / "r.txt").write_text("six\n")
    (project / "dlbox.toml").write_text('[env]\ntorch = "none"\nrequirements = "deps/r.txt"\n')
    assert dlbox("plan", str(project), check=False).returncode == 0


def test_non_utf8_dlbox_toml(project):
    (project / "dlbox.toml").write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    _one_clear_error(dlbox("plan", str(project), check=False), "dlbox.toml", "not UTF-8", "0xe9")


def test_dlbox_toml_with_a_bom_is_read(project):
    (project / "dlbox.toml").write_bytes(codecs.BOM_UTF8 + b'name = "bom"\n[env]\ntorch = "none"\n')
    assert dlbox("plan", str(project), check=False).returncode == 0


def test_non_utf8_requirements(project):
    (project / "requirements.txt").write_bytes(b"numpy\xff\xfe\n")
    (project / "dlbox.toml").write_text('[env]\ntorch = "none"\nrequirements = "requirements.txt"\n')
    _one_clear_error(dlbox("plan", str(project), check=False), "requirements.txt")


@pytest.mark.parametrize("content,needle", [
    (b"\x00\x01\x02binary\xff", "not UTF-8"),
    (b"", "is empty"),
    (b"just some notes\nnothing else\n", "no driver version"),
])
def test_odd_nvidia_smi_outputs(project, tmp_path, content, needle):
    f = tmp_path / "smi.txt"
    f.write_bytes(content)
    _one_clear_error(dlbox("plan", str(project), "--nvidia-smi", str(f), check=False), needle)


def test_utf16_nvidia_smi_from_powershell_is_read(project, tmp_path):
    """PowerShell 5's `nvidia-smi > out.txt` writes UTF-16 with a BOM."""
    f = tmp_path / "smi.txt"
    f.write_bytes((FIX / "h100-570.133.20.txt").read_text().encode("utf-16"))
    proc = dlbox("plan", str(project), "--nvidia-smi", str(f), "--json", check=False)
    assert proc.returncode == 0 and '"gpu": true' in proc.stdout, proc.stderr


def _archive(tmp_path: Path) -> Path:
    f = tmp_path / "img.tar.zst"
    f.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    (tmp_path / "img.tar.zst.sha256").write_text(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  img.tar.zst\n")
    return f


def test_import_with_the_engine_unreachable(tmp_path):
    proc = dlbox("import", str(_archive(tmp_path)), env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
                 check=False)
    _one_clear_error(proc, "Docker engine is not running")


def test_import_of_a_directory_and_of_a_binary_sidecar(tmp_path):
    _one_clear_error(dlbox("import", str(tmp_path), check=False), "is a directory")
    f = _archive(tmp_path)
    (tmp_path / "img.tar.zst.sha256").write_bytes(b"\xff\xfe\x00junk")
    _one_clear_error(dlbox("import", str(f), check=False), "not a sha256 checksum file")
