"""Requirements files with pip's whole syntax: the inputs that broke dlbox on real projects (issue 12)."""

from pathlib import Path

import pytest

from dlbox.errors import SpecError
from dlbox.spec.declared import read_declared


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_includes_relative_to_the_including_file_with_origins(tmp_path):
    write(tmp_path, {
        "requirements.txt": "-r requirements/base.txt\n-c requirements/constraints.txt\ngradio>=4\n",
        "requirements/base.txt": "-r common.txt\nopencv-python  # vision\n",
        "requirements/common.txt": "numpy>=1.24\n",
        "requirements/constraints.txt": "numpy<2\n",
    })
    d = read_declared(tmp_path)
    assert [(x.name, str(x.origin)) for x in d.deps] == [
        ("numpy", "requirements/common.txt:1"), ("opencv-python", "requirements/base.txt:2"),
        ("gradio", "requirements.txt:3")]
    assert [(c.name, c.specifier) for c in d.constraints] == [("numpy", "<2")]
    assert d.files[:4] == ("requirements.txt", "requirements/base.txt", "requirements/common.txt",
                           "requirements/constraints.txt")


def test_cuda_extra_index_local_version_marker_and_hashes(tmp_path):
    write(tmp_path, {"requirements.txt": (
        "--extra-index-url https://download.pytorch.org/whl/cu121\n"
        "torch==2.2.2+cu121 ; platform_system == \"Linux\"\n"
        "numpy==1.26.4 \\\n    --hash=sha256:aaaa --hash=sha256:bbbb\n"
        "-i https://mirror.example/simple\n-f ./wheels\n--no-index\n")})
    (tmp_path / "wheels").mkdir()
    d = read_declared(tmp_path)
    torch = d.dep("torch")
    assert torch.specifier == "==2.2.2+cu121" and torch.local_version == "cu121"
    assert torch.marker == 'platform_system == "Linux"' and str(torch.origin) == "requirements.txt:2"
    assert d.dep("numpy").hashes == ("sha256:aaaa", "sha256:bbbb")
    assert [(i.url, i.kind, i.origin.line) for i in d.indexes] == [
        ("https://download.pytorch.org/whl/cu121", "extra", 1), ("https://mirror.example/simple", "primary", 5)]
    assert [f.location for f in d.find_links] == ["wheels"]
    assert d.no_index is not None


def test_editable_local_paths_git_and_url_requirements(tmp_path):
    write(tmp_path, {"requirements.txt": (
        "-e .\n-e ./third_party/lib\n"
        "git+https://github.com/openai/CLIP.git@a1b2c3#egg=clip\n"
        "timm @ https://files.example/timm-1.0-py3-none-any.whl\n"
        "https://example.com/pkg-1.0.tar.gz\n"), "third_party/lib/setup.py": ""})
    d = read_declared(tmp_path)
    assert [(p.path, p.editable, p.origin.line) for p in d.local_packages] == [
        (".", True, 1), ("./third_party/lib", True, 2)]
    clip = d.dep("clip")
    assert clip.vcs and clip.url.startswith("git+https://github.com/openai/CLIP.git")
    assert clip.requirement.startswith("clip @ git+https://")
    assert d.dep("timm").url == "https://files.example/timm-1.0-py3-none-any.whl"
    assert any("no package name" in n for n in d.notes)
    assert any(s.debian == ("git",) and s.because == "clip" for s in d.system)


@pytest.mark.parametrize("files, where, words", [
    ({"requirements.txt": "numpy\n-r missing.txt\n"}, "requirements.txt:2", "no such file"),
    ({"requirements.txt": "torch>=\n"}, "requirements.txt:1", "torch>="),
    ({"requirements.txt": "-r a.txt\n", "a.txt": "-r requirements.txt\n"}, "requirements.txt", "include each other"),
    ({"requirements.txt": "-e ./nowhere\n"}, "requirements.txt:1", "no such directory"),
])
def test_bad_requirements_name_the_line(tmp_path, files, where, words):
    write(tmp_path, files)
    with pytest.raises(SpecError) as e:
        read_declared(tmp_path)
    assert where in str(e.value) and words in str(e.value)


def test_named_requirements_file_and_missing_one(tmp_path):
    write(tmp_path, {"reqs/dev.txt": "pytest\n"})
    assert read_declared(tmp_path, requirements="reqs/dev.txt").names() == ("pytest",)
    with pytest.raises(SpecError, match="no such requirements file"):
        read_declared(tmp_path, requirements="reqs/nope.txt")


def test_declared_is_json_ready(tmp_path):
    import json
    write(tmp_path, {"requirements.txt": "--extra-index-url https://x/simple\ntorch==2.2.2+cu121\n-e .\n"})
    d = read_declared(tmp_path)
    back = json.loads(json.dumps(d.to_dict()))
    assert back["deps"][0]["origin"] == {"file": "requirements.txt", "line": 2}
    assert back["indexes"][0]["kind"] == "extra" and back["local_packages"][0]["path"] == "."
