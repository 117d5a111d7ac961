"""One rich progress bar for long work (indexing, training, labelling, evaluation), on stderr."""
from __future__ import annotations

from typing import Any


class ProgressBar:
    """``with ProgressBar(total, "indexing") as bar: bar.advance()``; silent when disabled or empty."""

    def __init__(self, total: int, label: str, *, enabled: bool = True, completed: int = 0):
        self.enabled = enabled and total > 0
        self.total, self.label, self.completed = total, label, completed
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.completed)
        return self

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
