"""Validated frozen data without importing pydantic until something must be validated.

The spec's tables and the catalog's rows are frozen stdlib dataclasses. Their per-field rules are
`Rule` markers inside `Annotated[...]`, which pydantic reads when it builds a validator for the
class; importing the class costs nothing more than a dataclass. `parse()` builds that validator on
first use. A run whose tables come from `catalog.cache` (the same bytes validated before) never
imports pydantic: its import and its validators were a third of every `dlbox plan`.

A class says how strictly it is read with `__pydantic_config__` (a plain dict: "extra": "forbid"
makes unknown keys errors).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class Rule:
    """A rule for one field: FN(value) returns the value to keep or raises ValueError (the error's
    message becomes the user's). BEFORE: FN sees the raw input, before the field's type is checked
    (to turn "80" into ["80"], say)."""

    def __init__(self, fn: Callable[[Any], Any], *, before: bool = False) -> None:
        self.fn, self.before = fn, before

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        wrap = core_schema.no_info_before_validator_function if self.before else core_schema.no_info_after_validator_function
        return wrap(self.fn, handler(source))


@cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def parse(cls: type[T], data: Any) -> T:
    """DATA (dicts, lists and scalars, as read from JSON) as a CLS, checked; raises `Invalid`."""
    from pydantic import ValidationError

    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise Invalid(exc.errors(include_url=False)) from None


def parse_json(cls: type[T], text: str, *, strict: bool = False) -> T:
    """JSON TEXT as a CLS, checked; raises `Invalid`. STRICT: no coercion at all (a string stays
    a string, 1 is not True); JSON mode is where pydantic's strict mode still reads an object as a
    dataclass."""
    from pydantic import ValidationError

    try:
        return _adapter(cls).validate_json(text, strict=strict)
    except ValidationError as exc:
        raise Invalid(exc.errors(include_url=False)) from None


class Invalid(ValueError):
    """What `parse` found wrong: pydantic's error dicts (type, loc, msg, input, ctx), first first."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"loc": (), "msg": "invalid"}
        super().__init__(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
