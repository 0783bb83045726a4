"""Forms of common ops that lower to TFLite builtins an accelerator compiles.

The TFLite converter rewrites `equal(range(L), x)` into ONE_HOT, which GPU delegates and NPU
compilers reject (and `one_hot` itself is ONE_HOT); the same mask from two comparisons stays two
comparisons.
"""

from __future__ import annotations

from keras import ops

__all__ = ["position_one_hot"]


def position_one_hot(positions, length: int, dtype=None):
    """`(…,)` int positions -> `(…, length)` booleans, True at each position (or `dtype` 0/1).

    Equal to `one_hot(positions, length)`; a position outside `0 … length - 1` is all False.
    """
    slots = ops.arange(length, dtype="int32")  # (L,)
    positions = ops.expand_dims(ops.cast(positions, "int32"), -1)  # (…, 1)
    hit = ops.logical_and(
        ops.less_equal(slots, positions), ops.logical_not(ops.less(slots, positions))
    )
    return hit if dtype is None else ops.cast(hit, dtype)
