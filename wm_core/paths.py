"""Output paths built from names that come from data (a bag's name, a policy or entry name,
an episode name): :func:`inside` keeps each one under its output directory."""

from __future__ import annotations

import os
from pathlib import Path, PurePath


class PathEscapeError(ValueError):
    """A data-controlled name would put a file outside its output directory."""


def inside(out_dir: str | os.PathLike, name: str | os.PathLike) -> Path:
    """``out_dir / name``, refusing a ``name`` that is empty, absolute, contains ``..`` or a
    NUL byte, or resolves (through symlinks already on disk) outside ``out_dir``."""
    text = os.fspath(name)
    parts = PurePath(text).parts
    if (
        not text
        or "\0" in text
        or PurePath(text).is_absolute()
        or text.startswith("~")
        or ".." in parts
        or not parts
    ):
        raise PathEscapeError(
            f"name {text[:100]!r} is not a plain relative name inside {os.fspath(out_dir)}"
        )
    root = Path(out_dir)
    path = root / text
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise PathEscapeError(f"{path} resolves outside {real_root}")
    return path
