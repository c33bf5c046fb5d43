"""Optional matplotlib plots for the demo and the examples (matplotlib is the `examples` extra).

Without matplotlib, nothing is drawn and one line says so; everything else still runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install 'autonet[examples]' (or matplotlib)"


def pyplot(what: str) -> Any | None:
    """matplotlib.pyplot with a file-only backend, or None after printing a one-line note that
    `what` was skipped because matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # draw to files; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not installed, so {what} was skipped; {INSTALL_HINT}")
        return None
    return plt


def save_loss_curve(losses: Sequence[float], path: str | Path, title: str) -> bool:
    """Plot losses against the step, log scale, into path (PNG); False if matplotlib is absent."""
    plt = pyplot(f"the loss curve ({Path(path).name})")
    if plt is None:
        return False
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.semilogy(range(1, len(losses) + 1), losses)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
