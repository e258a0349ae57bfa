"""`dlbox init`: a dlbox.toml detected from what the project already declares."""

import pytest

from dlbox.catalog import load, vkey
from dlbox.catalog.pythons import providable
from dlbox.errors import SpecError
from dlbox.spec import load_spec
from dlbox.spec.detect import detect, init


def test_requirements_with_torch_pin_and_gradio(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch==2.3.1\ngradio>=4\n# comment\nnumpy\n")
    target, d = init(tmp_path)
    spec = load_spec(tmp_path)
    assert spec.env.torch == "2.3.1" and spec.env.requirements == "requirements.txt"
    assert spec.run.ports == ["7860"], "gradio's port is published"
    assert target.name == "dlbox.toml"


def test_environment_yml(tmp_path):
    (tmp_path / "environment.yml").write_text(
        "name: x\nchannels: [pytorch]\ndependencies:\n  - python=3.10\n  - pytorch=2.1.0\n  - numpy=1.26\n"
        "  - pip\n  - pip:\n    - einops\n")
    init(tmp_path)
    spec = load_spec(tmp_path)
    assert spec.env.python == "3.10" and spec.env.torch == "2.1.0"
    assert spec.env.pip == ["numpy==1.26.*", "einops"]   # conda's numpy=1.26 is any 1.26.x


def test_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\nrequires-python=">=3.12"\n'
                                            'dependencies=["torch>=2.4", "transformers"]\n')
    init(tmp_path)
    spec = load_spec(tmp_path)
    # the newest a base OS ships inside the range, not the lower bound (newer minors are uv-managed)
    shipped = {r.python for r in load().cpu_bases} | {r.python for r in load().cuda_os}
    newest = [p for p in providable() if vkey(p) >= (3, 12) and p in shipped][-1]
    assert spec.env.python == newest and newest != "3.12" and spec.env.pip == ["transformers"]


def test_a_range_only_uv_managed_minors_fit_gets_the_newest_of_them(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\nrequires-python=">=3.14"\n')
    init(tmp_path)
    assert load_spec(tmp_path).env.python == providable()[-1]


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "dlbox.toml").write_text("[env]\n")
    with pytest.raises(SpecError, match="already exists"):
        init(tmp_path)
    init(tmp_path, force=True)
    assert (tmp_path / "dlbox.toml.bak").read_text() == "[env]\n"


def test_empty_project_gets_defaults(tmp_path):
    d = detect(tmp_path)
    assert d.python == "3.11" and d.torch == "auto" and d.requirements is None


def test_requires_python_range_gets_the_newest_not_the_lower_bound(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\nrequires-python=">=3.8"\ndependencies=["numpy"]\n')
    _, d = init(tmp_path)
    shipped = {r.python for r in load().cpu_bases} | {r.python for r in load().cuda_os}
    newest = [p for p in providable() if p in shipped][-1]    # a base OS ships it: nothing to download
    assert load_spec(tmp_path).env.python == newest
    assert any(f"newest inside >=3.8 (pyproject.toml:3) that a base OS ships" in n
               and f'python = "{providable()[-1]}"' in n for n in d.notes)
    _, d = init(tmp_path, force=True, prefer_python=("3.11",))      # a local torch wheel for 3.11
    assert load_spec(tmp_path).env.python == "3.11" and any(f'python = "{providable()[-1]}"' in n for n in d.notes)


def test_python_38_with_old_torch_is_provided_as_declared(tmp_path):
    """issue 12 item 4: every CPython the chosen torch has wheels for (3.8 is uv-managed), so the
    3.8 -> 3.10 -> 3.9 circle is gone: the project gets what its environment.yml says."""
    (tmp_path / "environment.yml").write_text("dependencies:\n  - python=3.8\n  - pytorch=1.7.1\n")
    _, d = init(tmp_path)
    spec = load_spec(tmp_path)
    assert "3.8" in providable()
    assert (spec.env.python, spec.env.torch) == ("3.8", "1.7.1") and not d.problems


def test_python_no_route_reaches_names_a_pair_that_works(tmp_path):
    (tmp_path / "environment.yml").write_text("dependencies:\n  - python=3.7\n  - pytorch=1.7.1\n")
    _, d = init(tmp_path)
    spec = load_spec(tmp_path)
    assert "3.7" not in providable() and spec.env.python in providable()
    assert any(f'python = "{spec.env.python}"' in p for p in d.problems)
    assert "# CHECK:" in (tmp_path / "dlbox.toml").read_text()


def test_nothing_declared_proposes_the_imports_and_says_so(tmp_path):
    (tmp_path / "model.py").write_text("import torch\n")
    (tmp_path / "train.py").write_text("import math\nimport torch\nimport numpy as np\nfrom model import x\n"
                                       "import gradio as gr\nfrom PIL import Image\n")
    _, d = init(tmp_path)
    spec = load_spec(tmp_path)
    assert spec.env.pip == ["gradio", "numpy", "pillow"] and spec.env.torch == "auto"
    assert spec.run.ports == ["7860"]
    text = (tmp_path / "dlbox.toml").read_text()
    assert "proposed from the code's imports" in text and "train.py:3" in text


def test_empty_project_is_never_silent(tmp_path):
    _, d = init(tmp_path)
    assert d.problems and "nothing declared" in d.problems[0]


def test_declared_project_reports_undeclared_imports(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch\n")
    (tmp_path / "run.py").write_text("import torch, einops\n")
    _, d = init(tmp_path)
    assert any("imported but not declared" in n and "einops (run.py:1)" in n for n in d.notes)


@pytest.mark.parametrize("files, chosen", [
    ({"requirements-gpu.txt": "numpy\n"}, "requirements-gpu.txt"),
    ({"requirements/base.txt": "numpy\n", "requirements/dev.txt": "pytest\n"}, "requirements/base.txt"),
    ({"requirements-a.txt": "numpy\n", "requirements-b.txt": "scipy\n"}, None),
])
def test_an_unambiguous_requirements_file_other_than_requirements_txt(tmp_path, files, chosen):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    init(tmp_path)
    assert load_spec(tmp_path).env.requirements == chosen
