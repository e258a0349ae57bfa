"""Which imports the code scan proposes as dependencies: the shapes of real repositories
(openai/whisper, facebookresearch/segment-anything, ultralytics/yolov5) that it got wrong."""

from __future__ import annotations

from pathlib import Path

from dlbox.spec.declared import read_declared
from dlbox.spec.detect import detect


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def proposed(root: Path) -> set[str]:
    return {d.name for d in read_declared(root, imports=True).imported}


def test_the_project_importing_itself_is_not_a_dependency(tmp_path):
    # whisper: pyproject name openai-whisper, package dir whisper/, tests do `import whisper`
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "openai-whisper"\nversion = "1"\ndependencies = ["tqdm"]\n',
        "whisper/__init__.py": "import tqdm\n",
        "tests/test_audio.py": "import whisper\nimport scipy\n",
    })
    assert proposed(tmp_path) == {"tqdm", "scipy"}


def test_a_package_without_default_dependencies_gets_its_imports_proposed(tmp_path):
    # segment-anything: install_requires=[], extras only; setup.py's own imports are the build's
    write(tmp_path, {
        "setup.py": "from setuptools import setup\nsetup(name='segment_anything', packages=['segment_anything'],"
                    " install_requires=[], extras_require={'all': ['matplotlib']})\n",
        "segment_anything/__init__.py": "import numpy\nimport torch\nimport torchvision\nimport cv2\n",
    })
    d = detect(tmp_path)
    assert d.proposed
    assert {"numpy", "torchvision", "opencv-python"} <= set(d.pip)
    assert "setuptools" not in d.pip and "segment-anything" not in d.pip


def test_a_data_directory_does_not_hide_the_library_of_the_same_name(tmp_path):
    write(tmp_path, {"datasets/README": "data lives here\n", "train.py": "import datasets\n"})
    assert "datasets" in proposed(tmp_path)


def test_a_scripts_neighbour_module_is_local_but_a_package_member_s_is_not(tmp_path):
    # scripts/train.py runs with scripts/ on sys.path: `import utils` is scripts/utils.py.
    # Inside a package, `import wandb` is the library even beside a wandb/ sub-package (yolov5).
    write(tmp_path, {
        "scripts/train.py": "import utils\n",
        "scripts/utils.py": "",
        "pkg/__init__.py": "",
        "pkg/loggers/__init__.py": "import wandb\n",
        "pkg/loggers/wandb/__init__.py": "",
    })
    found = proposed(tmp_path)
    assert "wandb" in found
    assert not any("utils" in n for n in found)


def test_the_requirements_file_the_readme_installs_is_the_projects(tmp_path):
    # Stability-AI/generative-models: no requirements.txt; README says `pip3 install -r requirements/pt2.txt`
    write(tmp_path, {
        "README.md": "# x\n```shell\n$ pip3 install torch --index-url https://x/cu118 # check CUDA\n"
                     "pip3 install -r requirements/pt2.txt\n```\nthen `pip install -r nothere.txt`\n",
        "requirements/pt2.txt": "einops\n",
        "requirements/dev.txt": "pytest\n",
    })
    from dlbox.spec.declared import default_requirements
    from dlbox.spec.declared.readme import readme_requirements

    assert default_requirements(tmp_path) == "requirements/pt2.txt"
    where = readme_requirements(tmp_path)[1]
    assert (where.file, where.line) == ("README.md", 4)
    assert "einops" in read_declared(tmp_path).names()


def test_a_readme_cannot_name_a_file_outside_the_project(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "secret.txt").write_text("x\n")
    write(tmp_path / "p", {"README.md": "pip install -r ../secret.txt\n"})
    from dlbox.spec.declared import default_requirements

    assert default_requirements(tmp_path / "p") is None


def test_a_git_requirement_without_egg_counts_as_declaring_its_repository(tmp_path):
    # tloen/alpaca-lora: git+https://github.com/huggingface/peft.git, and `import peft`
    write(tmp_path, {"requirements.txt": "torch\ngit+https://github.com/huggingface/peft.git\n",
                     "finetune.py": "import peft\nimport torch\nimport fire\n"})
    notes = " ".join(detect(tmp_path).notes)
    assert "fire" in notes and "peft (" not in notes
