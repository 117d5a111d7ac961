"""The built-in task families, registered by name. Each module loads only when its family is asked for."""
from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

from dca.reasoning.tasks.base import Problem, TaskFamily, families, get_family, register_family

_BUILTIN = {
    "gsm8k": "dca.reasoning.tasks.gsm8k:GSM8K",
    "finqa": "dca.reasoning.tasks.finqa:FinQA",
    "tatqa": "dca.reasoning.tasks.tatqa:TATQA",
    "synthetic": "dca.reasoning.tasks.synthetic:Synthetic",
    "countdown": "dca.reasoning.tasks.countdown:Countdown",
}


def _lazy(target: str) -> Callable[..., TaskFamily]:
    module, _, attr = target.partition(":")

    def factory(**kwargs: Any) -> TaskFamily:
        return getattr(import_module(module), attr)(**kwargs)

    factory.__doc__ = f"Build the {attr} task family ({module})."
    return factory


for _name, _target in _BUILTIN.items():
    register_family(_name, _lazy(_target))

__all__ = ["Problem", "TaskFamily", "families", "get_family", "register_family"]
