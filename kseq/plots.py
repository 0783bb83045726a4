"""Figures: attention heat maps (PNG bytes, so callers can write them atomically)."""

from __future__ import annotations

import io
import textwrap

VISIBLE_SPACE = "\u2423"  # ␣: a blank tick label would hide where the spaces are


def tick_label(token: str) -> str:
    """A token as an axis shows it: spaces visible, control characters escaped."""
    return repr(token)[1:-1].replace(" ", VISIBLE_SPACE)


def attention_png(source_tokens, target_tokens, weights, title: str = "") -> bytes:
    """Heat map of `weights` (T, S): rows are output tokens, columns source tokens."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, cols = weights.shape
    width = max(4, 0.35 * cols + 2)
    figure, axis = plt.subplots(figsize=(width, max(3, 0.35 * rows + 1.5)))
    image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(cols), [tick_label(t) for t in source_tokens], rotation=90)
    axis.set_yticks(range(rows), [tick_label(t) for t in target_tokens])
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    if title:  # wrapped to the figure's width (about 9 characters an inch at 10 points)
        title = title if len(title) <= 160 else title[:159] + "…"
        axis.set_title(textwrap.fill(title, int(width * 9)), fontsize=10)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
