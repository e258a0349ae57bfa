"""environment.yml through ruamel.yaml: the shapes the old regex reader broke (issue 12)."""

import pytest

from dlbox.errors import SpecError
from dlbox.spec.declared import read_declared
from dlbox.spec.declared.catalog import conda_rows
from dlbox.spec.declared.conda import conda_version

# The shape of CompVis latent-diffusion / stable-diffusion's environment.yaml: block-style channels
# (one is `defaults`), conda pins, a pip list with git+ editables and `-e .`.
LDM = """\
name: ldm
channels:
  - pytorch
  - defaults
dependencies:
  - python=3.8.5
  - pip=20.3
  - cudatoolkit=11.3
  - pytorch=1.11.0
  - torchvision=0.12.0
  - numpy=1.19.2
  - pip:
    - albumentations==0.4.3
    - pytorch-lightning==1.4.2
    - torchmetrics==0.6.0
    - torch-fidelity==0.3.0
    - -e git+https://github.com/CompVis/taming-transformers.git@master#egg=taming-transformers
    - -e .
"""


def test_latent_diffusion_shape(tmp_path):
    (tmp_path / "environment.yaml").write_text(LDM)
    d = read_declared(tmp_path)
    names = [x.name for x in d.deps]
    assert "defaults" not in names and "pytorch" not in names          # channels are never packages
    assert len(names) == len(set(names))                                # the pip list is read once
    for kept in ("pytorch-lightning", "torchmetrics", "torch-fidelity", "albumentations", "torch", "torchvision"):
        assert kept in names
    assert d.dep("torch").specifier == "==1.11.0.*" and str(d.dep("torch").origin) == "environment.yaml:9"
    assert d.dep("pytorch-lightning").origin.line == 14
    taming = d.dep("taming-transformers")
    assert taming.editable and taming.url.startswith("git+https://github.com/CompVis/taming-transformers.git")
    assert [p.path for p in d.local_packages] == ["."]
    assert d.python.specifier == "==3.8.5.*" and d.python.origin.line == 6
    assert [u.name for u in d.unmapped] == ["cudatoolkit"]
    assert any("channels pytorch, defaults" in n for n in d.notes)


def test_flow_style_channel_prefix_and_system_packages(tmp_path):
    (tmp_path / "environment.yml").write_text(
        "channels: [conda-forge, defaults]\ndependencies: [python>=3.9, 'conda-forge::ffmpeg', py-opencv, mkl, "
        "'numpy 1.24.*', matplotlib-base>=3.5, weird-conda-only-pkg]\n")
    d = read_declared(tmp_path)
    assert d.python.specifier == ">=3.9"
    assert {(x.name, x.specifier) for x in d.deps} == {
        ("opencv-python", ""), ("numpy", "==1.24.*"), ("matplotlib", ">=3.5"), ("weird-conda-only-pkg", "")}
    assert any(s.debian == ("ffmpeg",) for s in d.system)
    assert "mkl" in [u.name for u in d.unmapped]
    assert any("weird-conda-only-pkg" in n and "same name" in n for n in d.notes)
    assert not any("opencv" in n and "same name" in n for n in d.notes)


@pytest.mark.parametrize("rest, spec", [
    ("", ""), ("=1.19", "==1.19.*"), ("=1.7.0=py3.8_cuda10.1_0", "==1.7.0.*"), ("==1.19.2", "==1.19.2"),
    (">=1.2,<2", ">=1.2,<2"), ("1.19.*", "==1.19.*"), ("1.2|1.3", None), ("=1.19.*", "==1.19.*"),
])
def test_conda_versions(rest, spec):
    assert conda_version(rest) == spec


@pytest.mark.parametrize("text, words", [
    ("dependencies:\n  - numpy\n - bad indent\n", "not valid YAML"),
    ("dependencies: numpy\n", "must be a list"),
    ("- just\n- a list\n", "expected a mapping"),
    ("dependencies:\n  - pip:\n    - torch>=\n", "environment.yml:3"),
])
def test_bad_environment_files(tmp_path, text, words):
    (tmp_path / "environment.yml").write_text(text)
    with pytest.raises(SpecError, match=words):
        read_declared(tmp_path)


def test_conda_table_rows_have_sources_and_reasons():
    rows = conda_rows()
    assert rows["pytorch"].pypi == "torch" and rows["cudatoolkit"].pypi is None
    assert all(r.source and (r.pypi or r.reason) for r in rows.values())
