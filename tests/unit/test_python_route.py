"""Issue 12 item 4: which Python a plan gives, and how the image gets it (apt of the base OS,
a Debian release that ships it, or a uv-managed CPython). Every expectation is read from the
catalog rows (images.json os_python / cpu_base_preference / cuda_os_preference / uv_python,
nvidia_cuda_tags.json, torch.json), never written down twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbox.catalog import load, vkey
from dlbox.catalog.pythons import choose_python, cpu_route, providable
from dlbox.engine.build import refusal
from dlbox.engine.secrets import build_secret_args
from dlbox.errors import SpecError
from dlbox.host import Host, Limits, NetFacts
from dlbox.host.netconf import observe_net
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.plan import public_spec, resolve
from dlbox.plan.gpu import TorchRequest, choose
from dlbox.render.dockerfile import render_dockerfile
from dlbox.render.python_install import MIRROR_SECRET
from dlbox.spec import load_spec

CAT = load()
CPU_HOST = Host(driver=None, limits=Limits(None, None), uid=1000, gid=1000, net=NetFacts())
DEBIAN = {r.python: r for r in CAT.cpu_bases if r.os.startswith("debian-")}


def _spec(text: str, tmp: Path | None = None):
    d = tmp or Path(tempfile.mkdtemp(prefix="dlbox-py-"))
    (d / "dlbox.toml").write_text(text)
    return load_spec(d)


@pytest.mark.parametrize("py", providable())
def test_cpu_route_table(py):
    """CPU: the base whose apt ships the minor (cpu_base_preference), else uv on the uv_python base."""
    choice = choose(TorchRequest(python=py, gpu=False, torch="none"), None)
    row = next((r for r in CAT.cpu_bases if r.python == py), None)
    if row is not None:
        assert (choice.base_image, choice.python_install) == (row.image, "apt:python3")
    else:
        uv = CAT.uv_python.row(py)
        assert (choice.base_image, choice.python_install) == (CAT.uv_python.cpu_base.image, f"uv:{uv.version}")
        assert any("uv-managed" in r for r in choice.reasons)


@pytest.mark.parametrize("py", sorted(DEBIAN, key=vkey))
def test_a_debian_release_that_ships_the_minor_is_the_cpu_base(py):
    """bullseye 3.9, bookworm 3.11, trixie 3.13: bootstrappable without a registry, no download."""
    route = cpu_route(py)
    apt = next(r for r in CAT.os_python if r.os == DEBIAN[py].os and r.python == py)
    assert route.image == DEBIAN[py].image == apt.image and route.install == apt.install
    assert f"{route.image}'s apt" in route.why


@pytest.mark.parametrize("nvcc", [False, True])
@pytest.mark.parametrize("py", providable())
def test_gpu_route_table(py, nvcc):
    """CUDA 13.0 allowed: the OS whose apt ships the minor when its tag exists; else without nvcc a
    Debian slim base that ships it (no download); else the newest OS with a 13.0 tag and a
    uv-managed CPython there."""
    driver = facts_from_options(nvidia_smi_text=None, driver="580.65.06", compute_caps=["8.9"])
    row = next((r for r in CAT.torch if vkey(r.python_min) <= vkey(py) <= vkey(r.python_max)
                and any(v.cuda == "13.0" for v in r.variants)), None)
    if row is None:
        pytest.skip(f"no catalogued torch has a CUDA 13.0 wheel for Python {py}")
    choice = choose(TorchRequest(python=py, torch=row.version, cuda="13.0", flavor="devel" if nvcc else "runtime"),
                    driver)
    tags = {r.os for r in CAT.tag_rows("13.0")}
    pref = next((r for r in CAT.cuda_os if r.python == py and r.os in tags), None)
    if pref is not None:
        assert choice.base_os == pref.os and choice.python_install == pref.install
    elif py in DEBIAN and not nvcc:
        assert (choice.base_image, choice.python_install) == (DEBIAN[py].image, "apt:python3")
        return
    else:
        newest = max((r.os for r in CAT.cuda_os if r.os in tags), key=lambda o: vkey(o.removeprefix("ubuntu")))
        assert choice.base_os == newest and choice.python_install == f"uv:{CAT.uv_python.row(py).version}"
    assert choice.base_image.startswith("nvidia/cuda:")


def test_providable_is_every_minor_some_torch_has_wheels_for():
    wheels = {f"3.{m}" for r in CAT.torch for m in range(int(r.python_min.split(".")[1]),
                                                        int(r.python_max.split(".")[1]) + 1)}
    routes = {r.python for r in CAT.uv_python.rows} | {r.python for r in CAT.cpu_bases}
    assert set(providable()) == wheels & routes


@pytest.mark.parametrize("rng", [">=3.8", ">=3.12", ">=3.9,<3.12", "~=3.10.0", "==3.13.*", "<3.11", ">=3.14"])
def test_the_newest_inside_the_range_never_the_lower_bound(rng):
    from packaging.specifiers import SpecifierSet

    inside = [p for p in providable() if SpecifierSet(rng).contains(f"{p}.0") or SpecifierSet(rng).contains(f"{p}.5")]
    # the newest a base OS ships (no download at build time); uv-managed only when none fits
    shipped = {r.python for r in CAT.cpu_bases} | {r.python for r in CAT.cuda_os}
    assert choose_python(rng).python == ([p for p in inside if p in shipped] or inside)[-1]


def test_uv_rows_are_what_the_pinned_uv_installs():
    """Every uv_python row's CPython is in the pinned uv's own download list (read offline from
    the uv binary, which compiles the list and the archives' sha256 in)."""
    import uv as uv_pkg

    out = subprocess.run([uv_pkg.find_uv_bin(), "python", "list", "--all-versions", "--only-downloads",
                          "--output-format", "json"], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "UV_NO_CACHE": "1", "HOME": tempfile.mkdtemp()})
    known = {(r["version"], r["arch"]) for r in json.loads(out.stdout)
             if r["implementation"] == "cpython" and r["os"] == "linux" and r["libc"] == "gnu"
             and r.get("variant", "default") == "default"}
    for row in CAT.uv_python.rows:
        assert (row.version, "x86_64") in known, row.version
        assert row.release in row.source
    pin = (Path(__file__).parents[2] / "constraints.txt").read_text()
    assert f"uv=={CAT.uv_python.uv}" in pin


