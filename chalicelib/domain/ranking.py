"""From model scores to ranked labels: pure functions shared by every labeller."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chalicelib.domain.models import Label


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def top_labels(probabilities: np.ndarray, names: Sequence[str], k: int) -> tuple[Label, ...]:
    """The k best classes of one row of probabilities, best first."""
    k = min(k, probabilities.shape[-1])
    best = np.argpartition(-probabilities, k - 1)[:k]
    best = best[np.argsort(-probabilities[best], kind="stable")]
    return tuple(Label(name=names[i], score=round(float(probabilities[i]), 6)) for i in best)
