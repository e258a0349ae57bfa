"""Errors a user can hit. Each says what was wrong, where, and what to do.

The CLI prints these without a traceback and exits with `exit_code`.
"""

from __future__ import annotations


class DlboxError(Exception):
    """An expected failure: a message for people, an optional fix, an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class SpecError(DlboxError):
    """dlbox.toml (or [tool.dlbox]) is wrong; the message names file and line."""

    exit_code = 2


class HostError(DlboxError):
    """The host cannot do what was asked (no Docker, no permission, no GPU runtime…)."""


class EngineError(DlboxError):
    """A Docker command failed; `detail` holds the engine's own words."""

    def __init__(self, message: str, *, fix: str | None = None, detail: str = "") -> None:
        super().__init__(message, fix=fix)
        self.detail = detail


class PlanError(DlboxError):
    """No image/torch/CUDA combination satisfies the request on this host."""

    exit_code = 3


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (children are stopped on the way out).

    Not a KeyboardInterrupt: typer turns those into a silent exit 130; this one reaches cli.main,
    which exits 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
