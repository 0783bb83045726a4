"""What every spec `kseq init` writes says about training time."""

from __future__ import annotations

from kseq.init.yaml_text import Choice

# With a time budget, `train.epochs` is only the most: the budget decides.
BUDGETED_EPOCHS = 1000


def epochs_or_budget(minutes: float | None, epochs: int) -> dict:
    """`train.time_budget` with `--minutes`, else `epochs` ended sooner by early stopping."""
    if minutes:
        return {
            "time_budget": Choice(minutes, "minutes: epochs and schedule fit into them"),
            "epochs": Choice(BUDGETED_EPOCHS, "the most; the time budget decides"),
        }
    return {"epochs": Choice(epochs, "early stopping ends sooner on a plateau")}
