"""In-graph decoding (greedy, beam search, sampling) over any `Seq2SeqGraph`.

The decoders are plain functions of TF ops, callable eagerly, inside a `tf.function` or as a
`keras.export.ExportArchive` endpoint. Their loops are `tf.while_loop`s whose state has fixed
shapes (`(B, L)` id buffers written through a one-hot position mask, batch-first state dicts),
no TensorArray and no `x[:, None]` indexing, so greedy and beam search convert to TFLite
builtin ops (WHILE, TOPK_V2, GATHER, ...) and run with a dynamic batch on the plain
interpreter.

Output convention: `target_ids` holds the generated ids up to and excluding the first eos,
then zeros (padding); the shape is always `max_length` wide, even when every row finished
early (the loop itself stops early).
"""

from kseq.decoding.beam import beam_search
from kseq.decoding.greedy import greedy, sample
from kseq.decoding.protocol import Seq2SeqGraph

# `decode.strategy` -> (the decoder, the `decode:` options it takes besides max_length and ids).
STRATEGIES = {
    "greedy": (greedy, ()),
    "beam": (beam_search, ("beam_width", "length_penalty", "n_best")),
    "sampling": (sample, ("temperature", "top_k", "seed")),
}

__all__ = ["STRATEGIES", "Seq2SeqGraph", "beam_search", "greedy", "sample"]
