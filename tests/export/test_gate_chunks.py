"""The parity gate runs a large sample batch in bounded chunks and joins the outputs."""

from __future__ import annotations

import numpy as np

from kseq.export.parity import in_chunks


def test_large_batches_run_in_bounded_chunks_and_join_in_order():
    calls = []

    def run(batch):
        calls.append(len(batch["x"]))
        return {"double": batch["x"] * 2, "ids": batch["x"][:, :1].astype(np.int32)}

    x = np.arange(600 * 3, dtype=np.float32).reshape(600, 3)
    out = in_chunks(run, {"x": x}, rows=256)
    assert calls == [256, 256, 88]
    np.testing.assert_array_equal(out["double"], x * 2)
    np.testing.assert_array_equal(out["ids"], x[:, :1].astype(np.int32))
    calls.clear()
    in_chunks(run, {"x": x[:256]}, rows=256)
    assert calls == [256]  # a batch within the bound is one call


def test_outputs_sized_by_their_chunk_fall_back_to_one_call():
    calls = []

    def run(batch):  # like in-graph tokenizing: width = the chunk's longest row
        calls.append(len(batch["n"]))
        width = int(batch["n"].max())
        return {"padded": np.zeros((len(batch["n"]), width))}

    n = np.array([1, 2, 3, 9, 1])
    out = in_chunks(run, {"n": n}, rows=2)
    assert calls == [2, 2, 1, 5]
    assert out["padded"].shape == (5, 9)
