"""The training-curve PNG of the project's training scripts: losses on the left, validation figures on the right."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

Series = Tuple[str, str]  # (history key, label)


def plot_training(history: List[Dict[str, float]], path: str, losses: Sequence[Series], scores: Sequence[Series],
                  score_range: Tuple[float, float] = (0.0, 1.0)) -> None:
    """Write ``path``: each (key, label) of ``losses`` and of ``scores`` against the epoch. A key that the
    history does not have is left out, so optional figures need no special case. ``1-KEY`` plots 1 − KEY."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def values(key: str) -> List[float]:
        if key.startswith("1-"):
            return [1 - h[key[2:]] for h in history]
        return [h[key] for h in history]

    def present(key: str) -> bool:
        return bool(history) and key.replace("1-", "", 1) in history[0]

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for axis, series in ((ax[0], losses), (ax[1], scores)):
        for key, label in series:
            if present(key):
                axis.plot(ep, values(key), label=label)
        axis.set_xlabel("epoch")
        axis.legend()
    ax[1].set_ylim(*score_range)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
