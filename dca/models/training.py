"""Pieces every dca training loop shares (SFT now, RL later): seeding, the learning-rate schedule,
atomic resumable checkpoints, and a run log that writes metrics JSONL, a PNG learning curve and
a rich progress bar.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def set_seed(seed: int) -> None:
    """Seed Python and torch so a run repeats (same machine, same thread count)."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` torch threads (default: ``$DCA_TORCH_THREADS`` or 2; the machines are shared)."""
    import torch

    n = threads or int(os.environ.get("DCA_TORCH_THREADS", "2"))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def warmup_args(ratio: float) -> dict[str, float]:
    """The ``TrainingArguments`` keyword for a warm-up over ``ratio`` of the steps: transformers 5
    takes a fraction as ``warmup_steps`` and deprecates ``warmup_ratio``; older versions need it."""
    import transformers

    return {"warmup_steps": ratio} if int(transformers.__version__.split(".")[0]) >= 5 else {"warmup_ratio": ratio}


def cosine_lr(step: int, *, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run keeps the previous checkpoint."""
    import torch

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none. Only dca's own files are read, and
    with ``weights_only`` (tensors, numbers, strings), never arbitrary pickles."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """Train inside without changing the caller's torch thread count or random streams: a model built
    on first use in the middle of another run (``dca:`` recipes) must not reseed it or change its threads."""
    import numpy as np
    import torch

    threads, py, npy, cpu = torch.get_num_threads(), random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)


def rng_state() -> dict[str, Any]:
    import torch

    return {"torch": torch.get_rng_state(), "python": repr(random.getstate())}


def set_rng_state(state: dict[str, Any]) -> None:
    import ast

    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(_tuplify(ast.literal_eval(state["python"])))


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


class RunLog:
    """Metrics to ``metrics.jsonl`` (one JSON object per line), a learning curve to ``curve.png``,
    and a rich progress bar showing the latest loss and throughput."""

    def __init__(self, out_dir: str | Path, total: int, start: int = 0, title: str = "training",
                 progress: bool = True):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        self.total, self.title = total, title
        self.records = [r for r in self._read() if r.get("step", 0) < start]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))  # drop what a resume redoes
        self.t0 = time.perf_counter()
        from dca.progress import ProgressBar

        self._bar = ProgressBar(total, title, enabled=progress, completed=start, info=True).start()

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: the rest is redone
        return out

    def log(self, step: int, **metrics: Any) -> None:
        record = {"step": step, "time": round(time.perf_counter() - self.t0, 3), **metrics}
        self.records.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in metrics.items() if k in ("loss", "dev_loss", "tok_s", "lr"))
        self._bar.update(step + 1, info=info)

    def advance(self, step: int) -> None:
        self._bar.update(step + 1)

    def plot(self, keys: tuple[str, ...] = ("loss", "dev_loss"),
             ylabel: str = "loss (nats / completion token)") -> Path | None:
        """Write ``curve.png``: each metric in ``keys`` against the step."""
        series = {k: [(r["step"], r[k]) for r in self.records if isinstance(r.get(k), (int, float))] for k in keys}
        if not any(series.values()):
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for k, pts in series.items():
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker="o" if len(pts) < 30 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(self.title)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = self.dir / "curve.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out

    def close(self) -> None:
        self._bar.stop()
