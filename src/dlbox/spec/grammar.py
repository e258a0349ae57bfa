"""The grammar of each spec value that reaches Dockerfile text, a shell or a docker argv.

Every check matches the whole value (`fullmatch`: a `$` in `re.match` also takes a trailing line
break, so "https://m.example/\n" used to pass). Every check raises ValueError with what was expected; the spec model turns it into a SpecError
naming the file and line. Rendering still quotes what it writes: validation keeps values
meaningful, quoting keeps them inert (see tests/unit/test_injection.py).
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

# Debian policy 5.6.1: names are [a-z0-9][a-z0-9+.-]+; apt also takes NAME:ARCH and NAME=VERSION.
_DEB = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# An URL that can sit in a shell word, a sed expression or a Dockerfile line unchanged:
# RFC 3986 characters without quotes, backslash, `$`, backtick, `#` or whitespace.
_URL = re.compile(r"^https?://[A-Za-z0-9._~:/?&=%+@!,;*()\[\]-]+$")
_PIP_URL = re.compile(r"^((git|hg|svn|bzr)\+)?(https?|ssh|file)://[A-Za-z0-9._~:/?&=%+@!,;*()\[\]#-]+$")
_LOCAL = re.compile(r"^(\.{1,2}|\.{0,2}/[A-Za-z0-9._/+-]*)(\[[A-Za-z0-9,_.-]+\])?$")
# Paths inside the project that become `--mount=type=bind,source=…` (comma-separated options).
_PROJECT_PATH = re.compile(r"^[A-Za-z0-9._/+@-]+$")
# docker image references: [registry[:port]/]path[:tag][@digest]
_IMAGE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def no_control(value: str) -> str:
    """No line breaks or other control characters: one value, one line of text."""
    if _CONTROL.search(value):
        raise ValueError(f"{value!r} holds a line break or another control character")
    return value


def apt_package(value: str) -> str:
    if not _DEB.fullmatch(value):
        raise ValueError(f"{value!r} is not a Debian package name (lower-case letters, digits, '+', '-', '.'; "
                         "optionally :ARCH or =VERSION)")
    return value


def pip_requirement(value: str) -> str:
    """A PEP 508 requirement (`torch>=2`, `pkg[extra]; python_version<'3.12'`, `name @ URL`),
    a VCS/archive URL, or a local path (`./pkg`, `.`)."""
    no_control(value)
    if _PIP_URL.fullmatch(value) or _LOCAL.fullmatch(value):
        return value
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"{value!r} is not a pip requirement (PEP 508, a URL or ./path): {exc}") from None
    return value


def env_name(value: str) -> str:
    if not ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits, '_')")
    return value


def url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError(f"expected an http(s) URL such as \"https://mirrors.ustc.edu.cn/debian\" "
                         f"(no spaces, quotes, '$' or '#'), got {value!r}")
    return value


def project_path(value: str) -> str:
    if not _PROJECT_PATH.fullmatch(value) or value.startswith("/"):
        raise ValueError(f"{value!r}: expected a path relative to the project, of letters, digits and ._/+@-")
    return value


def image_ref(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not an image reference such as \"nvidia/cuda:12.4.1-runtime-ubuntu22.04\"")
    return value
