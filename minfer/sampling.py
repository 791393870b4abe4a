"""Stage 7, sample: logits -> the next token (lesson 06).

The next token is drawn from `distribution(logits, params, history)`, built by one small step
after another, in the order Hugging Face transformers applies its logits processors in
`generate` (transformers 5.24, `generation/utils.py`, `GenerationMixin._get_logits_processor`:
the repetition penalty is appended with the other processors, line 1477; only when sampling,
temperature, top-k, top-p and min-p follow, lines 1619-1633; `_sample` then takes the softmax
and draws, or the argmax when greedy, lines 3275-3279):

    logits [n_vocab]
      -> apply_penalties    repetition (HF), then frequency and presence (OpenAI)
      -> (greedy: all the mass on the argmax here; the rest is skipped)
      -> apply_temperature  divide by T
      -> top_k_filter       keep the k largest
      -> top_p_filter       keep the smallest set of tokens holding probability top_p
      -> min_p_filter       keep tokens at least min_p times as likely as the best one
      -> softmax            probabilities [n_vocab], float64

Each filter sets the tokens it removes to -inf, so they get probability exactly 0 and every
later step sees the distribution the earlier ones left. HF has no frequency or presence
penalty; they sit at the repetition penalty's stage, after it, as vLLM orders them.

`history` is every token so far: the prompt and the tokens generated, in order. (OpenAI and
vLLM count only generated tokens for the frequency and presence penalties; pass only those if
that is what you want.)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from minfer.errors import InvalidInputError, NonFiniteError
from minfer.layers import softmax


def _is_number(value) -> bool:
    """An int or float (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _require(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise InvalidInputError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen from the logits. The defaults turn every option off: greedy.

    Example:
        >>> SamplingParams()                      # greedy: always the most likely token
        >>> SamplingParams(temperature=0.8, top_p=0.95, seed=0)
    """

    # divides the logits: 0 = greedy (argmax); 1 = the model's own distribution; > 1 flatter,
    # < 1 sharper. Finite, >= 0.
    temperature: float = 0.0
    # keep only the k most likely tokens. 0 = off; an integer >= 0.
    top_k: int = 0
    # nucleus: keep the most likely tokens until they hold this much probability. 1 = off; in (0, 1].
    top_p: float = 1.0
    # keep tokens whose probability is at least min_p times the best token's. 0 = off; in [0, 1).
    min_p: float = 0.0
    # HF/CTRL: a token already in the history has its logit divided by this (multiplied when
    # negative), so > 1 discourages repeats and < 1 encourages them. 1 = off; finite, > 0.
    repetition_penalty: float = 1.0
    # OpenAI: subtracted from a token's logit once per time it occurs in the history.
    # 0 = off; in [-2, 2] (OpenAI's range; negative encourages repeats).
    frequency_penalty: float = 0.0
    # OpenAI: subtracted once from the logit of every token that occurs in the history.
    # 0 = off; in [-2, 2].
    presence_penalty: float = 0.0
    # seeds the random draws so a run repeats exactly. None (fresh randomness) or an integer >= 0.
    seed: int | None = None

    def __post_init__(self) -> None:
        t, k, p, m = self.temperature, self.top_k, self.top_p, self.min_p
        _require(
            _is_number(t) and math.isfinite(t) and t >= 0,
            "temperature",
            t,
            "a finite number >= 0 (0 = greedy, 1 = the model's own distribution)",
        )
        _require(_is_int(k) and k >= 0, "top_k", k, "an integer >= 0 (0 = off)")
        _require(_is_number(p) and 0 < p <= 1, "top_p", p, "a number in (0, 1] (1 = off)")
        _require(_is_number(m) and 0 <= m < 1, "min_p", m, "a number in [0, 1) (0 = off)")
        r = self.repetition_penalty
        _require(
            _is_number(r) and math.isfinite(r) and r > 0,
            "repetition_penalty",
            r,
            "a finite number > 0 (1 = off, > 1 discourages repeats)",
        )
        for name in ("frequency_penalty", "presence_penalty"):
            v = getattr(self, name)
            _require(_is_number(v) and -2 <= v <= 2, name, v, "a number in [-2, 2] (0 = off; OpenAI's range)")
        s = self.seed
        _require(s is None or (_is_int(s) and s >= 0), "seed", s, "None or an integer >= 0")

    @property
    def greedy(self) -> bool:
        """Temperature 0: take the most likely token, no randomness."""
        return self.temperature == 0

    @property
    def penalized(self) -> bool:
        """Whether any penalty reads the history (otherwise it is skipped)."""
        return self.repetition_penalty != 1 or self.frequency_penalty != 0 or self.presence_penalty != 0


def apply_penalties(
    logits: np.ndarray,
    history: Sequence[int] | np.ndarray,
    repetition_penalty: float = 1.0,
    frequency_penalty: float = 0.0,
    presence_penalty: float = 0.0,
) -> np.ndarray:
    """Push down (or, with values on the other side, up) the tokens already in `history`.

    logits: [n_vocab], history: [n_hist] token ids -> [n_vocab]. First HF's repetition penalty:
    each token seen at least once has its logit divided by the penalty if >= 0, multiplied if
    < 0 (so > 1 always lowers it; once per token, however often it occurs). Then OpenAI's:
    logit -= frequency_penalty * count + presence_penalty * (count > 0).

    Example:
        >>> apply_penalties(np.array([2.0, -2.0, 1.0]), [0, 1, 1], repetition_penalty=2.0)
        array([ 1., -4.,  1.])
    """
    counts = np.bincount(np.asarray(history, dtype=np.int64), minlength=len(logits))  # [n_vocab]
    seen = counts > 0  # [n_vocab]
    penalized = np.where(logits < 0, logits * repetition_penalty, logits / repetition_penalty)  # [n_vocab]
    logits = np.where(seen, penalized, logits)  # [n_vocab]
    return logits - frequency_penalty * counts - presence_penalty * seen  # [n_vocab]


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Divide by the temperature (> 0): below 1 sharpens the distribution, above 1 flattens it.

    logits: [n_vocab] -> [n_vocab]. The largest logit is subtracted first: softmax does not
    change, and every result is <= 0, so even T = 1e-300 cannot overflow to +inf (and inf - inf
    to NaN). Results below the float64 range become -inf, as -inf logits stay: probability 0,
    which is what they would round to anyway.
    """
    with np.errstate(over="ignore"):  # overflow can only go to -inf here, and that is intended
        return (logits - logits.max()) / temperature  # [n_vocab], max 0


def top_k_filter(logits: np.ndarray, top_k: int) -> np.ndarray:
    """Keep the `top_k` largest logits, set the others to -inf. 0 = off. logits: [n_vocab] -> [n_vocab]

    As in HF's TopKLogitsWarper, a token tied with the k-th largest is kept too.
    """
    if top_k == 0 or top_k >= len(logits):
        return logits
    kth = np.partition(logits, -top_k)[-top_k]  # the k-th largest logit
    return np.where(logits >= kth, logits, -np.inf)  # [n_vocab]


def top_p_filter(logits: np.ndarray, top_p: float) -> np.ndarray:
    """Nucleus: keep the most likely tokens whose probabilities add up to `top_p`. 1 = off.

    logits: [n_vocab] -> [n_vocab]. HF's TopPLogitsWarper exactly: sort from least to most
    likely, remove every token whose cumulative probability is <= 1 - top_p, and always keep the
    most likely one. (The stable sort removes the lower id first between two equal logits.)
    """
    if top_p >= 1:
        return logits
    order = np.argsort(logits, kind="stable")  # [n_vocab] token ids, least likely first
    cumulative = np.cumsum(softmax(logits)[order])  # [n_vocab]
    remove_sorted = cumulative <= 1 - top_p  # [n_vocab]
    remove_sorted[-1] = False  # the most likely token always stays
    remove = np.empty_like(remove_sorted)
    remove[order] = remove_sorted  # back to token order
    return np.where(remove, -np.inf, logits)  # [n_vocab]


def min_p_filter(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Keep tokens at least `min_p` times as likely as the most likely one. 0 = off.

    logits: [n_vocab] -> [n_vocab]. HF's MinPLogitsWarper: the probabilities are those of the
    logits it is given (after temperature, top-k and top-p); the best token always stays.
    """
    if min_p == 0:
        return logits
    probs = softmax(logits)  # [n_vocab]
    return np.where(probs >= min_p * probs.max(), logits, -np.inf)  # [n_vocab]


def _checked(logits: np.ndarray, history: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """logits as float64 [n_vocab] and history as int64 [n_hist], or an error saying what is wrong."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or len(logits) == 0:
        raise InvalidInputError(f"logits must be one non-empty row [n_vocab], got shape {logits.shape}")
    if not (logits < np.inf).all() or logits.max() == -np.inf:  # NaN < inf is False too
        raise NonFiniteError(
            "logits must have no NaN or +inf and at least one finite value "
            "(-inf marks a token that can never be drawn); NaN from a model "
            "means its weights or activations overflowed"
        )
    hist = np.asarray(history, dtype=np.int64).reshape(-1)  # [n_hist]
    if len(hist) and (hist.min() < 0 or hist.max() >= len(logits)):
        raise InvalidInputError(
            f"history holds token ids outside [0, {len(logits)}): min {hist.min()}, max {hist.max()}"
        )
    return logits, hist


def distribution(logits: np.ndarray, params: SamplingParams, history: Sequence[int] = ()) -> np.ndarray:
    """The exact probabilities the next token is drawn from. logits: [n_vocab] -> [n_vocab] float64

    `history` is every token so far, prompt and generated (only the penalties read it). The
    steps run in HF's order (see the module docstring). Greedy (temperature 0) puts all the mass
    on the argmax of the penalized logits, the first one on ties, as HF's greedy search does.

    Example:
        >>> distribution(np.array([1.0, 2.0, 3.0]), SamplingParams(temperature=1.0, top_k=2))
        array([0.        , 0.26894142, 0.73105858])
    """
    logits, hist = _checked(logits, history)  # [n_vocab] float64, [n_hist]
    if params.penalized:
        logits = apply_penalties(
            logits, hist, params.repetition_penalty, params.frequency_penalty, params.presence_penalty
        )  # [n_vocab]
    if params.greedy:
        probs = np.zeros_like(logits)  # [n_vocab]
        probs[int(np.argmax(logits))] = 1.0
        return probs
    logits = apply_temperature(logits, params.temperature)  # [n_vocab]
    logits = top_k_filter(logits, params.top_k)  # [n_vocab]
    logits = top_p_filter(logits, params.top_p)  # [n_vocab]
    logits = min_p_filter(logits, params.min_p)  # [n_vocab]
    return softmax(logits)  # [n_vocab]


def inverse_cdf(probs: np.ndarray, u: float) -> int:
    """The token whose slice of [0, total) holds u * total, for u in [0, 1). probs: [n_vocab] -> int

    Lay the tokens' probabilities end to end and see where u falls. Only tokens with probability
    > 0 get a slice, and `side="right"` never picks an empty slice (a rounding error can make a
    tiny probability's slice empty), so a token with probability 0 cannot come out, even when
    u * total lands exactly on an edge. If rounding puts u * total on the end, the last slice
    takes it.
    """
    support = np.flatnonzero(probs)  # [n_support] ids with probability > 0
    cdf = np.cumsum(probs[support])  # [n_support] right edge of each slice
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))  # first slice whose edge is > u * total
    return int(support[min(i, len(support) - 1)])


def sample(
    logits: np.ndarray, params: SamplingParams, history: Sequence[int] = (), rng: np.random.Generator | None = None
) -> int:
    """Draw one token id from `distribution(logits, params, history)`. logits: [n_vocab] -> int

    Greedy returns the argmax and leaves `rng` untouched. Otherwise one `rng.random()` is
    inverted through the CDF (`inverse_cdf`); without an rng, `params.seed` seeds a new one. The
    same seed gives the same tokens on every run and platform (NumPy's PCG64 stream is fixed),
    barring a draw within a rounding error of a slice edge.

    Example:
        >>> sample(logits, SamplingParams(temperature=0.8, top_p=0.95, seed=0), history=ids)
    """
    if params.greedy and not params.penalized:  # the decode loop's common case: no float64 copy
        token = int(np.argmax(logits))  # argmax lands on a NaN or +inf if there is one
        if not math.isfinite(logits[token]):
            _checked(logits, ())  # raises NonFiniteError
        return token
    probs = distribution(logits, params, history)  # [n_vocab]
    if params.greedy:
        return int(np.argmax(probs))  # the one token with probability 1
    rng = rng if rng is not None else np.random.default_rng(params.seed)
    return inverse_cdf(probs, rng.random())
