"""Issue 11 item 20: `export` to a full disk removes its partial file and says how much space is
needed, before starting when it can be known. Before, a 20 MB `.part` stayed on the full disk."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.test_ship_real import dlbox, env, images  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.docker]


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = []

    def mount(size: str):
        d = tmp_path / f"fs-{size}"
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "dlbox-test-export", str(d)], check=True)
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


def _no_traceback(p):
    assert "Traceback" not in p.stdout + p.stderr and "unexpectedly" not in p.stderr, p.stderr


def test_export_to_a_disk_that_fills_up_leaves_nothing(images, env, tmpfs):
    d = tmpfs("20m")         # more than a tenth of the image (126 MB), less than its archive
    p = dlbox("export", "--image", images["v1"], "-o", str(d / "v1.tar.zst"), env=env)
    _no_traceback(p)
    assert p.returncode == 1 and "ran out of space" in p.stderr and "partial file was removed" in p.stderr, p.stderr
    assert "MB uncompressed" in p.stderr
    assert list(d.iterdir()) == [], "no .part (nor sidecar) left on the full disk"


def test_export_where_it_cannot_fit_is_refused_before_starting(images, env, tmpfs):
    d = tmpfs("1m")
    p = dlbox("export", "--image", images["v1"], "-o", str(d / "v1.tar.zst"), env=env)
    _no_traceback(p)
    assert p.returncode == 1 and "Not enough space" in p.stderr and "MB free" in p.stderr, p.stderr
    assert list(d.iterdir()) == []
