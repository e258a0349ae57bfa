"""`dlbox init`: a dlbox.toml detected from what the project already declares."""

import pytest

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
    assert "einops" in spec.env.pip and "numpy==1.26" in spec.env.pip


def test_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\nrequires-python=">=3.12"\n'
                                            'dependencies=["torch>=2.4", "transformers"]\n')
    init(tmp_path)
    spec = load_spec(tmp_path)
    assert spec.env.python == "3.12" and spec.env.pip == ["transformers"]


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "dlbox.toml").write_text("[env]\n")
    with pytest.raises(SpecError, match="already exists"):
        init(tmp_path)
    init(tmp_path, force=True)
    assert (tmp_path / "dlbox.toml.bak").read_text() == "[env]\n"


def test_empty_project_gets_defaults(tmp_path):
    d = detect(tmp_path)
    assert d.python == "3.11" and d.torch == "auto" and d.requirements is None
