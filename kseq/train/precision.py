"""`train.precision` and `train.jit_compile`: how the train step computes, never what is saved.

Under `mixed_float16` / `mixed_bfloat16` layers compute in 16 bits and keep float32 variables;
`Model.compile` wraps the optimizer in a `LossScaleOptimizer` for `mixed_float16` itself (Keras 3,
`auto_scale_loss=True`), so families need no change. A model built under a mixed policy keeps
its policy in `model.keras` and would export 16-bit arithmetic, so `float32_copy` rebuilds the
family's model under float32 and copies the (float32) weights before saving: RUN_DIR always holds
a float32 model and exports pass the float32 parity gate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy, restoring the previous one afterwards (even on error),
    so later work in the same process builds float32 models again."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def jit_warning(value, element_spec, on_gpu: bool) -> str | None:
    """The one line `train.jit_compile: true` deserves on a CPU when the training batches vary in
    shape (bucketing: one XLA program is compiled per shape), else None."""
    import tensorflow as tf

    if value is not True or on_gpu:
        return None
    shapes = [s.shape for s in tf.nest.flatten(element_spec) if hasattr(s, "shape")]
    if not any(None in list(shape)[1:] for shape in shapes if shape.rank):
        return None
    return (
        "kseq: train.jit_compile: true compiles one XLA program per batch shape, and these "
        "batches vary in length (bucketing); on a CPU that measured several times slower (the "
        "date Transformer here: 188 s compiling, then 343 ms a step against 53 ms without XLA); "
        "jit_compile: auto leaves XLA to GPUs"
    )


def set_jit_compile(model, value) -> None:
    """Apply `train.jit_compile` after the family's `compile` (families stay unaware of it).

    `fit` reads `model.jit_compile` when it first builds its train function, so setting the
    attribute before `fit` is the same as passing `jit_compile` to `compile`; "auto" keeps what
    `compile` chose. Keras turns the flag off (with a warning) for layers that cannot use XLA.
    """
    if value != "auto":
        model.jit_compile = bool(value)


def float32_copy(spec, family, data, model):
    """The trained model as a float32 model: same family graph, same weights, float32 policy."""
    if _is_float32(model):
        return model
    with dtype_policy("float32"):
        clean = family.build(spec, data)
        clean.set_weights(model.get_weights())
        family.compile(clean, spec)
    return clean


def _is_float32(model) -> bool:
    """Every layer takes the global policy it was built under, so the top-level layers (public
    `Model.layers`) tell how the whole model computes."""
    import keras

    return all(
        layer.compute_dtype == "float32"
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)  # int inputs keep their own dtype
    )
