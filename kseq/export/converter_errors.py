"""Turn a TFLite converter failure into one line naming the ops and the Keras layers behind them.

The converter's `ConverterError` carries structured `errors` (op name, message, call sites); a
location's name is the TF name scope, e.g. "functional_1/lstm_1/TensorArrayV2_1@__inference_...".
Keras 3 traces each layer under its name plus a uniquifying "_1", so the suffix is stripped and the
result matched against the layer names the SavedModel exporter writes to its report.json.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

__all__ = ["describe_conversion_error", "layer_for_scopes", "unsupported_ops"]

# Messages that mean "this TF op has no TFLite builtin kernel" (other errors are reported verbatim).
_NO_BUILTIN = ("failed to legalize operation", "neither a custom op nor a flex op")
_QUOTED_OP = re.compile(r"'tf\.(\w+)'")
_TEXT_SCOPE = re.compile(r'"([^"@]+)@')
# tensorflow-text kernels registered as TFLite custom ops (tensorflow_text.tflite_registrar).
_TEXT_OP_PREFIXES = (
    "ByteSplit",
    "FastBertNormalize",
    "FastSentencepiece",
    "FastWordpiece",
    "NgramsStringJoin",
    "RaggedTensorToTensor",
    "RoundRobin",
    "SentenceFragmenter",
    "Utf8Binarize",
    "WhitespaceTokenize",
)
_SUFFIX = re.compile(r"_\d+$")
# Scope components TF or Keras add on their own; never the name of a user's layer.
_INTERNAL = re.compile(
    r"^(while|cond|body|rnn|StatefulPartitionedCall|PartitionedCall|"
    r"TensorArray\w*|functional|sequential)(_\d+)?$"
)


def unsupported_ops(error: BaseException) -> list[tuple[str, list[str]]]:
    """(op name without "tf.", scope paths innermost first) for each op lacking a builtin."""
    found: list[tuple[str, list[str]]] = []
    for item in getattr(error, "errors", None) or []:
        op = item.operator.name
        if not op.startswith("tf.") or not any(m in item.error_message for m in _NO_BUILTIN):
            continue
        scopes = [call.name.split("@")[0] for call in item.location.call]
        found.append((op[3:], scopes))
    if found:
        return found
    # No structured errors (other TF builds): the same facts are in the text, one per line.
    for line in str(error).splitlines():
        match = _QUOTED_OP.search(line)
        if match and any(m in line for m in _NO_BUILTIN):
            found.append((match.group(1), _TEXT_SCOPE.findall(line)))
    return found


def layer_for_scopes(scopes: Sequence[str], layer_names: Collection[str] | None) -> str | None:
    """The innermost Keras layer in the scope paths.

    With `layer_names` known, only those count; without (no report.json), any scope with Keras's
    "_<n>" suffix that is not a TF/Keras internal name is taken as the layer.
    """
    for scope in scopes:
        parts = scope.split("/")[:-1]  # the last part is the op's own name
        for part in reversed(parts):
            base = _SUFFIX.sub("", part)
            if layer_names is None:
                if base != part and not _INTERNAL.match(part):
                    return base
            elif base in layer_names:
                return base
            elif part in layer_names:
                return part
    return None


def _is_text_op(op: str) -> bool:
    return op.startswith(_TEXT_OP_PREFIXES)


def describe_conversion_error(
    error: BaseException,
    signature_keys: Sequence[str],
    layer_names: Collection[str] | None = None,
    allow_custom_ops: bool = False,
) -> str:
    """One line for an ExportError: which layers use which non-builtin ops, or the first error."""
    ops = unsupported_ops(error)
    if not ops:
        return f"TFLite conversion of {', '.join(signature_keys)} failed: {_first_error(error)}"
    by_layer: dict[str | None, list[str]] = {}
    for op, scopes in ops:
        names = by_layer.setdefault(layer_for_scopes(scopes, layer_names), [])
        if op not in names:
            names.append(op)
    parts = [
        f"layer {layer!r} uses {', '.join(names)}"
        if layer
        else f"{', '.join(names)} outside any known Keras layer"
        for layer, names in by_layer.items()
    ]
    if not allow_custom_ops and any(_is_text_op(op) for op, _ in ops):
        advice = "tensorflow-text ops need an export with custom ops allowed"
    else:
        advice = "use an exportable layer"
    return (
        f"cannot lower to TFLite builtin ops: {'; '.join(parts)} (no builtin kernel); "
        f"kseq never enables Flex — {advice}"
    )


def _first_error(error: BaseException) -> str:
    items: list[Any] = list(getattr(error, "errors", None) or [])
    for item in items:
        if item.error_message:
            return item.error_message.splitlines()[0][:300]
    for line in str(error).splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()[:300]
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
