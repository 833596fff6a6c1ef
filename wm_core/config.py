"""Shared helpers for typed, frozen, validated config dataclasses loaded from YAML."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml


class ConfigError(ValueError):
    """A config value is outside its allowed range; the message names field, value and range."""


T = TypeVar("T")


def check_range(name: str, value: float, lo: float, hi: float, *, integer: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``lo <= value <= hi`` (and integral if asked)."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or math.isnan(float(value)) or not lo <= value <= hi:
        raise ConfigError(f"{name}={value!r} must be {kind} in [{lo}, {hi}]")


def from_mapping(cls: type[T], data: dict[str, Any] | None, source: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = _to_tuple(value)
        hint = hints.get(key)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load ``cls`` from a YAML file; malformed YAML or bad values raise ConfigError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    return from_mapping(cls, data, source=str(path))
