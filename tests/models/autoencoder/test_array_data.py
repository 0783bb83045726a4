"""Array data files: formats, and clear errors for empty, NaN, non-numeric and mis-shaped data."""

from __future__ import annotations

import numpy as np
import pytest

import kseq
from kseq.data.arrays import read_array, reshape_samples
from kseq.data.synthetic_arrays import synthetic_arrays
from kseq.models.family import family_for


def test_npy_npz_csv_read_the_same_values(tmp_path):
    values = np.arange(12, dtype="float32").reshape(4, 3) / 7
    np.save(tmp_path / "a.npy", values)
    np.savez(tmp_path / "a.npz", first=values, second=values * 2)
    (tmp_path / "a.csv").write_text(
        "x,y,z\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in values) + "\n"
    )
    np.testing.assert_array_equal(read_array(tmp_path / "a.npy"), values)
    np.testing.assert_array_equal(read_array(tmp_path / "a.npz"), values)
    np.testing.assert_array_equal(read_array(tmp_path / "a.npz", "second"), values * 2)
    np.testing.assert_allclose(read_array(tmp_path / "a.csv"), values, rtol=1e-6)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.npy", b"", "data file is empty"),
        ("bad.csv", b"1,2\n3,oops\n", "bad.csv:2: not a number: 'oops'"),
        ("ragged.csv", b"1,2\n3\n", "ragged.csv:2: row has 1 columns"),
        ("junk.npy", b"not numpy at all", "cannot read data"),
    ],
)
def test_bad_files_get_one_clear_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(kseq.KseqError, match=message) as caught:
        read_array(tmp_path / name)
    assert "\n" not in str(caught.value)


def test_nan_and_missing_keys_are_located(tmp_path):
    values = np.ones((3, 2), "float32")
    values[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", values)
    with pytest.raises(
        kseq.KseqError, match=r"NaN or infinity \(first at sample 2, index \(1,\)\)"
    ):
        read_array(tmp_path / "nan.npy")
    np.savez(tmp_path / "k.npz", a=values)
    with pytest.raises(kseq.KseqError, match="no array 'b'; the archive has a"):
        read_array(tmp_path / "k.npz", "b")
    with pytest.raises(kseq.KseqError, match="cannot be reshaped"):
        reshape_samples(np.ones((2, 6)), [4, 2], "x.npy")


def test_user_files_train_with_validation_and_rank_checked(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(40, 8)).astype("float32"))
    np.save(tmp_path / "val.npy", rng.normal(size=(10, 8)).astype("float32"))
    np.save(tmp_path / "images.npy", rng.normal(size=(10, 4, 4, 1)).astype("float32"))
    (tmp_path / "spec.yaml").write_text(
        "model: {type: autoencoder, encoder: {type: dense, units: [4]}, bottleneck: 2}\n"
        "data: {train: train.npy, validation: val.npy}\n"
    )
    spec = kseq.load_spec(tmp_path / "spec.yaml")
    data = family_for(spec).load_data(spec)
    assert data.info.sample_shape == [8]
    assert len(data.samples["inputs"]) == 10
    images = f"data.train={tmp_path / 'images.npy'}"
    spec = kseq.load_spec(tmp_path / "spec.yaml", [images])
    with pytest.raises(kseq.KseqError, match=r"val.npy: samples have shape \(8,\); the training"):
        family_for(spec).load_data(spec)
    spec = kseq.load_spec(tmp_path / "spec.yaml", [images, "data.validation=null"])
    with pytest.raises(kseq.KseqError, match="dense encoder reads samples of rank 1"):
        family_for(spec).load_data(spec)


def test_synthetic_data_is_deterministic_and_structured():
    a = synthetic_arrays([16], 200, 2, 0.0, seed=3)
    assert np.array_equal(a, synthetic_arrays([16], 200, 2, 0.0, seed=3))
    assert not np.array_equal(a, synthetic_arrays([16], 200, 2, 0.0, seed=4))
    # two latent factors through tanh: the top 2 principal components explain most variance
    singular = np.linalg.svd(a - a.mean(0), compute_uv=False)
    assert (singular[:2] ** 2).sum() / (singular**2).sum() > 0.8
    images = synthetic_arrays([8, 8, 1], 10, 3, 0.0, seed=0)
    assert images.shape == (10, 8, 8, 1) and images.min() >= 0 and images.max() <= 1
