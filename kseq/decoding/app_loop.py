"""The app's side of a file without `generate`: greedy decoding and beam search over
`encode` + `decode_step`.

The same loops as the README's ("Your own decoding loop in an app"), over callables instead of
an interpreter's signature runners, so the export gate can score a `--static` file the way an
app runs it: numpy only, a fixed batch filled with padding rows, states carried from one call
to the next. Beam search follows `kseq.decoding.beam_search` step for step (the same float32
arithmetic, ties to the lower index as `top_k`), so it gives `generate`'s ids and scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID

Signature = Callable[..., Mapping[str, np.ndarray]]

__all__ = ["Signature", "beam_app_loop", "greedy_app_loop"]

NEG = np.float32(-1e9)  # the in-graph decoders' "never"


def _full_chunks(source_ids: np.ndarray, size: int):
    """`(chunk, rows)`: `size` rows at a time, the last chunk filled with one-`<unk>` rows whose
    results the caller drops (`rows`: the real ones)."""
    for start in range(0, len(source_ids), size):
        chunk = source_ids[start : start + size]
        rows = len(chunk)
        if rows < size:
            filler = np.zeros((size - rows, source_ids.shape[1]), np.int32)
            filler[:, 0] = UNK_ID
            chunk = np.concatenate([chunk, filler])
        yield chunk, rows


def _greedy_rows(
    encode: Signature, decode_step: Signature, source_ids: np.ndarray, max_length: int
) -> np.ndarray:
    encoded, state = _split(encode(source_ids=source_ids))
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
    chunks = [
        _greedy_rows(encode, decode_step, chunk, max_length)[:rows]
        for chunk, rows in _full_chunks(source_ids, batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, max_length), np.int32)


def _split(outputs: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """`encode`'s outputs -> (decode_step's `encoded_*` inputs, the first `state_*`)."""
    encoded = {f"encoded_{k}": v for k, v in outputs.items() if not k.startswith("state_")}
    return encoded, {k: v for k, v in outputs.items() if k.startswith("state_")}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _length_penalty(lengths: np.ndarray, alpha: float) -> np.ndarray:
    return ((np.float32(5.0) + lengths) / np.float32(6.0)) ** np.float32(alpha)


def _beam_rows(encode, decode_step, source_ids, max_length, k, alpha, n_best):
    """Beam search of `source_ids` (b, S); every call at batch b * k."""
    b = len(source_ids)
    # Row r * k + j is beam j of source r: encode each source once per beam.
    encoded, state = _split(encode(source_ids=np.repeat(source_ids, k, axis=0)))
    ids = np.zeros((b, k, max_length), np.int32)
    scores = np.tile(np.where(np.arange(k) == 0, 0, NEG).astype(np.float32), (b, 1))
    lengths = np.zeros((b, k), np.float32)
    finished = np.zeros((b, k), bool)
    tokens = np.full(b * k, BOS_ID, np.int32)
    beam_offsets = (np.arange(b) * k)[:, None]
    for i in range(max_length):
        if finished.all():
            break
        out = decode_step(token_ids=tokens, **encoded, **state)
        log_probs = _log_softmax(np.asarray(out["logits"], np.float32))
        log_probs[:, [PAD_ID, BOS_ID]] = NEG
        vocab = log_probs.shape[-1]
        log_probs = log_probs.reshape(b, k, vocab)
        eos_only = np.where(np.arange(vocab) == EOS_ID, 0, NEG).astype(np.float32)
        log_probs = np.where(finished[..., None], eos_only, log_probs)
        totals = scores[..., None] + log_probs  # (b, k, V)
        candidate_lengths = np.where(finished, lengths, np.float32(i + 1))
        normalized = totals / _length_penalty(candidate_lengths, alpha)[..., None]
        best = np.argsort(-normalized.reshape(b, k * vocab), axis=1, kind="stable")[:, :k]
        parents, next_tokens = best // vocab, (best % vocab).astype(np.int32)
        scores = np.take_along_axis(totals.reshape(b, k * vocab), best, 1)
        lengths = np.take_along_axis(candidate_lengths, parents, 1)
        parent_finished = np.take_along_axis(finished, parents, 1)
        ids = np.take_along_axis(ids, parents[..., None], 1)
        is_eos = next_tokens == EOS_ID
        write = ~parent_finished & ~is_eos
        ids[..., i] = np.where(write, next_tokens, ids[..., i])
        finished = parent_finished | is_eos
        rows = (parents + beam_offsets).reshape(-1)
        state = {name: v[rows] for name, v in out.items() if name.startswith("state_")}
        tokens = next_tokens.reshape(-1)
    final = scores / _length_penalty(lengths, alpha)
    order = np.argsort(-final, axis=1, kind="stable")[:, :n_best]
    best_ids = np.take_along_axis(ids, order[..., None], 1)
    return best_ids, np.take_along_axis(final, order, 1)


def beam_app_loop(
    encode: Signature,
    decode_step: Signature,
    source_ids: np.ndarray,
    max_length: int,
    beam_width: int = 4,
    length_penalty: float = 0.6,
    n_best: int = 1,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Beam search: source_ids int32 (N, S) -> (ids int32 (N, n_best, max_length), zeros from
    eos; scores float32 (N, n_best), `log P / ((5 + length) / 6) ** length_penalty`), best first.

    Every call runs at batch `sources x beam_width`; `encode` gets each source once per beam.
    `batch_size`: the file's fixed batch, a multiple of `beam_width`. None: all sources at once.
    """
    source_ids = np.asarray(source_ids, np.int32)
    k = beam_width
    if not 1 <= n_best <= k:
        raise ValueError(f"n_best must be in 1..beam_width={k}. Received: {n_best}")
    if batch_size is None:
        return _beam_rows(encode, decode_step, source_ids, max_length, k, length_penalty, n_best)
    if batch_size % k:
        raise ValueError(
            f"a file of batch {batch_size} cannot hold {k} beams a source: export it with a "
            f"batch that is a multiple of the beam width (--batch-size {k})"
        )
    per_call = batch_size // k
    ids, scores = [], []
    for chunk, rows in _full_chunks(source_ids, per_call):
        got, got_scores = _beam_rows(
            encode, decode_step, chunk, max_length, k, length_penalty, n_best
        )
        ids.append(got[:rows])
        scores.append(got_scores[:rows])
    if not ids:
        return np.zeros((0, n_best, max_length), np.int32), np.zeros((0, n_best), np.float32)
    return np.concatenate(ids), np.concatenate(scores)
