"""One bar chart shape the model benchmarks share: two measured series side by side per row."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def paired_bars(path: Path, labels: Sequence[str], first: Sequence[float], second: Sequence[float], *,
                first_label: str, second_label: str, ylabel: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = list(range(len(labels)))
    ax.bar([i - 0.2 for i in xs], first, 0.4, label=first_label)
    ax.bar([i + 0.2 for i in xs], second, 0.4, label=second_label)
    ax.set_xticks(xs, list(labels), fontsize=7)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
