"""Shared helpers for typed, frozen, validated config dataclasses loaded from YAML.

A config file is untrusted input: :func:`load_yaml` turns every problem (unreadable file, text
that is not UTF-8, malformed YAML, a document that is not a mapping, unknown fields, values of
the wrong type, out-of-range numbers, absurdly large or deeply nested documents) into one
:class:`ConfigError` whose one-line message names the file and the field.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml


class ConfigError(ValueError):
    """A config value is outside its allowed range; the message names field, value and range."""


T = TypeVar("T")

MAX_CONFIG_BYTES = 1 << 20
"""Config files larger than this (1 MiB) are refused unread."""
MAX_NODES = 10_000
"""Values (scalars, list items, mapping entries) in one config document, aliases expanded."""
MAX_DEPTH = 32
"""Nesting depth of lists and mappings in one config document."""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages stay one short line)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. an int with more digits than str() allows
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_range(name: str, value: float, lo: float, hi: float, *, integer: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi`` (and integral if asked)."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        if ok and integer:
            ok = float(value).is_integer()
        ok = ok and not math.isnan(float(value)) and lo <= value <= hi
    except OverflowError:  # an int too large for a float is out of every range here
        ok = False
    if not ok:
        raise ConfigError(f"{name}={short_repr(value)} must be {kind} in [{lo}, {hi}]")


def bounded(default: Any, lo: float, hi: float, *, integer: bool = False) -> Any:
    """A dataclass field whose allowed range lives in the field itself: :func:`check_fields`
    checks it, and a ROS node generates its parameter (default, range, description) from it,
    so each range is written once."""
    return dataclasses.field(default=default, metadata={"range": (lo, hi), "integer": integer})


def check_fields(obj: Any) -> None:
    """Check every :func:`bounded` field of a dataclass instance (ConfigError naming it)."""
    for f in dataclasses.fields(obj):
        rng = f.metadata.get("range")
        if rng is not None:
            check_range(f.name, getattr(obj, f.name), *rng, integer=f.metadata["integer"])


@functools.lru_cache(maxsize=64)
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal right after it in the class body), one
    line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    out = {}
    for a, b in zip(body, body[1:], strict=False):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


def from_mapping(cls: type[T], data: dict[str, Any] | None, source: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name.

    Values are checked against the field annotations (``int``, ``float``, ``bool``, ``str``,
    tuples of them, nested config dataclasses given as mappings): a value of the wrong type is
    a :class:`ConfigError` naming the field, never a ``TypeError`` from deep inside. Lists
    become tuples; an int is accepted for a float, an integral float for an int."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    _check_size(data, source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{source}: field names must be strings, got {short_repr(bad_keys)}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown field(s) {short_repr(unknown, 200)}; allowed: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {key: _coerce(key, value, hints.get(key), source) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # a range check in __post_init__: name the file too
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _check_size(data: Any, source: str) -> None:
    """Refuse documents that are too deep or too large (YAML aliases can make a short file
    expand into billions of values: the count includes every expansion)."""
    count = 0
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(f"{source}: more than {MAX_NODES} values; not a config")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels; not a config")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _coerce(name: str, value: Any, hint: Any, source: str) -> Any:
    """``value`` checked against the annotation ``hint`` (unknown annotations pass through)."""

    def wrong(what: str) -> ConfigError:
        return ConfigError(
            f"{source}: {name}={short_repr(value)} must be {what}, not {_type_name(value)}"
        )

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{source}: {name}={short_repr(value)} is too large") from None
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise wrong("an integer")
            return int(value)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise wrong(f"a mapping of {hint.__name__} fields")
        return from_mapping(hint, value, f"{source}: {name}")
    origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, tuple):
            raise wrong("a list")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(args) != len(value):
            raise ConfigError(
                f"{source}: {name}={short_repr(value)} must be a list of {len(args)} values"
            )
        return tuple(
            _coerce(f"{name}[{i}]", v, a, source)
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        if value is None:
            return None
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(name, value, rest[0], source) if len(rest) == 1 else value
    if isinstance(value, list):  # an annotation this checker does not know: lists -> tuples
        return _to_tuple(value)
    return value


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """The parsed YAML document of a file: what every loader of ours reads files with. Too
    large (over ``MAX_CONFIG_BYTES``), unreadable, not UTF-8, nested too deeply or malformed
    raise a one-line :class:`ConfigError` naming ``what`` and the path."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{what} {path} is {size} bytes; configs are at most {MAX_CONFIG_BYTES}"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from exc
    try:
        _check_yaml_depth(text, path, what)
        return yaml.safe_load(text)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    # PyYAML lets a few malformed scalars through as plain Python errors (a date such as
    # 2024-13-45, an int with more digits than Python converts) and recurses per nesting level
    except (ValueError, OverflowError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{what} {path} is not valid YAML: {msg}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{what} {path} is nested too deeply to be a config") from exc


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load ``cls`` from a YAML file; malformed YAML or bad values raise ConfigError."""
    return from_mapping(cls, read_yaml(path), source=str(path))


def _check_yaml_depth(text: str, path: Path, what: str = "config") -> None:
    """Refuse deeply nested text before composing it (PyYAML composes recursively: a few
    thousand brackets take seconds to end in a RecursionError). The event parser is flat."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{what} {path} is nested too deeply to be a config")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
