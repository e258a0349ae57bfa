"""The security suite: attacks of issue 11 on the real engine, as a non-root user in the docker
group (the user a shared GPU server gives a researcher). Each test is one probe that broke on
the main of that issue and must hold now."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DLBOX = str(Path(sys.executable).with_name("dlbox"))
USER = "dlboxsec"


@dataclass(frozen=True)
class Dev:
    name: str
    uid: int
    gid: int
    home: Path


def run_as(user: str | None, argv: list[str], *, cwd: Path | None = None, env: dict | None = None,
           timeout: float = 900, input: str | None = None) -> subprocess.CompletedProcess:
    """ARGV as USER (a login-less `runuser` with a clean environment), or as this process."""
    base = {k: os.environ[k] for k in ("PATH", "PIP_CERT", "PIP_FIND_LINKS", "DOCKER_BUILDKIT", "LANG")
            if k in os.environ}
    if user:
        home = pwd.getpwnam(user).pw_dir
        full = {**base, "HOME": home, "USER": user, **(env or {})}
        argv = ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in full.items()], *argv]
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input)
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, input=input)


def dlbox(user: str | None, *args: str, env: dict | None = None, check: bool = True,
          timeout: float = 900) -> subprocess.CompletedProcess:
    proc = run_as(user, [DLBOX, *args], env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dlbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
    return proc.stdout + proc.stderr


def secret_value(prefix: str = "s3cr3t") -> str:
    return f"{prefix}{random.randint(10**9, 10**10)}"


@pytest.fixture(scope="session")
def dev(docker_engine) -> Dev:
    if os.geteuid() != 0:
        pytest.skip("creating the non-root test user needs root")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", USER], check=True)
    subprocess.run(["usermod", "-aG", "docker", USER], check=True)
    pw = pwd.getpwnam(USER)
    return Dev(USER, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir))


CREATED: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _cleanup():
    """Remove the projects and the images this suite made (the disk is shared)."""
    yield
    for d in CREATED:
        shutil.rmtree(d, ignore_errors=True)
    if not CREATED or not shutil.which("docker"):
        return
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                         text=True).stdout.split()
    mine = [ref for ref in out if ref.split(":")[0].split("/")[-1].startswith("sec") and "dlbox/" in ref]
    if mine:
        subprocess.run(["docker", "rmi", *mine], capture_output=True)


def new_project(dev: Dev, name: str, extra: str = "") -> Path:
    """examples/digits as NAME in a directory the dev user owns (pytest's tmp dirs are root's)."""
    base = Path(tempfile.mkdtemp(prefix=f"dlbox-sec-{name}-"))
    CREATED.append(base)
    os.chmod(base, 0o755)
    project = base / name
    shutil.copytree(ROOT / "examples" / "digits", project, ignore=shutil.ignore_patterns(".dlbox", "outputs"))
    text = (project / "dlbox.toml").read_text().replace('name = "digits"', f'name = "{name}"')
    (project / "dlbox.toml").write_text(text + extra)
    subprocess.run(["chown", "-R", f"{dev.uid}:{dev.gid}", str(base)], check=True)
    return project


@pytest.fixture(scope="session")
def built(dev) -> Path:
    """One project of the dev user's, built once for the session."""
    project = new_project(dev, "secdigits")
    dlbox(dev.name, "build", str(project))
    yield project
    dlbox(dev.name, "down", str(project), check=False)
    shutil.rmtree(project.parent, ignore_errors=True)
