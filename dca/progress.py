"""One rich progress bar for long work (indexing, training, labelling, evaluation), on stderr."""
from __future__ import annotations

from typing import Any


class ProgressBar:
    """``with ProgressBar(total, "indexing") as bar: bar.advance()``; silent when disabled or empty.

    ``info=True`` adds a column for a short status (``bar.update(step, info="loss 1.23")``);
    ``start()`` / ``stop()`` do what ``with`` does, for a bar that lives in an object.
    """

    def __init__(self, total: int, label: str, *, enabled: bool = True, completed: int = 0, info: bool = False):
        self.enabled = enabled and total > 0
        self.total, self.label, self.completed, self.info = total, label, completed, info
        self._bar: Any = None
        self._task: Any = None

    def start(self) -> "ProgressBar":
        if self.enabled and self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
            if self.info:
                columns.append(TextColumn("{task.fields[info]}"))
            self._bar = Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.completed, info="")
        return self

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, completed: int, info: str | None = None) -> None:
        """Set how much is done (and the status text, when the bar has one)."""
        if self._bar is not None:
            fields = {"info": info} if info is not None else {}
            self._bar.update(self._task, completed=completed, **fields)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
