"""Reading the host's JSON config files (daemon.json, ~/.docker/config.json): below doctor and setup."""

from __future__ import annotations

import json

from dlbox.errors import HostError


class MalformedConfig(HostError):
    """An existing config file does not parse; it is reported and left untouched."""

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        super().__init__(
            f"{path} is not valid JSON (line {line}, column {column}: {reason}); left untouched.",
            fix=f"fix the file by hand (e.g. `python3 -m json.tool {path}`), then run again",
        )
        self.path, self.line, self.column = path, line, column


def parse_json_object(text: str | None, path: str) -> dict:
    """A JSON object from `text` ({} when missing or empty); MalformedConfig otherwise."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedConfig(path, exc.lineno, exc.colno, exc.msg) from None
    if not isinstance(data, dict):
        raise MalformedConfig(path, 1, 1, f"expected an object, found {type(data).__name__}")
    return data


def dump_json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
