"""pyproject.toml, uv.lock, setup.py/setup.cfg, .python-version and the code scan."""

import pytest

from dlbox.errors import SpecError
from dlbox.spec.declared import read_declared

NANOCHAT_SHAPE = """\
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = [
    "torch>=2.8.0",
    "tiktoken>=0.11.0",
]

[project.optional-dependencies]
gpu = ["torch>=2.8.0"]

[dependency-groups]
test = ["pytest>=8"]
dev = [{include-group = "test"}, "ruff"]

[tool.uv.sources]
torch = [
    { index = "pytorch-cu128", marker = "sys_platform == 'linux'" },
]
rustbpe = { git = "https://github.com/example/rustbpe", rev = "abc123" }

[[tool.uv.index]]
name = "pytorch-cu128"
url = "https://download.pytorch.org/whl/cu128"
explicit = true
"""


def test_uv_project_shape(tmp_path):
    (tmp_path / "pyproject.toml").write_text(NANOCHAT_SHAPE + '\n[tool.uv]\ndev-dependencies = ["ipython"]\n')
    d = read_declared(tmp_path)
    assert d.python.specifier == ">=3.10" and str(d.python.origin) == "pyproject.toml:4"   # a range, not "3.10"
    assert d.names() == ("tiktoken", "torch")
    assert str(d.dep("torch").origin) == "pyproject.toml:6"
    assert {(x.name, x.group) for x in d.deps if x.group} == {
        ("torch", "extra:gpu"), ("pytest", "group:test"), ("pytest", "group:dev"), ("ruff", "group:dev"),
        ("ipython", "dev")}
    (idx,) = d.indexes
    assert (idx.name, idx.kind, idx.explicit, idx.packages) == ("pytorch-cu128", "extra", True, ("torch",))
    assert d.local_packages == ()          # no [build-system]: uv treats it as virtual


def test_pyproject_package_with_git_source_and_build_system(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "Vision_Pkg"\ndependencies = ["torchvision>=0.20", "lib"]\n'
        '[tool.uv.sources]\nlib = { git = "https://github.com/example/lib", tag = "v1" }\n')
    d = read_declared(tmp_path)
    (pkg,) = d.local_packages
    assert (pkg.path, pkg.name, pkg.backend, pkg.build_requires) == (".", "vision-pkg", "hatchling.build", ("hatchling",))
    assert d.dep("lib").url == "git+https://github.com/example/lib@v1"


@pytest.mark.parametrize("text, words", [
    ("[project\nname='x'", "not valid TOML"),
    ('[project]\nrequires-python = "3.8+"\n', "requires-python"),
    ('[project]\ndependencies = ["torch>="]\n', "pyproject.toml:2"),
    ('[project]\ndependencies = "torch"\n', "list of requirement strings"),
    ('[dependency-groups]\na = [{include-group = "nope"}]\n', "dependency-groups"),
])
def test_bad_pyproject(tmp_path, text, words):
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(SpecError, match=words):
        read_declared(tmp_path)


