"""The app's side of a file without `generate`: greedy decoding over `encode` + `decode_step`.

The same loop as the README's ("Your own decoding loop in an app"), over callables instead of
an interpreter's signature runners, so the export gate can score a `--static` file the way an
app runs it: numpy only, a fixed batch filled with padding rows, states carried from one call
to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from kseq.data.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID

Signature = Callable[..., Mapping[str, np.ndarray]]

__all__ = ["Signature", "greedy_app_loop"]


def _greedy_rows(
    encode: Signature, decode_step: Signature, source_ids: np.ndarray, max_length: int
) -> np.ndarray:
    out = encode(source_ids=source_ids)
    encoded = {f"encoded_{k}": v for k, v in out.items() if not k.startswith("state_")}
    state = {k: v for k, v in out.items() if k.startswith("state_")}
    tokens = np.full(len(source_ids), BOS_ID, np.int32)
    ids = np.zeros((len(source_ids), max_length), np.int32)
    done = np.zeros(len(source_ids), bool)
    for i in range(max_length):
        out = decode_step(token_ids=tokens, **encoded, **state)
        logits = np.array(out["logits"], np.float32)
        logits[:, [PAD_ID, BOS_ID]] = -1e9  # never emitted, as in generate
        tokens = logits.argmax(-1).astype(np.int32)
        done |= tokens == EOS_ID
        ids[~done, i] = tokens[~done]
        state = {k: v for k, v in out.items() if k.startswith("state_")}
        if done.all():
            break
    return ids


def greedy_app_loop(
    encode: Signature,
    decode_step: Signature,
    source_ids: np.ndarray,
    max_length: int,
    batch_size: int | None = None,
) -> np.ndarray:
    """source_ids int32 (N, S), 0-padded -> int32 (N, max_length), zeros from the first eos.

    `batch_size`: the file's fixed batch (a static file); rows go in chunks of it, the last
    chunk filled with one-`<unk>` rows whose results are dropped. None: all rows in one call.
    """
    source_ids = np.asarray(source_ids, np.int32)
    if batch_size is None:
        return _greedy_rows(encode, decode_step, source_ids, max_length)
    chunks = []
    for start in range(0, len(source_ids), batch_size):
        chunk = source_ids[start : start + batch_size]
        rows = len(chunk)
        if rows < batch_size:
            filler = np.zeros((batch_size - rows, source_ids.shape[1]), np.int32)
            filler[:, 0] = UNK_ID
            chunk = np.concatenate([chunk, filler])
        chunks.append(_greedy_rows(encode, decode_step, chunk, max_length)[:rows])
    return np.concatenate(chunks) if chunks else np.zeros((0, max_length), np.int32)
