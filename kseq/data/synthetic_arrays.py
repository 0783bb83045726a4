"""Built-in synthetic arrays with low-dimensional structure, generated from a seed."""

from __future__ import annotations

import numpy as np


def _vectors(rng, n, shape, latent_dim):
    (size,) = shape
    codes = rng.standard_normal((n, latent_dim))
    mixing = rng.standard_normal((latent_dim, size)) / np.sqrt(latent_dim)
    return np.tanh(codes @ mixing)


def _signals(rng, n, shape, latent_dim):
    steps, channels = shape
    t = np.arange(steps)[None, :, None] / steps  # (1, T, 1)
    out = np.zeros((n, steps, channels))
    for _ in range(latent_dim):
        amplitude = rng.uniform(0.2, 1.0, (n, 1, 1)) / latent_dim
        frequency = rng.integers(1, 5, (n, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
        out += amplitude * np.sin(2 * np.pi * frequency * t + phase)
    return out


def _images(rng, n, shape, latent_dim):
    height, width, channels = shape
    ys = np.arange(height)[None, :, None, None]
    xs = np.arange(width)[None, None, :, None]
    out = np.zeros((n, height, width, channels))
    for _ in range(latent_dim):
        cy = rng.uniform(0, height, (n, 1, 1, 1))
        cx = rng.uniform(0, width, (n, 1, 1, 1))
        sigma = rng.uniform(1.0, max(1.5, min(height, width) / 4), (n, 1, 1, 1))
        colour = rng.uniform(0.3, 1.0, (n, 1, 1, channels))
        out += colour * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
    return np.clip(out, 0.0, 1.0)


_GENERATORS = {1: _vectors, 2: _signals, 3: _images}


def synthetic_arrays(shape, samples: int, latent_dim: int, noise: float, seed: int) -> np.ndarray:
    """(samples, *shape) float32: vectors (rank 1), signals (T, C) or images (H, W, C)."""
    rng = np.random.default_rng(seed)
    clean = _GENERATORS[len(shape)](rng, samples, tuple(shape), latent_dim)
    return (clean + noise * rng.standard_normal(clean.shape)).astype(np.float32)
