"""Issue 12 item 4 against the real engine: a project whose .python-version says 3.13 runs on
Python 3.13 from Debian trixie's apt, on a base bootstrapped from Debian packages (no registry
answers here); a uv-managed CPython whose download host cannot be reached stops the build with
one line naming `[net] python_mirror` and the Debian alternative, and the mirror, credentials
included, reaches uv inside the build as a secret (a local server records the request) while no
file dlbox wrote holds the password.

What is not tested here: a uv-managed CPython actually installed. That needs a python-build-
standalone archive whose sha256 the pinned uv knows, and GitHub (its only source) is unreachable
from this machine; the install, venv and readability commands are covered by the unit tests of
the rendered step only."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.integration.test_core_real import dlbox

pytestmark = [pytest.mark.docker]
TRIXIE = "debian:trixie-slim"


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trixie(docker_engine):
    """Leave the engine as it was: remove the bootstrapped base if this module made it."""
    had = _docker("image", "inspect", TRIXIE).returncode == 0
    yield
    if not had:
        _docker("rmi", TRIXIE)


def _remove_images(name: str) -> None:
    out = _docker("images", "--filter", f"label=org.dlbox.project={name}", "-q").stdout.split()
    if out:
        _docker("rmi", "-f", *sorted(set(out)))


def test_python_version_313_runs_on_trixies_python(tmp_path, trixie):
    name = f"pyroute-313-{uuid.uuid4().hex[:6]}"
    project = tmp_path / name
    project.mkdir()
    (project / ".python-version").write_text("3.13\n")
    dlbox("init", str(project))
    text = (project / "dlbox.toml").read_text()
    assert 'python = "3.13"' in text
    # torch from download.pytorch.org is unreachable here: the Python is what this test is about
    (project / "dlbox.toml").write_text(f'name = "{name}"\n' + text.replace('torch = "auto"', 'torch = "none"\npip = ["six"]'))
    try:
        plan = json.loads(dlbox("plan", "--json", str(project)).stdout)
        assert plan["base_image"] == TRIXIE and plan["build"]["python_install"] == "apt:python3"
        assert any(f"python 3.13 from {TRIXIE}'s apt" in r for r in plan["reasons"])
        dlbox("build", "-q", str(project))
        out = dlbox("run", "--", "python", "-c",
                    "import sys, six; print(sys.version_info[0], sys.version_info[1], sys.prefix)", cwd=project).stdout
        assert out.split()[-3:] == ["3", "13", "/opt/venv"], out
    finally:
        _remove_images(name)


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def _bridge_gateway() -> str | None:
    out = _docker("network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}").stdout
    return next(iter(out.split()), None)


def test_uv_cpython_unreachable_stops_with_one_line_and_the_mirror_is_a_secret(tmp_path, trixie):
    gateway = _bridge_gateway()
    if gateway is None:
        pytest.skip("no bridge gateway address for a mirror the build can reach")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"pyroute-uv-{uuid.uuid4().hex[:6]}"
    project = tmp_path / name
    project.mkdir()
    mirror = f"http://alice:s3cr3t-{name}@{gateway}:{server.server_address[1]}/pbs"
    (project / "dlbox.toml").write_text(f'name = "{name}"\n[env]\npython = "3.14"\ntorch = "none"\n'
                                        f'[net]\npython_mirror = "{mirror}"\n')
    try:
        plan = json.loads(dlbox("plan", "--json", str(project)).stdout)
        version = plan["build"]["python_install"].removeprefix("uv:")
        assert version.startswith("3.14.") and "s3cr3t" not in json.dumps(plan)
        proc = dlbox("build", "-q", str(project), check=False)
        assert proc.returncode == 1
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert errors[0].startswith(f"error: uv could not download CPython {version}")
        assert "[net] python_mirror" in errors[0] and 'python = "3.13"' in errors[0] and TRIXIE in errors[0]
        # the mirror reached uv in the build (uv's layout: MIRROR/RELEASE/FILE), with its credentials
        got = [s for s in _Recorder.seen if s["path"].startswith("/pbs/")]
        assert got and f"cpython-{version}%2B" in got[0]["path"]
        assert got[0]["auth"] == "Basic " + base64.b64encode(f"alice:s3cr3t-{name}".encode()).decode()
        # ... and the password is in nothing dlbox printed or wrote
        assert "s3cr3t" not in proc.stdout + proc.stderr
        for f in (project / ".dlbox").rglob("*"):
            if f.is_file():
                assert b"s3cr3t" not in f.read_bytes(), f
    finally:
        server.shutdown()
        _remove_images(name)
