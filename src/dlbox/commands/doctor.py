"""`dlbox doctor` and `dlbox setup`: diagnose the host, then fix it safely."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dlbox.engine.docker import info_probe
from dlbox.host.sysroot import SysRoot
from dlbox.report import exit_code, print_checks

ROOT_HELP = "read (and for setup, write) the host under DIR instead of / (tests, mounted disks)"


def _exit(code: int) -> None:
    # SystemExit, not typer.Exit: cli.main runs click with standalone_mode=False, where a
    # typer.Exit code is returned and dropped instead of becoming the process status.
    if code:
        sys.exit(code)


def _sysroot(root: Optional[Path]) -> SysRoot:
    if root is None:
        return SysRoot(engine_info=info_probe)
    if not root.is_dir():
        from dlbox.errors import HostError

        raise HostError(f"--root {root} is not a directory", fix="give the directory that holds the host's etc/, proc/, …")
    return SysRoot(root)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="print a JSON list of {id, status, detail, fix}"),
    deep: bool = typer.Option(False, "--deep", help="also start a GPU container and run nvidia-smi in it"),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR", help=ROOT_HELP),
) -> None:
    """Check Docker, the NVIDIA driver and toolkit, WSL2, proxies, mirrors and limits."""
    from dlbox.doctor import run_checks

    checks = run_checks(_sysroot(root), deep=deep)
    print_checks(checks, as_json=as_json)
    _exit(exit_code(checks))


def setup(
    target: str = typer.Argument("all", help="docker | nvidia | proxy | mirrors | all"),
    url: Optional[str] = typer.Argument(None, help="proxy URL (for `setup proxy`)"),
    no_proxy: Optional[str] = typer.Option(None, "--no-proxy", help="extra NO_PROXY hosts, comma separated"),
    apt_mirror: Optional[str] = typer.Option(None, "--apt-mirror", help="e.g. https://mirrors.ustc.edu.cn"),
    pip_index: Optional[str] = typer.Option(None, "--pip-index", help="e.g. https://mirrors.aliyun.com/pypi/simple/"),
    registry_mirror: list[str] = typer.Option([], "--registry-mirror", help="Docker registry mirror (repeatable)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print every change, touch nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="apply without asking"),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR", help=ROOT_HELP),
) -> None:
    """Fix the host step by step: check, show the change, apply, verify. Safe to run twice."""
    from dlbox.setup import Options, run_setup

    opts = Options(url=url, no_proxy=no_proxy, apt_mirror=apt_mirror, pip_index=pip_index,
                   registry_mirrors=tuple(registry_mirror), dry_run=dry_run, yes=yes)
    _exit(run_setup(target, _sysroot(root), opts))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.command("setup")(setup)
