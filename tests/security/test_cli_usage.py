"""Issue 11 item 21: every command-line usage error is a short usage + one-line error, never a
traceback; `--help` of every verb works. The CLI is walked, so a new verb is covered when it lands.

The pinned typer bundles its own click (`typer._click`): a handler for `click.ClickException`
never matched, and every usage error printed a traceback. In-process calls of `dlbox.cli.main`
(fast, and an escaping exception fails the test) plus the issue's exact commands as subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from dlbox import cli

DLBOX = str(Path(sys.executable).with_name("dlbox"))


def _verbs():
    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            yield path, command
            for name, sub in subs.items():
                yield from walk(sub, path + [name])
        else:
            yield path, command

    return list(walk(typer.main.get_command(cli.app), []))


VERBS = _verbs()
LEAVES = [(p, c) for p, c in VERBS if not getattr(c, "commands", None)]


def _ids(items):
    return [" ".join(p) or "dlbox" for p, _ in items]


def run_main(monkeypatch, capfd, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["dlbox", *argv])
    monkeypatch.delenv("DLBOX_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out, err = capfd.readouterr()
    code = exc.value.code if isinstance(exc.value.code, int) else 0
    return code, out + err


def assert_clean_usage_error(code: int, text: str, expect: str) -> None:
    assert "Traceback" not in text, text
    assert code == 2, (code, text)
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    assert last.startswith("Error: ") and expect in last, text
    assert len(text.splitlines()) <= 5, text


def test_the_walk_finds_every_verb():
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"build", "up", "down", "deploy", "push", "export", "import", "jupyter", "base bootstrap"} <= names
    assert any(" ".join(p) == "jupyter" for p, _, _ in NUMERIC)


@pytest.mark.parametrize("path,command", VERBS, ids=_ids(VERBS))
def test_help_of_every_verb(monkeypatch, capfd, path, command):
    code, text = run_main(monkeypatch, capfd, *path, "--help")
    assert code == 0 and "Traceback" not in text, text
    assert text.startswith("Usage: dlbox") and "--help" in text, text


@pytest.mark.parametrize("path,command", LEAVES, ids=_ids(LEAVES))
def test_unknown_option_of_every_verb(monkeypatch, capfd, path, command):
    if command.context_settings.get("ignore_unknown_options"):
        pytest.skip("passes its options on to the command it runs (dlbox run -- …)")
    code, text = run_main(monkeypatch, capfd, *path, "--no-such-option")
    assert_clean_usage_error(code, text, "No such option: --no-such-option")


NUMERIC = [(path, command, param) for path, command in LEAVES for param in command.params
           if param.param_type_name == "option" and param.type.name in ("int", "float", "integer", "int range", "integer range", "float range")]


@pytest.mark.parametrize("path,command,param", NUMERIC,
                         ids=[" ".join(p) + " " + x.opts[0] for p, _, x in NUMERIC])
def test_bad_numeric_value_of_every_verb(monkeypatch, capfd, path, command, param):
    required = [a for p in command.params if p.required and p.param_type_name == "option" for a in (p.opts[0], "x")]
    code, text = run_main(monkeypatch, capfd, *path, *required, param.opts[0], "abc")
    assert_clean_usage_error(code, text, "Invalid value")


@pytest.mark.parametrize("path,command", [(p, c) for p, c in LEAVES if any(x.required for x in c.params)],
                         ids=_ids([(p, c) for p, c in LEAVES if any(x.required for x in c.params)]))
def test_missing_argument_of_every_verb(monkeypatch, capfd, path, command):
    code, text = run_main(monkeypatch, capfd, *path)
    assert_clean_usage_error(code, text, "Missing")


def test_unknown_verb(monkeypatch, capfd):
    code, text = run_main(monkeypatch, capfd, "nosuchverb")
    assert_clean_usage_error(code, text, "No such command 'nosuchverb'")


@pytest.mark.parametrize("argv,expect", [
    (["build", "--nope"], "No such option: --nope"),
    (["nosuchverb"], "No such command"),
    (["deploy"], "Missing argument"),
    (["jupyter", "--port", "abc"], "Invalid value for '--port'"),
])
def test_issue_examples_as_a_user_types_them(argv, expect, tmp_path):
    proc = subprocess.run([DLBOX, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_clean_usage_error(proc.returncode, proc.stdout + proc.stderr, expect)


def test_push_help_as_a_user_types_it(tmp_path):
    proc = subprocess.run([DLBOX, "push", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "HOST[:PORT][/NAMESPACE]" in proc.stdout and not proc.stderr