# -- the uv route's Dockerfile, mirror and refusal --------------------------------------------

SECRET_MIRROR = "https://alice:s3cr3t@pbs.mirror.example/python-build-standalone"


def _uv_plan(tmp_path, mirror: str | None = None, host_mirror: str | None = None, python: str = "3.14"):
    text = f'[env]\npython = "{python}"\ntorch = "none"\n' + (f'[net]\npython_mirror = "{mirror}"\n' if mirror else "")
    host = Host(driver=None, limits=Limits(None, None), uid=1000, gid=1000, net=NetFacts(python_mirror=host_mirror))
    return resolve(_spec(text, tmp_path), host)


def test_uv_route_dockerfile_installs_that_cpython_and_keeps_the_mirror_out(tmp_path):
    plan = _uv_plan(tmp_path, SECRET_MIRROR)
    row = CAT.uv_python.row("3.14")
    assert plan.build.python_install == f"uv:{row.version}" and plan.build.python_mirror == SECRET_MIRROR
    text = render_dockerfile(plan)
    assert f"uv python install --cache-dir /mnt/cache {row.version}" in text
    assert "/opt/dlbox/python/bin/python3.14 -m venv --without-pip /opt/venv" in text
    assert "ensurepip/_bundled" in text, "pip from the CPython's own ensurepip wheels, installed by uv"
    assert f"--mount=type=secret,id={MIRROR_SECRET}," in text and "chmod -R a+rX /opt/dlbox/python" in text
    assert "s3cr3t" not in text and "pbs.mirror.example" in text       # the plan comment names the host, masked
    assert "s3cr3t" not in json.dumps(plan.to_dict()) and "s3cr3t" not in json.dumps(public_spec(_spec(
        f'[net]\npython_mirror = "{SECRET_MIRROR}"\n', tmp_path)))
    # the RUN lines are the same whichever mirror: the layer is shared
    (tmp_path / "b").mkdir()
    other = render_dockerfile(_uv_plan(tmp_path / "b"))
    assert _logical(text) == _logical(other)


