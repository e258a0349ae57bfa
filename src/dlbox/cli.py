"""The command line: a thin map from verbs to functions.

Verb groups live in `dlbox.commands.*`, each with `register(app)`. Expected failures
(`DlboxError`) are printed in one place, without a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from dlbox.errors import DlboxError

app = typer.Typer(
    name="dlbox",
    help="Docker as the deep-learning environment: one dlbox.toml, the right GPU-ready container.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = ("core", "gpu", "doctor", "ship", "apps")


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"dlbox.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dlbox.commands.{name}":
                continue  # a verb group not present in this build
            raise
        module.register(app)


_register_all()


def main() -> None:
    err = Console(stderr=True, soft_wrap=True)
    try:
        # standalone_mode=False: click returns the exit code of typer.Exit instead of raising
        code = app(standalone_mode=False)
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
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click usage errors come through here in standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
