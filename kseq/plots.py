"""Figures: attention heat maps (PNG bytes, so callers can write them atomically)."""

from __future__ import annotations

import io


def attention_png(source_tokens, target_tokens, weights, title: str = "") -> bytes:
    """Heat map of `weights` (T, S): rows are output tokens, columns source tokens."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, cols = weights.shape
    figure, axis = plt.subplots(figsize=(max(4, 0.35 * cols + 2), max(3, 0.35 * rows + 1.5)))
    image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axis.set_xticks(range(cols), [repr(t)[1:-1] for t in source_tokens], rotation=90)
    axis.set_yticks(range(rows), [repr(t)[1:-1] for t in target_tokens])
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    if title:
        axis.set_title(title[:60])
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
