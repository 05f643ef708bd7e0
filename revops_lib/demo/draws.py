"""Random draws for the demo company: independent seeded streams, log-normal values, one category per
row, and rounding of drawn amounts."""

from __future__ import annotations

import numpy as np


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(key))))


def _lognormal(rng, median, sigma, size=None):
    return np.exp(np.log(median) + sigma * rng.standard_normal(size))


def _choice_rows(rng, probs: np.ndarray) -> np.ndarray:
    """One category per row of a (n, k) matrix of probabilities."""
    if len(probs) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (u >= cum).sum(axis=1).astype(np.int64)


def _round_to(x, step):
    return np.round(np.asarray(x, dtype=float) / step) * step

