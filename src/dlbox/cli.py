"""The command line: a thin map from verbs to functions.

Verb groups live in `dlbox.commands.*`, each with `register(app)`; they import their work
lazily, so `dlbox --help` stays fast. Expected failures
(`DlboxError`) are printed in one place, without a traceback.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape

from dlbox.commands import apps, catalog, cluster, core, doctor, k8s, lifecycle, ship
from dlbox.errors import DlboxError, Terminated

app = typer.Typer(
    name="dlbox",
    help="Docker as the deep-learning environment: one dlbox.toml, the right GPU-ready container.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain text: "HOST[:PORT][/NAMESPACE]" is not Rich markup (it crashed `push --help`).
    rich_markup_mode=None,
)

def _register_all() -> None:
    for verbs in (core, catalog, doctor, ship, apps, cluster, k8s, lifecycle):
        verbs.register(app)
    _plain_help(app)


def _plain_help(group: typer.Typer) -> None:
    """Sub-groups (`dlbox base`, `dlbox setup`…) get the same plain-text help as the top level."""
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            sub.typer_instance.rich_markup_mode = None
            _plain_help(sub.typer_instance)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """The exception classes of command-line usage errors (unknown option, missing argument…).

    typer >= 0.24 bundles its own copy of click (`typer._click`), so `click.ClickException` does
    not match what the parser raises; catch both so that neither path prints a traceback.
    """
    kinds: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            kinds.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


_register_all()
USAGE_ERRORS = _usage_errors()


def _terminate(signum: int, _frame) -> None:
    raise Terminated(signum)


def main() -> None:
    err = Console(stderr=True, soft_wrap=True)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so a running `docker build` is stopped, not orphaned
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        # standalone_mode=False: click returns the exit code of typer.Exit instead of raising
        code = app(standalone_mode=False, prog_name="dlbox")
        sys.exit(code if isinstance(code, int) else 0)
    except DlboxError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(exc.message)}", highlight=False)
        if exc.fix:
            err.print(f"  [bold]fix:[/bold] {escape(exc.fix)}", highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # a file the user named cannot be read or written: say which, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        err.print(f"[bold red]error:[/bold red] {escape(str(exc.strerror or exc))}{escape(where)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
    except Terminated as exc:
        try:
            err.print(f"[yellow]stopped[/yellow] by {signal.Signals(exc.signum).name}")
        except OSError:
            pass    # SIGHUP: the terminal may be gone
        sys.exit(128 + exc.signum)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except USAGE_ERRORS as exc:  # standalone_mode=False: usage errors reach us unprinted
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line for the user, the traceback only on request
        if os.environ.get("DLBOX_DEBUG"):
            raise
        err.print(f"[bold red]error:[/bold red] dlbox failed unexpectedly: {escape(type(exc).__name__)}: "
                  f"{escape(str(exc))}", highlight=False)
        err.print("  [bold]fix:[/bold] run again with DLBOX_DEBUG=1 for the traceback, and report it", highlight=False)
        sys.exit(70)


if __name__ == "__main__":
    main()
