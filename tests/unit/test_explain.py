"""Recorded error texts (tests/fixtures/errors, from compat.md D6) are recognised."""

from pathlib import Path

import pytest

from dlbox.catalog.explain import explain

FX = Path(__file__).parent.parent / "fixtures" / "errors"


@pytest.mark.parametrize("name", ["no-gpu-runtime", "cuda-requirement", "driver-insufficient", "driver-too-old",
                                  "nvml-unknown", "no-kernel-image", "ngc-compat-unavailable",
                                  "nvml-mismatch", "no-devices"])
def test_fixture_is_explained(name):
    e = explain((FX / f"{name}.txt").read_text())
    assert e is not None and e.id == name
    assert e.cause and e.fix and "\n" not in e.cause + e.fix


def test_requirement_names_cuda():
    assert "12.8" in explain((FX / "cuda-requirement.txt").read_text()).cause


def test_found_version_decoded():
    assert "CUDA 11.4" in explain((FX / "driver-too-old.txt").read_text()).cause
    assert "CUDA 12.2" in explain("The NVIDIA driver on your system is too old (found version 12020)").cause


def test_nvml_fix_mentions_restart_and_cgroup():
    fix = explain("Failed to initialize NVML: Unknown Error").fix
    assert "restart the container" in fix and "nvidia-ctk" in fix and "cgroup" in fix


def test_unknown_text():
    assert explain("all good") is None and explain("") is None
