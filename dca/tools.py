"""``@dca.tool``: make a typed Python function callable from steps.

    @dca.tool
    def growth(new: float, old: float) -> float:
        '''Percent growth from old to new.'''
        return (new - old) / old * 100

After this, ``x3 = growth(x1, x2)`` is a valid step for every agent in the process (or pass
``tools=[growth]`` to one ``dca.Agent``). Arguments are type-checked against the signature and
the result must be a number, bool or short string, like every other step value.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar, overload

from dca.reasoning.steps import Function, builtin_functions, function_from_callable

F = TypeVar("F", bound=Callable[..., Any])
_REGISTRY: dict[str, Function] = {}


@overload
def tool(fn: F) -> F: ...
@overload
def tool(*, name: str | None = None, timed: bool = True) -> Callable[[F], F]: ...


def tool(fn: Any = None, *, name: str | None = None, timed: bool = True) -> Any:
    """Register ``fn`` on the step language's allowlist (``timed=False`` for tools that do I/O)."""

    def register(f: F) -> F:
        spec = function_from_callable(f, name, timed=timed)
        if spec.name in builtin_functions():
            raise ValueError(f"tool name {spec.name!r} is a built-in step function; choose another name")
        _REGISTRY[spec.name] = spec
        f.__dca_tool__ = spec  # type: ignore[attr-defined]
        return f

    return register(fn) if fn is not None else register


def as_function(obj: Any) -> Function:
    """A ``Function`` from a decorated function, a plain typed function, or a ``Function``."""
    if isinstance(obj, Function):
        return obj
    spec = getattr(obj, "__dca_tool__", None)
    return spec if spec is not None else function_from_callable(obj)


def registered_tools() -> dict[str, Function]:
    """Tools registered with ``@dca.tool`` in this process."""
    return dict(_REGISTRY)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)
