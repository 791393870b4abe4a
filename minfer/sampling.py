"""Stage 7, sample: logits -> the next token (lesson 05 grows this file).

Today: greedy (temperature 0) and plain temperature sampling. Top-k, top-p, min-p and the
penalties plug in here as more fields of `SamplingParams` and more steps in `distribution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minfer.errors import InvalidInputError
from minfer.layers import softmax


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen from the logits.

    Example:
        >>> SamplingParams()                      # greedy: always the most likely token
        >>> SamplingParams(temperature=0.8, seed=0)
    """

    temperature: float = 0.0  # 0 = greedy (argmax); 1 = the model's own distribution; >1 flatter
    seed: int | None = None  # seeds the random draws so a run repeats exactly

    def __post_init__(self) -> None:
        t = self.temperature
        if not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise InvalidInputError(f"temperature={t!r} must be a finite number >= 0 (0 = greedy)")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise InvalidInputError(f"seed={self.seed!r} must be a non-negative integer or None")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def distribution(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The probabilities the next token is drawn from. logits: [n_vocab] -> [n_vocab]

    Greedy puts all the mass on the argmax (the first one, on ties).
    """
    if params.greedy:
        probs = np.zeros_like(logits, dtype=np.float64)  # [n_vocab]
        probs[int(np.argmax(logits))] = 1.0
        return probs
    return softmax(logits.astype(np.float64) / params.temperature)  # [n_vocab]


def sample(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator | None = None) -> int:
    """Draw one token id from `distribution(logits, params)`. logits: [n_vocab] -> int"""
    if params.greedy:
        return int(np.argmax(logits))
    rng = rng if rng is not None else np.random.default_rng(params.seed)
    cdf = np.cumsum(distribution(logits, params))  # [n_vocab]
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))
