"""A small checker of values against the TypedDicts of chat.frames and chat.events.

Exact keys (every required key, no key the type does not name) and value types: str, int
(a bool is no int), bool, None, Literal, unions, lists, fixed tuples, ``dict[str, Any]`` and
nested TypedDicts.
"""

from __future__ import annotations

import types
import typing
from typing import Any


def problems(value: Any, hint: Any, where: str = "frame") -> list[str]:
    """What is wrong with ``value`` as a ``hint``; empty when nothing is."""
    if hint is Any:
        return []
    if hint is None or hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if typing.is_typeddict(hint):
        return _typeddict_problems(value, hint, where)
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is typing.Literal:
        # A str enum member (Sender.PATRON) is its text on the wire; a bool is never a number.
        same_type = any(
            isinstance(value, type(choice)) and isinstance(value, bool) == isinstance(choice, bool)
            for choice in arguments
        )
        if same_type and value in arguments:
            return []
        return [f"{where}: {value!r} is not one of {arguments!r}"]
    if origin in (typing.Union, types.UnionType):
        for option in arguments:
            if not problems(value, option, where):
                return []
        return [f"{where}: {value!r} is none of {arguments!r}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [
            p
            for i, item in enumerate(value)
            for p in problems(item, arguments[0], where + f"[{i}]")
        ]
    if origin is tuple:
        # A fixed-length tuple: JSON carries it as a list.
        if not isinstance(value, list | tuple) or len(value) != len(arguments):
            return [f"{where}: {value!r} is not a list of {len(arguments)}"]
        return [
            p
            for i, (item, argument) in enumerate(zip(value, arguments, strict=True))
            for p in problems(item, argument, where + f"[{i}]")
        ]
    if origin is dict:
        return [] if isinstance(value, dict) else [f"{where}: {value!r} is not an object"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not a whole number"]
    if hint in (str, bool):
        return [] if isinstance(value, hint) else [f"{where}: {value!r} is not {hint.__name__}"]
    raise TypeError(f"the checker does not know {hint!r}")


def _typeddict_problems(value: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object"]
    hints = typing.get_type_hints(hint)
    found: list[str] = []
    missing = hint.__required_keys__ - value.keys()
    unknown = value.keys() - hints.keys()
    if missing:
        found.append(f"{where}: {hint.__name__} misses {sorted(missing)}")
    if unknown:
        found.append(f"{where}: {hint.__name__} has no {sorted(unknown)}")
    for key in value.keys() & hints.keys():
        found += problems(value[key], hints[key], f"{where}.{key}")
    return found