def test_uv_route_refusal_names_python_mirror_and_the_debian_alternative(tmp_path):
    plan = _uv_plan(tmp_path)
    alt = max((p for p in DEBIAN if vkey(p) <= (3, 14)), key=vkey)
    said = plan.build.python_refusal
    assert "[net] python_mirror" in said and f'python = "{alt}"' in said and DEBIAN[alt].image in said
    assert "\n" not in said and "python_mirror" in render_dockerfile(plan)


def test_mirror_from_the_host_env_and_its_precedence(tmp_path):
    assert observe_net({"UV_PYTHON_INSTALL_MIRROR": "https://m.example/pbs/"}).python_mirror == "https://m.example/pbs"
    assert observe_net({"UV_PYTHON_INSTALL_MIRROR": "ftp://x y"}).python_mirror is None
    assert _uv_plan(tmp_path, host_mirror="https://h.example/p").build.python_mirror == "https://h.example/p"
    assert any("UV_PYTHON_INSTALL_MIRROR" in r for r in _uv_plan(tmp_path, host_mirror="https://h.example/p").reasons)
    assert _uv_plan(tmp_path, "https://s.example/p", "https://h.example/p").build.python_mirror == "https://s.example/p"
    assert _uv_plan(tmp_path, "none", "https://h.example/p").build.python_mirror is None
    apt = _uv_plan(tmp_path, SECRET_MIRROR, python="3.11")
    assert apt.build.python_install.startswith("apt:") and apt.build.python_mirror is None


def test_the_mirror_reaches_the_build_as_a_secret_file(tmp_path):
    plan = _uv_plan(tmp_path, SECRET_MIRROR)
    with build_secret_args(plan) as args:
        pairs = dict(a.split(",src=") for a in args if a.startswith("id="))
        path = Path(pairs[f"id={MIRROR_SECRET}"])
        assert path.read_text() == SECRET_MIRROR and (path.stat().st_mode & 0o077) == 0
    assert not path.exists()


def test_build_refusal_is_read_from_buildkit_output():
    out = ("#9 [dlbox-shared 3/5] RUN --mount=...\n#9 0.412 error: Failed to install cpython-3.14.10\n"
           "#9 0.413 dlbox: uv could not download CPython 3.14.10 (python-build-standalone): set [net] "
           "python_mirror = \"https://...\"\n#9 ERROR: executor failed running [/bin/sh -c ...]: exit code: 1\n")
    assert refusal(out).startswith("uv could not download CPython 3.14.10") and "python_mirror" in refusal(out)
    assert refusal("#3 ERROR: something else\n") is None


# -- grammar of the mirror key -------------------------------------------------------------

_CHARS = st.text(alphabet=list("ab1-_.:/?=&%@'\"$`\\#;| \t\n\r\x00"), min_size=1, max_size=20)
PAYLOAD = st.one_of(_CHARS, st.sampled_from(["\nRUN touch /pwned", "x\nUSER 0", "$(id)", "'; id; '", "a b"]))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _logical(text: str) -> list[str]:
    """Instructions, continuation lines joined; comments and LABELs (project name, masked spec) left out."""
    return [ln for ln in text.replace("\\\n", " ").splitlines()
            if ln.strip() and not ln.lstrip().startswith(("#", "LABEL "))]


