"""`kseq.decoding.app_loop`: the greedy loop an app runs over `encode` + `decode_step`, on a
hand-written numpy "model" whose right answer is known."""

from __future__ import annotations

import numpy as np

from kseq.decoding.app_loop import greedy_app_loop
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID, PAD_ID

VOCAB = 12


class CopyModel:
    """Emits its source row, then eos; bos and padding get the highest logits (the loop must
    never pick them). Records the batch of every call, as a static file would see it."""

    def __init__(self):
        self.batches = []

    def encode(self, source_ids):
        self.batches.append(("encode", len(source_ids)))
        return {"memory": source_ids.astype(np.float32), "state_step": np.zeros(len(source_ids))}

    def decode_step(self, token_ids, encoded_memory, state_step):
        self.batches.append(("decode_step", len(token_ids)))
        step = state_step.astype(int)
        memory = encoded_memory.astype(int)
        rows = np.arange(len(token_ids))
        wanted = np.where(
            step < memory.shape[1], memory[rows, np.minimum(step, memory.shape[1] - 1)], 0
        )
        wanted = np.where(wanted > 0, wanted, EOS_ID)
        logits = np.zeros((len(token_ids), VOCAB), np.float32)
        logits[rows, wanted] = 5.0
        logits[:, [PAD_ID, BOS_ID]] = 9.0
        return {"logits": logits, "state_step": state_step + 1}


SOURCES = np.array([[5, 6, 7, 0], [8, 0, 0, 0], [4, 4, 9, 10]], np.int32)
EXPECTED = np.array(
    [[5, 6, 7, 0, 0, 0], [8, 0, 0, 0, 0, 0], [4, 4, 9, 10, 0, 0]], np.int32
)  # eos and everything after it: zeros


def test_greedy_loop_copies_the_source_and_stops_at_eos():
    model = CopyModel()
    ids = greedy_app_loop(model.encode, model.decode_step, SOURCES, max_length=6)
    np.testing.assert_array_equal(ids, EXPECTED)
    steps = [b for b in model.batches if b[0] == "decode_step"]
    assert len(steps) == 5  # the longest row's 4 tokens and its eos, then every row is done


def test_fixed_batch_fills_the_last_chunk_and_drops_the_filler():
    model = CopyModel()
    ids = greedy_app_loop(model.encode, model.decode_step, SOURCES, max_length=6, batch_size=2)
    np.testing.assert_array_equal(ids, EXPECTED)
    assert {size for _, size in model.batches} == {2}  # every call at the file's batch
    assert [name for name, _ in model.batches].count("encode") == 2


def test_max_length_cuts_a_row_that_never_ends():
    model = CopyModel()
    ids = greedy_app_loop(model.encode, model.decode_step, SOURCES, max_length=2, batch_size=3)
    np.testing.assert_array_equal(ids, [[5, 6], [8, 0], [4, 4]])
