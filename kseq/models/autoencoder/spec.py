"""Spec classes of the autoencoder family (`model.type: autoencoder`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kseq.registry import Registry
from kseq.spec.common import ModelSpec
from kseq.spec.fields import Variant, option, variant

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "linear"]


class StackSpec(Variant):
    """Base of encoder/decoder stacks, chosen by `type:`."""

    variants = Registry("stack type")
    rank: int  # the sample rank the stack reads: 1 for (D,), 2 for (T, C), 3 for (H, W, C)


@variant("dense")
class DenseStackSpec(StackSpec):
    """Fully connected layers."""

    units: list[int] = option([64], min=1, max=1 << 20, nonempty=True, help="units of each layer")
    activation: Activation = "relu"
    dropout: float = option(0.0, min=0.0, below=1.0)
    batch_norm: bool = False
    rank = 1


@dataclass
class _ConvStack(StackSpec):
    type: str = ""
    filters: list[int] = option(
        [16, 32], min=1, max=16_384, nonempty=True, help="filters of each layer"
    )
    kernel_size: int = option(3, min=1, max=1024)
    strides: int = option(2, min=1, max=1024, help="downsampling factor of each layer")
    activation: Activation = "relu"
    dropout: float = option(0.0, min=0.0, below=1.0)
    batch_norm: bool = False


@variant("conv1d")
class Conv1DStackSpec(_ConvStack):
    """1-D convolutions over (T, C) samples (signals, sequences of feature vectors)."""

    rank = 2


@variant("conv2d")
class Conv2DStackSpec(_ConvStack):
    """2-D convolutions over (H, W, C) samples (images)."""

    rank = 3


class NoiseSpec(Variant):
    """Input corruption for denoising autoencoders (training only)."""

    variants = Registry("noise type")


@variant("gaussian")
class GaussianNoiseSpec(NoiseSpec):
    """Add N(0, stddev²) noise to the inputs."""

    stddev: float = option(0.1, above=0.0)


@variant("dropout")
class DropoutNoiseSpec(NoiseSpec):
    """Zero a fraction of the input values."""

    rate: float = option(0.2, above=0.0, below=1.0)


@dataclass
class SyntheticArraySpec:
    """Built-in synthetic data: smooth, low-dimensional structure an autoencoder can learn.

    Rank-1 shapes give vectors from a low-rank latent model, rank-2 (T, C) give sums of
    sinusoids, rank-3 (H, W, C) give images of Gaussian blobs.
    """

    shape: list[int] = option([32], min=1, max=1 << 20, nonempty=True, help="shape of one sample")
    samples: int = option(2048, min=8, max=10_000_000)
    latent_dim: int = option(4, min=1, max=4096, help="number of hidden factors")
    noise: float = option(0.02, min=0.0)
    seed: int = option(0, min=0, max=2**32 - 1)

    def check(self, checker, path):
        if len(self.shape) > 3:
            checker.fail(f"{path}.shape", "too many dimensions", "1 to 3 dimensions", self.shape)


@dataclass
class ArrayDataSpec:
    """Arrays from .npy, .npz or .csv files, or the built-in synthetic set when `train` is null."""

    train: str | None = option(None, is_path=True, help=".npy, .npz or .csv; null = synthetic")
    validation: str | None = option(None, is_path=True, help="held-out file; null = split")
    validation_split: float = option(0.1, above=0.0, below=1.0)
    npz_key: str | None = option(None, help="array name inside .npz files (default: the first)")
    sample_shape: list[int] | None = option(
        None, min=1, max=1 << 20, help="reshape each row to this shape"
    )
    synthetic: SyntheticArraySpec = option(SyntheticArraySpec())

    def check(self, checker, path):
        if self.validation and not self.train:
            checker.fail(f"{path}.validation", "set without data.train", "data.train to be set")
        for key in ("train", "validation"):
            value = getattr(self, key)
            if value and not value.endswith((".npy", ".npz", ".csv")):
                checker.fail(f"{path}.{key}", "unsupported file type", ".npy, .npz or .csv", value)

    def sample_rank(self) -> int | None:
        if self.sample_shape is not None:
            return len(self.sample_shape)
        return len(self.synthetic.shape) if self.train is None else None


@variant("autoencoder")
class AutoencoderSpec(ModelSpec):
    """Dense or convolutional autoencoder; optionally denoising and/or variational."""

    family = "kseq.models.autoencoder.family:AutoencoderFamily"
    parts = ("full", "encoder", "decoder")
    encoder: StackSpec = option(DenseStackSpec(), help="encoder stack")
    bottleneck: int = option(8, min=1, max=1 << 20, help="size of the code (latent vector)")
    decoder: StackSpec | None = option(None, help="decoder stack; null = mirror the encoder")
    variational: bool = option(False, help="VAE: sample the code, add a KL term to the loss")
    kl_weight: float = option(1.0, min=0.0, help="weight of the KL term (variational)")
    noise: NoiseSpec | None = option(None, help="input corruption while training (denoising)")
    output_activation: Literal["linear", "sigmoid", "tanh"] = "linear"

    data_spec = ArrayDataSpec
    default_loss = "mse"

    def check(self, checker, path):
        if self.decoder is not None and self.decoder.type != self.encoder.type:
            checker.fail(
                f"{path}.decoder.type",
                "decoder type differs from the encoder's",
                repr(self.encoder.type),
                repr(self.decoder.type),
            )

    def check_with_data(self, checker, data: ArrayDataSpec):
        rank = data.sample_rank()
        if rank is not None and rank != self.encoder.rank:
            where = "data.sample_shape" if data.sample_shape else "data.synthetic.shape"
            checker.fail(
                where,
                f"a {self.encoder.type} encoder reads samples of rank {self.encoder.rank}",
                f"{self.encoder.rank} dimensions",
                f"{rank}",
            )
