"""The validated catalog is kept between runs, and a kept file is trusted only when it is safe."""

from __future__ import annotations

import os

import pytest

from dlbox.catalog import validate
from dlbox.catalog.cache import _cache_file, validated


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def test_a_second_run_reads_what_the_first_validated():
    calls = []

    def build():
        calls.append(1)
        return {"rows": (1, 2, 3)}

    assert validated("t", build) == {"rows": (1, 2, 3)}
    assert validated("t", build) == {"rows": (1, 2, 3)}
    assert len(calls) == 1
    path = _cache_file("t")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_kept_catalog_equals_a_fresh_validation():
    validated("catalog", validate)
    assert validated("catalog", lambda: pytest.fail("the kept file was not used")) == validate()


def test_a_file_others_can_write_is_not_trusted():
    validated("t", lambda: "mine")
    path = _cache_file("t")
    path.write_bytes(b"not a pickle")
    os.chmod(path, 0o666)
    assert validated("t", lambda: "rebuilt") == "rebuilt"


def test_a_damaged_file_is_validated_again():
    validated("t", lambda: "first")
    _cache_file("t").write_bytes(b"\x80\x05garbage")
    assert validated("t", lambda: "again") == "again"


def test_an_unwritable_cache_only_costs_the_validation(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(ro / "nested"))
    if os.geteuid() == 0:
        monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-dir")
    assert validated("t", lambda: "value") == "value"


def test_other_bytes_are_validated_again_and_replace_the_oldest_kept_file():
    assert validated("t", lambda: "one", made_from=b"a = 1", keep=1) == "one"
    assert validated("t", lambda: "two", made_from=b"a = 2", keep=1) == "two"
    assert validated("t", lambda: pytest.fail("kept"), made_from=b"a = 2", keep=1) == "two"
    assert _cache_file("t", b"a = 2").exists() and not _cache_file("t", b"a = 1").exists()


def test_two_dlbox_versions_do_not_evict_each_other():
    for _ in range(2):
        for version in (b"old", b"new"):
            validated("catalog", lambda v=version: v, made_from=version)
    assert validated("catalog", lambda: pytest.fail("evicted"), made_from=b"old") == b"old"


def test_a_family_keeps_the_files_used_last():
    for n in range(5):
        validated("spec", lambda n=n: n, made_from=bytes([n]), keep=3)
    validated("spec", lambda: pytest.fail("kept"), made_from=bytes([2]), keep=3)   # used again: newest
    validated("spec", lambda: 5, made_from=bytes([5]), keep=3)
    assert sorted(p.name for p in _cache_file("spec").parent.glob("spec-*.pickle")) == sorted(
        _cache_file("spec", bytes([n])).name for n in (2, 4, 5))


def test_a_row_with_an_unknown_field_or_no_source_is_refused():
    from dlbox.catalog import DriverBranchRow
    from dlbox.checked import Invalid, parse

    good = dict(branch=580, cuda_max="13.0", status="verified", source="NVIDIA release notes")
    assert parse(DriverBranchRow, good).cuda_max == "13.0"
    with pytest.raises(Invalid, match="extra"):
        parse(DriverBranchRow, {**good, "extra": 1})
    with pytest.raises(Invalid, match="needs a source"):
        parse(DriverBranchRow, {**good, "source": " "})
