"""The validation split every family makes when the spec gives no held-out file."""

from __future__ import annotations

import numpy as np

from kseq.errors import KseqError


def hold_out(count: int, fraction: float, seed: int, too_few: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices of `count` items: `round(count * fraction)` of them (at least
    one) held out, drawn by a permutation seeded with `seed`.

    Raises:
        KseqError(`too_few`): nothing would be left to train on.
    """
    order = np.random.default_rng(seed).permutation(count)
    held = max(1, int(round(count * fraction)))
    if held >= count:
        raise KseqError(too_few)
    return order[held:], order[:held]
