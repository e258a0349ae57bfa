"""The command line: a thin map from verbs to functions.

Verb groups live in `dlbox.commands.*`, each with `register(app)`; they import their work
lazily, so `dlbox --help` stays fast. Expected failures
(`DlboxError`) are printed in one place, without a traceback.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from dlbox.errors import DlboxError, Terminated
from dlbox.report import LazyConsole, escape

# The verbs each group in dlbox.commands registers, in `dlbox --help` order. A run imports and
# builds only the group of the verb it names (typer builds every registered command's parser on
# each call, and the groups' imports are most of `dlbox plan`'s start-up); `dlbox --help`, no verb
# or an unknown one gets them all. tests/unit/test_cli_verbs.py holds this table to the groups.
GROUPS: dict[str, tuple[str, ...]] = {
    "core": ("init", "plan", "lock", "render", "build", "base"),
    "container": ("up", "shell", "exec", "run", "verify", "down", "ls", "logs"),
    "catalog": ("catalog", "images"),
    "doctor": ("doctor", "setup"),
    "ship": ("export", "import", "push", "deploy", "snapshot"),
    "apps": ("jupyter", "serve", "devcontainer", "compose"),
    "cluster": ("submit", "jobs", "cancel", "cluster"),
    "k8s": ("k8s",),
    "lifecycle": ("gc",),
}


def build_app(groups: tuple[str, ...] = tuple(GROUPS)) -> typer.Typer:
    """The command line with the given verb groups registered."""
    app = typer.Typer(
        name="dlbox",
        help="Docker as the deep-learning environment: one dlbox.toml, the right GPU-ready container.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Help texts are plain text: "HOST[:PORT][/NAMESPACE]" is not Rich markup (it crashed `push --help`).
        rich_markup_mode=None,
    )
    for group in groups:
        _group(group).register(app)
    _plain_help(app)
    return app


def _group(name: str):
    """The module of verb group NAME, imported when one of its verbs runs (or for --help)."""
    match name:
        case "core":
            from dlbox.commands import core as group
        case "container":
            from dlbox.commands import container as group
        case "catalog":
            from dlbox.commands import catalog as group
        case "doctor":
            from dlbox.commands import doctor as group
        case "ship":
            from dlbox.commands import ship as group
        case "apps":
            from dlbox.commands import apps as group
        case "cluster":
            from dlbox.commands import cluster as group
        case "k8s":
            from dlbox.commands import k8s as group
        case "lifecycle":
            from dlbox.commands import lifecycle as group
        case _:
            raise KeyError(name)
    return group


def groups_for(args: list[str]) -> tuple[str, ...]:
    """The one group that serves the verb ARGS name; every group for help, no verb or a typo."""
    verb = next((a for a in args if not a.startswith("-")), None)
    if verb is not None and not any(a in ("--help", "-h") for a in args[:args.index(verb)]):
        for group, verbs in GROUPS.items():
            if verb in verbs:
                return (group,)
    return tuple(GROUPS)


def _plain_help(group: typer.Typer) -> None:
    """Sub-groups (`dlbox base`, `dlbox setup`…) get the same plain-text help as the top level."""
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            sub.typer_instance.rich_markup_mode = None
            _plain_help(sub.typer_instance)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """The exception classes of command-line usage errors (unknown option, missing argument…).

    typer >= 0.24 bundles its own copy of click (`typer._click`), so `click.ClickException` does
    not match what the parser raises; catch both so that neither path prints a traceback. The
    standalone click is looked up only if something imported it (importing it costs start-up).
    """
    kinds: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        found = sys.modules.get(module)
        if found is not None and hasattr(found, "ClickException"):
            kinds.append(found.ClickException)
    return tuple(kinds)


def __getattr__(name: str):
    """`dlbox.cli.app`: the whole command line (tests drive it with typer's CliRunner)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _terminate(signum: int, _frame) -> None:
    raise Terminated(signum)


def main() -> None:
    err = LazyConsole(stderr=True, soft_wrap=True)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so a running `docker build` is stopped, not orphaned
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        # standalone_mode=False: click returns the exit code of typer.Exit instead of raising
        code = build_app(groups_for(sys.argv[1:]))(standalone_mode=False, prog_name="dlbox")
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
    except Exception as exc:
        if isinstance(exc, _usage_errors()):  # standalone_mode=False: usage errors reach us unprinted
            exc.show()
            sys.exit(exc.exit_code)
        # a bug: one line for the user, the traceback only on request
        if os.environ.get("DLBOX_DEBUG"):
            raise
        err.print(f"[bold red]error:[/bold red] dlbox failed unexpectedly: {escape(type(exc).__name__)}: "
                  f"{escape(str(exc))}", highlight=False)
        err.print("  [bold]fix:[/bold] run again with DLBOX_DEBUG=1 for the traceback, and report it", highlight=False)
        sys.exit(70)


if __name__ == "__main__":
    main()
