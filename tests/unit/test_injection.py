"""Property tests (hypothesis): no spec value can add a Dockerfile instruction, a shell command
or a docker argv element. Either the spec is refused with a SpecError naming the file and line,
or the value reaches the text as exactly one quoted word (issue 11, item 16)."""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbox.engine.run import RunOptions, run_argv
from dlbox.errors import SpecError
from dlbox.host import Host, Limits, NetFacts
from dlbox.plan import resolve
from dlbox.render.dockerfile import render_dockerfile
from dlbox.spec import load_spec

_CHARS = st.text(alphabet=list("ab1-_.+=<>;:'\"$`\\#&|(){}[]*?~!@% \t\n\r/,\x00\x7f"), min_size=1, max_size=16)
NASTY = st.lists(st.one_of(_CHARS, st.sampled_from(["\nUSER 0\n", "\nRUN touch /pwned", "; id", "$(id)", "' && id '"])),
                 min_size=1, max_size=4).map("".join)
PLAUSIBLE = st.from_regex(r"\A[a-z][a-z0-9.+-]{1,12}(==1\.[0-9])?\Z")
VALUE = st.one_of(NASTY, PLAUSIBLE)
HOST = Host(driver=None, limits=Limits(None, None), uid=1000, gid=1000, net=NetFacts())
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _toml(v) -> str:
    return json.dumps(v)      # a JSON string or list is a TOML basic string or array


def _load(text: str):
    d = Path(tempfile.mkdtemp(prefix="dlbox-inj-"))
    (d / "dlbox.toml").write_text(text)
    try:
        return load_spec(d)
    except SpecError as exc:
        assert "dlbox.toml" in str(exc) and "Traceback" not in str(exc)
        return None


def instructions(dockerfile: str) -> list[str]:
    """The instruction keywords, in order (continuation lines and comments skipped)."""
    out, cont = [], False
    for line in dockerfile.splitlines():
        s = line.strip()
        if not cont and s and not s.startswith("#"):
            out.append(s.split()[0])
        cont = line.rstrip().endswith("\\") if not s.startswith("#") or cont else False
    return out


def _logical_lines(dockerfile: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [ln for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


BASE = render_dockerfile(resolve(_load('[env]\napt = ["git"]\npip = ["six"]\n'), HOST))
BASE_INSTRUCTIONS = instructions(BASE)


@SETTINGS
@given(apt=st.lists(VALUE, min_size=1, max_size=3), pip=st.lists(VALUE, min_size=1, max_size=3))
def test_apt_and_pip_values_are_words_never_instructions(apt, pip):
    spec = _load(f"[env]\napt = {_toml(apt)}\npip = {_toml(pip)}\n")
    if spec is None:
        return
    text = render_dockerfile(resolve(spec, HOST))
    assert instructions(text) == BASE_INSTRUCTIONS
    lines = _logical_lines(text)
    words = [w for ln in lines if "apt-get $APT_CA install" in ln       # the shared and the project's step
             for w in shlex.split(ln.split("--no-install-recommends", 1)[1].split(";")[0])]
    assert set(apt) <= set(words) and len(words) == len(set(words))
    tokens = [t for ln in lines if "uv pip install" in ln       # every install step's words
              for t in shlex.split(ln.split("uv pip install", 1)[1].split(";")[0])]
    for p in pip:
        assert p in tokens, f"{p!r} is not one word of {tokens}"


def _run_argv(text: str, *, env: bool, command: tuple[str, ...] = ()) -> list[str] | None:
    spec = _load(text)
    if spec is None:
        return None
    opts = RunOptions(image="img", command=command, env_file="/env" if env else None, secrets_dir="/s")
    return run_argv(resolve(spec, HOST), opts)


@SETTINGS
@given(env=st.dictionaries(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,8}\Z"), VALUE, max_size=3),
       command=st.lists(VALUE, min_size=1, max_size=4), mount=VALUE)
def test_run_values_never_become_argv_flags(env, command, mount):
    table = ", ".join(f"{k} = {_toml(v)}" for k, v in env.items())
    argv = _run_argv(f"[run]\nenv = {{{table}}}\ncommand = {_toml(command)}\n"
                     f"mounts = [{_toml('/data/' + mount + ':/data')}]\n", env=bool(env), command=tuple(command))
    if argv is None:
        return
    i = argv.index("img")
    assert argv[i + 1:] == command, "the command is exactly the words after the image"
    head = argv[:i]
    for k, v in env.items():
        assert f"{k}={v}" not in head and v not in head, "no [run] env value is on the argv (ps)"
    base = _run_argv('[run]\nmounts = ["/data/x:/data"]\n' + ('env = {X = "y"}\n' if env else ""), env=bool(env))
    assert [a for a in head if a.startswith("-")] == [a for a in base[:base.index("img")] if a.startswith("-")]


@SETTINGS
@given(url=VALUE)
def test_index_and_mirror_urls_cannot_break_out(url):
    plain = instructions(render_dockerfile(resolve(_load(""), HOST)))
    for key in ("pip_index", "apt_mirror"):
        spec = _load(f"[net]\n{key} = {_toml('https://h.example/' + url)}\n")
        if spec is None:
            continue
        text = render_dockerfile(resolve(spec, HOST))
        assert instructions(text) == plain
        for line in _logical_lines(text):
            if line.lstrip().startswith("RUN"):
                shlex.split(line)          # quotes balanced: the URL did not end a quoted word
