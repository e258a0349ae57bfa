"""The catalog is internally consistent and every row says where it came from."""

import json
from importlib import resources

import pytest

from dlbox.catalog import validate, vkey
from dlbox.catalog.family import _validate as validate_family
from dlbox.spec.declared.catalog import _conda_rows, _import_rows, _system_rows


@pytest.fixture(scope="module")
def cat():
    return validate()  # validated here, not read from a kept copy


def test_every_table_validates_now():
    assert validate_family().rows
    assert _conda_rows() and _system_rows() and _import_rows()


def test_every_file_row_has_a_source():
    for f in resources.files("dlbox.catalog").iterdir():
        if f.name.endswith(".json"):
            data = json.loads(f.read_text())
            rows = data.get("rows") or [r for k in ("os_python", "cpu_base_preference", "cuda_os_preference", "flavors") for r in data.get(k, [])]
            assert rows, f.name
            assert all(r.get("source", "").strip() for r in rows), f.name


def test_torch_variants_name_known_cuda(cat):
    for row in cat.torch:
        for v in row.variants:
            assert v.cuda is None or cat.cuda_row(v.cuda) is not None, (row.version, v.name)


def test_every_cuda_variant_has_an_arch_row(cat):
    for row in cat.torch:
        for v in row.variants:
            if v.cuda:
                assert cat.arch_row(row.version, v.name) is not None, (row.version, v.name)


def test_ngc_cuda_has_driver_row(cat):
    for r in cat.ngc:
        assert cat.cuda_row(r.cuda) is not None, r.container


def test_versions_sorted_and_unique(cat):
    for seq in ([r.cuda for r in cat.cuda_driver], [r.version for r in cat.torch],
                [r.container for r in cat.ngc], [str(r.branch) for r in cat.driver_branches]):
        keys = [vkey(x) for x in seq]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_branch_map_agrees_with_driver_table(cat):
    # each toolkit's minimum Linux driver falls in the branch that reports at least that CUDA
    from dlbox.host.nvidia_smi import cuda_max_for_driver
    for r in cat.cuda_driver:
        if r.min_driver_linux:
            assert vkey(cuda_max_for_driver(r.min_driver_linux)) >= vkey(r.cuda), r.cuda


def test_cuda_tags_follow_cudnn_scheme(cat):
    for r in cat.cuda_tags:
        assert all(t.startswith(r.patch + "-") and t.endswith("-" + r.os) for t in r.tags)
        if r.cudnn_part:
            expected = "cudnn8" if vkey(r.cuda) <= (12, 2) else "cudnn9" if r.cuda == "12.3" else "cudnn"
            assert r.cudnn_part == expected, r.patch


def test_inferred_rows_say_why(cat):
    for r in cat.torch_arch:
        if r.status == "inferred":
            assert r.reasoning, (r.torch_min, r.variant)


def test_nvcc_only_in_devel(cat):
    assert {f.flavor for f in cat.flavors if f.has_nvcc} == {"devel"}


def test_minor_compat_floors(cat):
    assert [(r.major, r.floor_linux) for r in cat.minor_compat] == [(11, "450.80.02"), (12, "525.60.13"), (13, "580")]


def test_catalog_command_json():
    from typer.testing import CliRunner

    from dlbox.cli import app
    res = CliRunner().invoke(app, ["catalog", "--driver", "535.104.05", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["driver_cuda_max"] == "12.2"
    assert all(not v.startswith("cu13") for t in data["torch"] for v in t["variants"])
    res = CliRunner().invoke(app, ["images"])
    assert res.exit_code == 0 and "NGC" in res.output
