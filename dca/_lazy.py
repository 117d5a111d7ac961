"""Lazy package exports: ``name -> module`` tables resolved on first attribute access, so importing
a package does not import torch, transformers or chromadb until something needs them."""
from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def import_attr(target: str) -> Any:
    """The object ``"package.module:attr"`` names; ``ValueError`` with one line when the module does
    not import or lacks the attribute (pipeline kinds, checks and scorers are named this way)."""
    module, _, attr = target.partition(":")
    try:
        loaded = import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r} ({exc})") from None
    try:
        return getattr(loaded, attr)
    except AttributeError:
        raise ValueError(f"module {module!r} has no attribute {attr!r}") from None


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` once and caches the value in ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