REFERENCE: list[str] = []


@SETTINGS
@given(tail=PAYLOAD)
def test_a_mirror_value_cannot_inject_a_dockerfile_line(tail):
    value = "https://m.example/" + tail
    try:
        spec = _spec(f'[env]\npython = "3.14"\ntorch = "none"\n[net]\npython_mirror = {json.dumps(value)}\n')
    except SpecError as exc:
        assert "python_mirror" in str(exc) or "dlbox.toml" in str(exc)
        return
    assert not set(value) & set("\n\r\x00'\"$`\\# |")
    text = render_dockerfile(resolve(spec, CPU_HOST))
    if not REFERENCE:
        REFERENCE.extend(_logical(render_dockerfile(_uv_plan(Path(tempfile.mkdtemp()), "https://m.example/x"))))
    assert _logical(text) == REFERENCE, "the mirror is in no instruction: only the plan comment names its host"


def test_the_refusal_is_one_shell_word():
    """The refusal is one shell word in the RUN (shlex-quoted): running the echo prints it verbatim."""
    plan = _uv_plan(Path(tempfile.mkdtemp()))
    line = next(ln for ln in render_dockerfile(plan).splitlines() if "uv python install" in ln)
    echo = line.split("|| {", 1)[1].rsplit(">&2", 1)[0]
    if shutil.which("sh"):
        out = subprocess.run(["sh", "-c", echo], capture_output=True, text=True).stdout.strip()
        assert out == "dlbox: " + plan.build.python_refusal


@pytest.mark.parametrize("key", ["python_mirror", "apt_mirror", "pip_index"])
def test_a_trailing_line_break_is_refused(key):
    """hypothesis found it: `re.match(r"^…$")` took "https://m.example/\\n" (spec.grammar now fullmatches)."""
    with pytest.raises(SpecError, match=key):
        _spec(f"[net]\n{key} = {json.dumps('https://m.example/')[:-1]}\\n\"\n")


@pytest.mark.parametrize("py", providable())
def test_no_registry_cpu_base_is_debian(py):
    """Where no registry answers, a non-Debian apt base (ubuntu) gives way to the uv route on the
    Debian base dlbox bootstraps; a Debian base that ships the minor stays (it is bootstrapped)."""
    choice = choose(TorchRequest(python=py, gpu=False, torch="none"), None, image_available=lambda ref: False)
    assert choice.base_os.startswith("debian-")
    if py in DEBIAN:
        assert choice.base_image == DEBIAN[py].image and choice.python_install.startswith("apt:")
    else:
        assert (choice.base_image, choice.python_install) == (CAT.uv_python.cpu_base.image,
                                                              f"uv:{CAT.uv_python.row(py).version}")


@pytest.mark.parametrize("py", [p for p in providable() if CAT.uv_python.row(p)])
def test_the_refusal_names_the_nearest_apt_python_of_the_base(py):
    """On a CUDA image's Ubuntu the alternative is that OS's own package (os_python); on a Debian
    base the nearest minor a Debian release ships (cpu_base_preference)."""
    from dlbox.plan.python_download import apt_alternative, python_download

    for os_name in sorted({r.os for r in CAT.cuda_os} | {CAT.uv_python.cpu_base.os}):
        pool = ([r.python for r in CAT.cpu_bases if r.os.startswith("debian-")] if os_name.startswith("debian")
                else [r.python for r in CAT.os_python if r.os == os_name])
        below = [p for p in pool if vkey(p) <= vkey(py)]
        want = max(below, key=vkey) if below else min(pool, key=vkey)
        assert apt_alternative(py, os_name, CAT).startswith(f'python = "{want}"')
        said = python_download(f"uv:{CAT.uv_python.row(py).version}", os_name, cat=CAT)
        assert f'python = "{want}"' in said.refusal and said.mirror is None and "uv's default" in said.reason