def test_uv_lock(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["numpy"]\n')
    (tmp_path / "uv.lock").write_text(
        'version = 1\nrequires-python = ">=3.10"\n\n[[package]]\nname = "numpy"\nversion = "2.1.0"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n[[package]]\nname = "x"\nversion = "0.1.0"\n'
        'source = { virtual = "." }\n')
    d = read_declared(tmp_path)
    assert d.lock.requires_python == ">=3.10"
    assert [(p.name, p.version, p.source) for p in d.lock.packages] == [
        ("numpy", "2.1.0", "registry:https://pypi.org/simple"), ("x", "0.1.0", "virtual:.")]


SETUP_CUDA = """\
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CUDAExtension, CppExtension

setup(
    name="lltm_cpp",
    python_requires=">=3.9",
    install_requires=["numpy"],
    ext_modules=[
        CppExtension("lltm_cpp", ["lltm.cpp"]),
        CUDAExtension(name="lltm_cuda", sources=["lltm_cuda.cpp", "lltm_cuda_kernel.cu"]),
    ],
    cmdclass={"build_ext": BuildExtension},
)
"""


def test_setup_py_with_extensions_read_without_running_it(tmp_path):
    (tmp_path / "setup.py").write_text(SETUP_CUDA)
    d = read_declared(tmp_path, backend=False)
    (pkg,) = d.local_packages
    assert pkg.name == "lltm-cpp" and [(e.kind, e.name, e.origin.line) for e in pkg.extensions] == [
        ("cpp", "lltm_cpp", 9), ("cuda", "lltm_cuda", 10)]
    assert d.names() == ("numpy",) and d.python.specifier == ">=3.9"
    assert any(s.because == "extension lltm_cpp" and "g++" in s.debian for s in d.system)


def test_setup_py_reading_its_requirements_file_and_setup_cfg(tmp_path):
    (tmp_path / "setup.py").write_text(
        "import setuptools\nwith open('requirements.txt') as f:\n    reqs = f.read().splitlines()\n"
        "setuptools.setup(name='x', install_requires=reqs)\n")
    (tmp_path / "requirements.txt").write_text("einops\n")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n[options]\npython_requires = >=3.8\n")
    d = read_declared(tmp_path, backend=False)
    assert d.names() == ("einops",) and d.python.specifier == ">=3.8"
    assert [p.path for p in d.local_packages] == ["."]


def test_python_version_file_narrows_the_range(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.9"\n')
    (tmp_path / ".python-version").write_text("3.11.4\n")
    d = read_declared(tmp_path)
    assert set(d.python.specifier.split(",")) == {">=3.9", "==3.11.*"}


def test_nothing_declared_code_scan(tmp_path):
    (tmp_path / "model.py").write_text("import torch\nclass GPT(torch.nn.Module):\n    pass\n")
    (tmp_path / "train.py").write_text(
        "import os, numpy as np\nimport torch\nfrom model import GPT\nimport cv2, tiktoken\nfrom PIL import Image\n"
        "import some_unknown_lib\nm = torch.compile(GPT())\n@torch.compile(mode='max-autotune')\ndef f(x):\n"
        "    return x\n")
    d = read_declared(tmp_path, imports=True)
    assert d.empty and any("no dependencies declared" in n for n in d.notes)
    assert sorted(x.name for x in d.imported) == ["numpy", "opencv-python", "pillow", "tiktoken", "torch"]
    assert str(next(x for x in d.imported if x.name == "opencv-python").origin) == "train.py:4"
    assert [str(o) for o in d.torch_compile] == ["train.py:7", "train.py:8"]
    assert any(s.because == "torch.compile" for s in d.system)


def test_extension_class_through_a_variable_and_one_local_package(tmp_path):
    # pytorch/extension-cpp's setup.py picks the class at run time: `extension = CUDAExtension if
    # use_cuda else CppExtension`, then calls `extension(...)`; its pyproject also has [build-system]
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools", "torch"]\n'
                                            'build-backend = "setuptools.build_meta"\n')
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nfrom torch.utils.cpp_extension import CppExtension, CUDAExtension\n"
        "def get_extensions():\n    extension = CUDAExtension if use_cuda else CppExtension\n"
        "    return [extension('pkg._C', ['a.cpp'])]\nsetup(name='pkg', ext_modules=get_extensions(), "
        "install_requires=['torch'])\n")
    (tmp_path / "requirements.txt").write_text("-e .\n")
    d = read_declared(tmp_path, backend=False)
    (pkg,) = d.local_packages
    assert [(e.kind, e.name) for e in pkg.extensions] == [("cuda", "pkg._C")]
    assert pkg.backend == "setuptools.build_meta"


def test_hugging_face_space_front_matter_declares_gradio(tmp_path):
    (tmp_path / "README.md").write_text("---\ntitle: Demo\nsdk: gradio\nsdk_version: 4.44.1\n"
                                        "python_version: 3.10.13\napp_file: app.py\n---\n# Demo\n")
    (tmp_path / "requirements.txt").write_text("torch\ntorchvision\n")
    d = read_declared(tmp_path)
    assert d.dep("gradio").requirement == "gradio==4.44.1" and str(d.dep("gradio").origin) == "README.md:3"
    assert d.python.specifier == "==3.10.*"
    from dlbox.spec.detect import detect
    assert detect(tmp_path).pip == ["gradio==4.44.1"] and detect(tmp_path).ports == ["7860"]


def test_setup_py_computed_requirements_come_from_the_build_backend(tmp_path):
    """install_requires built at run time: the real backend (setuptools, in a throwaway uv environment)
    is asked for METADATA. Needs PyPI or uv's cache for setuptools, as a real install would."""
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\ndeps = ['numpy>=1.2'] + ['einops' for _ in range(1)]\n"
        "setup(name='bk', version='0.1', py_modules=[], install_requires=deps,\n"
        "      extras_require={'viz': ['matplotlib']}, python_requires='>=3.9')\n")
    d = read_declared(tmp_path)
    assert any("build backend's metadata" in n for n in d.notes), d.notes
    assert sorted((x.name, x.specifier, x.group) for x in d.deps) == [
        ("einops", "", None), ("matplotlib", "", "extra:viz"), ("numpy", ">=1.2", None)]
    assert d.python.specifier == ">=3.9"
