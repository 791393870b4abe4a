"""The hidden checks: each runs the student's function on several shapes with a seeded RNG and
compares it with minfer's own function (the reference), within a tolerance.

A check that fails says why in a hint. Where a common mistake can be recognised (the mask
left out, the unbiased variance, the cache written one slot too far, ...), the student's
output is compared with what that mistake would give, and the hint names the mistake.

Every check is a function of the student's functions (a dict name -> function) that returns
nothing or raises `_Fail(hint)`; `run_checks` turns them into `CheckResult`s.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minfer.attention import causal_attention as ref_attention
from minfer.attention import causal_mask
from minfer.config import Config
from minfer.kvcache import KVCache
from minfer.layers import layer_norm as ref_layer_norm
from minfer.layers import softmax as ref_softmax
from minfer.model import Model
from minfer.perf.counts import Arch, decode_cost
from minfer.rope import apply_rope as ref_rope
from minfer.rope import inverse_frequencies, rope_tables, rotate_half
from minfer.sampling import top_k_filter as ref_top_k
from minfer.sampling import top_p_filter as ref_top_p
from minfer.serving.engine import Engine
from minfer.serving.paged import PagedKVCache
from minfer.serving.paged import gather as ref_gather
from minfer.serving.paged import slot_of as ref_slot_of
from minfer.serving.paged import write as ref_paged_write
from minfer.weights import random_weights

RTOL, ATOL = 1e-4, 1e-5  # float32 arithmetic done in another order (or in float64) stays within this
COUNT_RTOL = 0.02  # exercise 05 counts main terms only; minfer's full count adds ~0.2-1.2% here


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: its name, whether it passed, and what to fix when it did not."""

    name: str
    passed: bool
    hint: str = ""


class _Fail(Exception):
    """A check failed; the message is the hint shown to the student."""


Funcs = dict[str, Callable]
Check = tuple[str, Callable[[Funcs], None]]


def run_checks(checks: list[Check], funcs: Funcs) -> list[CheckResult]:
    """Run every check; a failure in one never stops the others."""
    results = []
    for name, check in checks:
        try:
            check(funcs)
        except _Fail as fail:
            results.append(CheckResult(name, False, str(fail)))
        else:
            results.append(CheckResult(name, True))
    return results


# ---- calling the student's code and comparing its output --------------------------------------


def _fmt(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def _call(fn: Callable, *args, where: str = "", mutable: tuple[int, ...] = ()):
    """fn(*args) with the student's errors turned into hints. Arguments not in `mutable` must
    come back unchanged (a filter that writes -inf into its input corrupts the caller's logits)."""
    saved = copy.deepcopy(args)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = fn(*args)
    except NotImplementedError as e:
        raise _Fail(f"not written yet: {fn.__name__} raises NotImplementedError ({e})") from None
    except Exception as e:  # the student's bug, shown as it is
        raise _Fail(f"{fn.__name__} raised {type(e).__name__}: {e}{where}") from None
    for i, (arg, before) in enumerate(zip(args, saved)):
        if i not in mutable and isinstance(arg, np.ndarray) and not np.array_equal(arg, before, equal_nan=True):
            raise _Fail(
                f"{fn.__name__} modified its input (argument {i + 1}) in place{where}: "
                "compute a new array instead (np.where(...), x - m, ...)"
            )
    return out


def _as_array(got, fn_name: str, want: np.ndarray, where: str) -> np.ndarray:
    if got is None:
        raise _Fail(f"{fn_name} returned None{where}: did you forget `return`?")
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Fail(f"{fn_name} returned a {type(got).__name__}{where}, expected an array") from None
    if got.shape != want.shape:
        raise _Fail(f"expected shape {_fmt(want.shape)}, got {_fmt(got.shape)}{where}")
    return got


def _close(a: np.ndarray, b: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _compare(
    got,
    want: np.ndarray,
    fn_name: str,
    where: str,
    mistakes: list[tuple[Callable[[], np.ndarray], str]] = (),
    nan_hint: str = "",
    atol: float = ATOL,
) -> None:
    """Fail unless `got` equals `want`, with the hint of the first mistake that reproduces it."""
    got = _as_array(got, fn_name, want, where)
    if _close(got, want, atol=atol):
        return
    if nan_hint and not np.isfinite(got).all() and np.isfinite(want).all():
        raise _Fail(nan_hint + where)
    for mistaken, hint in mistakes:
        try:
            with np.errstate(all="ignore"):
                alt = np.asarray(mistaken(), dtype=np.float64)
        except Exception:  # a mistake that cannot happen on these shapes
            continue
        if _close(got, alt, atol=atol):
            raise _Fail(hint + where)
    with np.errstate(invalid="ignore"):
        err = np.abs(got - want)
    err = np.where(np.isnan(err) | (np.isinf(got) != np.isinf(want)), np.inf, np.nan_to_num(err))
    i = np.unravel_index(int(np.argmax(err)), err.shape)
    raise _Fail(
        f"values differ from the reference{where}: at index {list(map(int, i))} "
        f"got {got[i]:.6g}, expected {want[i]:.6g}"
    )


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ---- 01: softmax and causal attention ----------------------------------------------------------


def _check_softmax_values(f: Funcs) -> None:
    rng = _rng(1)
    masked = _randn(rng, 4, 6)
    masked[np.arange(4), [1, 5, 0, 2]] = -np.inf  # masked entries: probability exactly 0
    for x in [_randn(rng, 7), _randn(rng, 3, 5), _randn(rng, 2, 3, 11) * 3, masked]:
        where = f" (x {_fmt(x.shape)})"
        got = _call(f["softmax"], x.copy(), where=where)
        got = _as_array(got, "softmax", x, where)
        sums = got.sum(axis=-1)
        if np.isfinite(got).all() and not np.allclose(sums, 1, atol=1e-3):
            if got.ndim > 1 and abs(got.sum() - 1) < 1e-3:
                raise _Fail(
                    f"normalised over the whole array: each row (the last axis) must sum to 1; "
                    f"use axis=-1, keepdims=True{where}"
                )
            if got.ndim > 1 and np.allclose(got.sum(axis=0), 1, atol=1e-3):
                raise _Fail(
                    f"normalised over the wrong axis: each row (the last axis) must sum to 1; "
                    f"use axis=-1, keepdims=True{where}"
                )
            raise _Fail(
                f"the rows do not sum to 1 (first row: {sums.flat[0]:.4g}): divide exp by its "
                f"sum over the last axis{where}"
            )
        _compare(got, ref_softmax(x), "softmax", where)


def _check_softmax_stable(f: Funcs) -> None:
    rng = _rng(2)
    for x in [_randn(rng, 3, 8) + 1000, _randn(rng, 2, 5) * 50 - 1000, np.array([1e4, 0.0, -1e4], np.float32)]:
        where = f" (x {_fmt(x.shape)} with values near {float(x.flat[0]):.0f})"
        got = _call(f["softmax"], x.copy(), where=where)
        _compare(
            got,
            ref_softmax(x),
            "softmax",
            where,
            nan_hint=(
                "NaN or inf on large logits: exp overflows (exp(1000) = inf) or underflows to 0/0; "
                "subtract the row max first (x - x.max(axis=-1, keepdims=True)): softmax does not change"
            ),
        )


def _softmax_queries(scores):
    """The softmax over axis -2 (the queries) instead of the keys: a mistake to recognise."""
    e = np.exp(scores - scores.max(axis=-2, keepdims=True))
    return e / e.sum(axis=-2, keepdims=True)


def _attention_mistakes(q, k, v) -> list[tuple[Callable[[], np.ndarray], str]]:
    n_q, n_k, d_head = q.shape[1], k.shape[1], q.shape[2]
    scores = q @ k.transpose(0, 2, 1) / np.float32(math.sqrt(d_head))  # [n_head, n_q, n_k]
    top_left = np.where(np.arange(n_k)[None, :] > np.arange(n_q)[:, None], -np.inf, 0.0)  # [n_q, n_k]
    return [
        (
            lambda: ref_softmax(scores) @ v,
            "looks like the causal mask is missing: a query must not "
            "see the keys after its own position (set those scores to -inf)",
        ),
        (
            lambda: ref_softmax(scores + top_left) @ v,
            "the mask is aligned to the first positions: the n_q queries are the LAST n_q of the n_k "
            "positions, so query i sits at n_k - n_q + i and sees keys j <= n_k - n_q + i",
        ),
        (
            lambda: ref_attention(q * np.float32(math.sqrt(d_head)), k, v),
            "the scores are not scaled: divide q k^T by sqrt(d_head)",
        ),
        (
            lambda: ref_attention(q / np.float32(math.sqrt(d_head)), k, v),
            "the scores are divided by d_head: divide by sqrt(d_head)",
        ),
        (
            lambda: _softmax_queries(scores + causal_mask(n_q, n_k)) @ v,
            "the softmax runs over the wrong axis: normalise over the keys (the last axis)",
        ),
    ]


def _attention_cases(shapes: list[tuple[int, int, int, int]], seed: int, scale: float = 1.0):
    """q, k, v for each (n_head, n_q, n_k, d_head)."""
    rng = _rng(seed)
    for n_head, n_q, n_k, d_head in shapes:
        yield (
            _randn(rng, n_head, n_q, d_head) * np.float32(scale),
            _randn(rng, n_head, n_k, d_head),
            _randn(rng, n_head, n_k, d_head),
        )


def _attention_check(shapes, seed: int, scale: float = 1.0, nan_hint: str = "") -> Callable[[Funcs], None]:
    def check(f: Funcs) -> None:
        for q, k, v in _attention_cases(shapes, seed, scale):
            where = f" (q {_fmt(q.shape)}, k and v {_fmt(k.shape)})"
            got = _call(f["causal_attention"], q.copy(), k.copy(), v.copy(), where=where)
            _compare(
                got, ref_attention(q, k, v), "causal_attention", where, _attention_mistakes(q, k, v), nan_hint=nan_hint
            )

    return check


# ---- 02: layer norm ----------------------------------------------------------------------------


def _layer_norm_mistakes(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return [
        (
            lambda: (x - mean) / np.sqrt(x.var(axis=-1, ddof=1, keepdims=True) + eps) * w + b,
            "this is the unbiased variance: divide by n_embd, not n_embd - 1 (x.var(axis=-1), as PyTorch)",
        ),
        (
            lambda: (x - mean) / (np.sqrt(var) + eps) * w + b,
            "eps is added to the standard deviation: add it to the variance, inside the sqrt",
        ),
        (lambda: (x - mean) / np.sqrt(var) * w + b, "eps is missing: divide by sqrt(var + eps)"),
        (
            lambda: (x - mean) / np.sqrt(var + 1e-5) * w + b,
            "the eps argument is ignored: use the eps passed in, not a constant",
        ),
        (
            lambda: (x - mean) / np.sqrt(var + eps) * b + w,
            "weight and bias are swapped: scale by weight, then add bias",
        ),
        (lambda: (x - mean) / np.sqrt(var + eps), "weight and bias are not applied: * weight + bias"),
        (
            lambda: (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) * w + b,
            "normalised over the wrong axis: mean and variance are over the last axis (each row)",
        ),
    ]


def _layer_norm_cases(seed: int, specials: bool):
    rng = _rng(seed)
    if not specials:
        for n_seq, n_embd in [(4, 16), (3, 20), (1, 768), (5, 7)]:
            yield (_randn(rng, n_seq, n_embd) * 2 + 0.5, _randn(rng, n_embd), _randn(rng, n_embd), 1e-5)
        return
    flat = np.full((2, 12), 3.0, np.float32)  # constant rows: variance 0
    tiny = _randn(rng, 3, 12) * np.float32(1e-3)  # variance ~1e-6, below eps
    yield flat, _randn(rng, 12), _randn(rng, 12), 1e-5
    yield tiny, _randn(rng, 12), _randn(rng, 12), 1e-5
    yield _randn(rng, 3, 12) * np.float32(0.05), _randn(rng, 12), _randn(rng, 12), 1e-2


def _layer_norm_check(seed: int, specials: bool) -> Callable[[Funcs], None]:
    def check(f: Funcs) -> None:
        for x, w, b, eps in _layer_norm_cases(seed, specials):
            where = f" (x {_fmt(x.shape)}, eps={eps:g})"
            got = _call(f["layer_norm"], x.copy(), w.copy(), b.copy(), eps, where=where)
            x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))  # the mistakes in float64
            _compare(
                got,
                ref_layer_norm(x, w, b, eps),
                "layer_norm",
                where,
                _layer_norm_mistakes(x64, w64, b64, eps),
                atol=1e-4,
                nan_hint="NaN or inf: a constant row has variance 0; add eps to the variance before the sqrt",
            )

    return check


# ---- 03: KV cache ------------------------------------------------------------------------------


def _ref_append(k_cache, v_cache, length, k_new, v_new):
    """minfer's KVCache.update on a one-layer cache -> (k_cache, v_cache) after the write."""
    cache = KVCache(k=k_cache[None].copy(), v=v_cache[None].copy(), length=length)
    cache.update(0, k_new, v_new)
    return cache.k[0], cache.v[0]


def _written_at(k_cache, v_cache, start, k_new, v_new):
    k, v = k_cache.copy(), v_cache.copy()
    k[:, start : start + k_new.shape[1]] = k_new
    v[:, start : start + k_new.shape[1]] = v_new
    return k, v


def _append_hint(k_cache, v_cache, before_k, before_v, want_k, want_v, length, k_new, v_new) -> str:
    """Which mistake leaves the caches as the student's append_kv left them."""
    n_new = k_new.shape[1]
    mistakes = [
        (
            lambda: _written_at(before_k, before_v, length + 1, k_new, v_new),
            "wrote at length + 1? The next free position is index `length` itself",
        ),
        (
            lambda: _written_at(before_k, before_v, length - 1, k_new, v_new),
            "wrote at length - 1? That overwrites the last cached token; write at index `length`",
        ),
        (
            lambda: (before_k, before_v),
            "the caches are unchanged: write into k_cache and v_cache in place "
            "(k_cache[:, length:length + n_new] = k_new); a new array does not reach the caller",
        ),
        (
            lambda: _written_at(before_k, before_v, length, v_new, k_new),
            "keys and values are swapped: k_new goes into k_cache, v_new into v_cache",
        ),
        (lambda: (want_k, before_v), "only the keys were written: write v_new into v_cache too"),
        (
            lambda: (before_k, want_v),
            "only the values were written: write k_new into k_cache too (in place, not into a copy)",
        ),
    ]
    for mistaken, hint in mistakes:
        try:
            alt_k, alt_v = mistaken()
        except ValueError:  # the mistake cannot happen here (a slice past the end, say)
            continue
        if np.array_equal(k_cache, alt_k) and np.array_equal(v_cache, alt_v):
            return hint
    outside = np.s_[length : length + n_new]
    if not np.array_equal(np.delete(k_cache, outside, axis=1), np.delete(before_k, outside, axis=1)):
        return "positions outside [length, length + n_new) changed: write only the new slots"
    return "the caches differ from the reference after the write"


def _append_check(cases) -> Callable[[Funcs], None]:
    """cases: (n_head, max_seq, d_head, length, n_new). The buffers start full of stale values."""

    def check(f: Funcs) -> None:
        rng = _rng(3)
        for n_head, max_seq, d_head, length, n_new in cases:
            k_cache, v_cache = _randn(rng, n_head, max_seq, d_head), _randn(rng, n_head, max_seq, d_head)
            k_new, v_new = _randn(rng, n_head, n_new, d_head), _randn(rng, n_head, n_new, d_head)
            want_k, want_v = _ref_append(k_cache, v_cache, length, k_new, v_new)
            before_k, before_v = k_cache.copy(), v_cache.copy()
            where = f" (caches {_fmt(k_cache.shape)}, length={length}, {n_new} new)"
            out = _call(
                f["append_kv"], k_cache, v_cache, length, k_new.copy(), v_new.copy(), where=where, mutable=(0, 1)
            )
            if not (np.array_equal(k_cache, want_k) and np.array_equal(v_cache, want_v)):
                hint = _append_hint(k_cache, v_cache, before_k, before_v, want_k, want_v, length, k_new, v_new)
                raise _Fail(hint + where)
            if out is None:
                raise _Fail(f"append_kv returned None{where}: return the new length, length + n_new")
            if not isinstance(out, numbers.Integral) or out != length + n_new:
                raise _Fail(
                    f"append_kv returned {out!r}{where}: return the new length, length + n_new = {length + n_new}"
                )

    return check


def _cached_attention_check(cases) -> Callable[[Funcs], None]:
    """cases: (n_head, max_seq, d_head, length, n_new); positions >= length hold stale values."""

    def check(f: Funcs) -> None:
        rng = _rng(4)
        for n_head, max_seq, d_head, length, n_new in cases:
            q = _randn(rng, n_head, n_new, d_head)
            k_cache, v_cache = _randn(rng, n_head, max_seq, d_head), _randn(rng, n_head, max_seq, d_head)
            k, v = k_cache[:, :length], v_cache[:, :length]
            where = f" (q {_fmt(q.shape)}, caches {_fmt(k_cache.shape)}, length={length})"
            got = _call(f["cached_attention"], q.copy(), k_cache.copy(), v_cache.copy(), length, where=where)
            mistakes = [
                (
                    lambda: ref_attention(q, k_cache, v_cache),
                    "attended over the whole buffer: use only the first `length` positions "
                    "(k_cache[:, :length]); the rest is stale",
                ),
                (
                    lambda: ref_attention(q, k_cache[:, : length + 1], v_cache[:, : length + 1]),
                    "attended over length + 1 positions: the new tokens are already in the first `length`",
                ),
                (
                    lambda: ref_attention(q, k_cache[:, : length - 1], v_cache[:, : length - 1]),
                    "attended over length - 1 positions: the first `length` positions include the new tokens",
                ),
            ] + _attention_mistakes(q, k, v)
            _compare(got, ref_attention(q, k, v), "cached_attention", where, mistakes)

    return check


def _check_decode_loop(f: Funcs) -> None:
    """Prefill 5 tokens, then decode 4 one by one with the student's cache; every step must equal
    attention without a cache over the whole sequence so far."""
    rng = _rng(5)
    n_head, max_seq, d_head, n_prompt, n_steps = 3, 12, 20, 5, 4
    q_all, k_all, v_all = (_randn(rng, n_head, n_prompt + n_steps, d_head) for _ in range(3))
    k_cache = np.zeros((n_head, max_seq, d_head), np.float32)
    v_cache = np.zeros_like(k_cache)
    length, start = 0, 0
    for end in [n_prompt] + list(range(n_prompt + 1, n_prompt + n_steps + 1)):
        where = f" (decode loop, tokens {start}..{end - 1} after a prefill of {n_prompt})"
        length = _call(
            f["append_kv"],
            k_cache,
            v_cache,
            length,
            k_all[:, start:end].copy(),
            v_all[:, start:end].copy(),
            where=where,
            mutable=(0, 1),
        )
        if length != end:
            raise _Fail(f"append_kv returned {length!r}, expected the new length {end}{where}")
        got = _call(f["cached_attention"], q_all[:, start:end].copy(), k_cache, v_cache, length, where=where)
        want = ref_attention(q_all[:, start:end], k_all[:, :end], v_all[:, :end])
        _compare(
            got,
            want,
            "cached_attention",
            where + ": cached attention must equal attention without a cache over the whole sequence",
        )
        start = end


# ---- 04: sampling ------------------------------------------------------------------------------


def _filter_compare(
    got, want: np.ndarray, logits: np.ndarray, fn_name: str, where: str, off: bool, few: str, many: str, ties: str
) -> None:
    """Compare a filter's output exactly: the kept logits unchanged, the others -inf."""
    got = _as_array(got, fn_name, want, where)
    if np.array_equal(got, want):
        return
    if off:
        raise _Fail(f"this value means off: return the logits unchanged{where}")
    removed = np.isneginf(want) & ~np.isneginf(logits)
    if removed.any() and np.all(got[removed] == 0):
        raise _Fail(f"removed tokens hold 0: set them to -inf (probability 0 after the softmax){where}")
    if np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1)) and abs(got.sum() - 1) < 1e-3:
        raise _Fail(f"this looks like probabilities: return the logits, with -inf for the removed tokens{where}")
    kept_got, kept_want = ~np.isneginf(got), ~np.isneginf(want)
    if np.array_equal(kept_got, kept_want):
        raise _Fail(f"the right tokens are kept but their logits changed: keep them as they are{where}")
    n_got, n_want = int(kept_got.sum()), int(kept_want.sum())
    tied = len(np.unique(logits[~np.isneginf(logits)])) < (~np.isneginf(logits)).sum()
    if n_got == n_want - 1:
        raise _Fail(f"kept one token too few: {ties if tied and ties else few}{where}")
    if n_got == n_want + 1:
        raise _Fail(f"kept one token too many: {many}{where}")
    if n_got == n_want and tied and ties:
        raise _Fail(f"kept the right number of tokens but not the right ones: {ties}{where}")
    raise _Fail(
        f"kept {n_got} tokens, expected {n_want} ({few}){where}: expected the ids "
        f"{np.flatnonzero(kept_want).tolist()[:12]}, got {np.flatnonzero(kept_got).tolist()[:12]}"
    )


def _top_k_check(cases: Callable[[], list[tuple[np.ndarray, int]]]) -> Callable[[Funcs], None]:
    def check(f: Funcs) -> None:
        for logits, k in cases():
            where = f" (n_vocab={len(logits)}, k={k})"
            got = _call(f["top_k_filter"], logits.copy(), k, where=where)
            _filter_compare(
                got,
                ref_top_k(logits, k),
                logits,
                "top_k_filter",
                where,
                off=k == 0 or k >= len(logits),
                few="keep the k largest: logits >= the k-th largest",
                many="keep the k largest: logits >= the k-th largest",
                ties="a token tied with the k-th largest logit is kept too (keep logits >= the k-th largest)",
            )

    return check


def _top_p_check(cases: Callable[[], list[tuple[np.ndarray, float]]]) -> Callable[[Funcs], None]:
    def check(f: Funcs) -> None:
        for logits, p in cases():
            where = f" (n_vocab={len(logits)}, p={p:g})"
            got = _call(f["top_p_filter"], logits.copy(), p, where=where)
            _filter_compare(
                got,
                ref_top_p(logits, p),
                logits,
                "top_p_filter",
                where,
                off=p >= 1,
                few="keep the token that brings the total to p as well (the smallest set "
                "whose probability is >= p); the most likely token always stays",
                many="stop at the first token that brings the total to p: a token goes "
                "once the more likely ones already hold p",
                ties="between equal logits the lower token id goes first (sort from least "
                "to most likely with a stable sort, as Hugging Face and minfer do)",
            )

    return check


def _logits(seed: int, n: int, scale: float = 2.0) -> np.ndarray:
    return (_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _top_k_cases():
    return [(_logits(10, 10), 1), (_logits(11, 10), 3), (_logits(12, 10), 9), (_logits(13, 1000), 50)]


def _top_k_edge_cases():
    return [
        (_logits(14, 10), 0),
        (_logits(15, 10), 10),
        (_logits(16, 10), 25),
        (_logits(17, 1), 1),
        (np.array([1.0, 3.0, 2.0, 3.0, 0.5], np.float32), 1),  # both 3s: tied with the 1st largest
        (np.array([2.0, 2.0, 1.0, 2.0, 0.0], np.float32), 2),
    ]  # all three 2s


def _top_p_cases():
    return [
        (_logits(20, 10), 0.5),
        (_logits(21, 10), 0.9),
        (_logits(22, 50, 1.0), 0.3),
        (_logits(23, 1000), 0.95),
        (_logits(24, 10, 0.5), 0.75),
    ]


def _top_p_edge_cases():
    with_inf = _logits(25, 12)
    with_inf[[2, 7, 8]] = -np.inf  # as top-k leaves them: probability 0, they stay removed
    return [
        (_logits(26, 10), 1.0),
        (_logits(27, 10), 1e-6),
        (_logits(28, 1), 0.5),
        (with_inf, 0.8),
        (np.array([3.0, 1.0, 1.0, 1.0, 0.0], np.float32), 0.75),  # the cut falls inside the tied 1s
        (np.zeros(8, np.float32), 0.5),
    ]  # all tied: the stable sort removes the lower ids first


# ---- 05: counting a decode step ----------------------------------------------------------------


def _main_terms(n_layer, n_embd, n_vocab, n_past):
    """The pieces of the main-term counts, to recognise which one a student left out."""
    d, n_k = n_embd, n_past + 1
    return dict(
        mm_flops=n_layer * 24 * d * d,
        attn_flops=n_layer * 4 * d * n_k,
        lm_flops=2 * d * n_vocab,
        mm_bytes=4 * n_layer * 12 * d * d,
        kv_bytes=4 * n_layer * 2 * d * n_k,
        lm_bytes=4 * d * n_vocab,
    )


def _count_check(fn_name: str, cases: list[tuple[int, int, int, int]]) -> Callable[[Funcs], None]:
    flops = fn_name == "decode_step_flops"

    def check(f: Funcs) -> None:
        for n_layer, n_embd, n_vocab, n_past in cases:
            where = f" (n_layer={n_layer}, n_embd={n_embd}, n_vocab={n_vocab}, n_past={n_past})"
            got = _call(f[fn_name], n_layer, n_embd, n_vocab, n_past, where=where)
            if not isinstance(got, numbers.Real) or isinstance(got, bool):
                raise _Fail(f"{fn_name} returned {got!r}{where}: return a number")
            cfg = Config(n_layer, max(1, n_embd // 64), n_embd, max(1024, n_past + 1), n_vocab)
            cost = decode_cost(Arch.from_config(cfg), n_past)
            want = cost.flops if flops else cost.bytes
            if abs(got - want) <= COUNT_RTOL * want:
                continue
            t = _main_terms(n_layer, n_embd, n_vocab, n_past)
            if flops:
                main = t["mm_flops"] + t["attn_flops"] + t["lm_flops"]
                mistakes = [
                    (main / 2, "about half: a multiply-add is 2 FLOPs"),
                    (main - t["lm_flops"], "the LM head is missing: [n_embd, n_vocab], 2 n_embd n_vocab FLOPs"),
                    (
                        main - t["attn_flops"],
                        "attention is missing: per layer, q.k and weights @ v "
                        "are 4 n_embd FLOPs per key, over n_past + 1 keys",
                    ),
                    (
                        main - t["attn_flops"] / 2,
                        "attention counts only one of q.k and weights @ v: both are 2 n_embd FLOPs per key",
                    ),
                    (
                        main - t["mm_flops"] / 4,
                        "the MLP matrices are [n_embd, 4 n_embd] and [4 n_embd, n_embd]: 16 n_embd^2 FLOPs per layer",
                    ),
                ]
            else:
                main = t["mm_bytes"] + t["kv_bytes"] + t["lm_bytes"]
                mistakes = [
                    (main / 4, "a quarter: that counts numbers; float32 is 4 bytes a number"),
                    (main / 2, "half: float32 is 4 bytes a number, not 2"),
                    (main - t["lm_bytes"], "the LM head's matrix is missing: n_vocab x n_embd numbers"),
                    (
                        main - t["kv_bytes"],
                        "the KV cache read is missing: keys and values of "
                        "n_past + 1 positions, 2 n_embd numbers per layer each",
                    ),
                    (
                        main - t["kv_bytes"] / 2,
                        "only half the KV cache: read the values as well as "
                        "the keys (2 n_embd numbers per layer and position)",
                    ),
                    (
                        main - t["mm_bytes"] / 4,
                        "the MLP matrices are [n_embd, 4 n_embd] and [4 n_embd, n_embd]: 8 n_embd^2 numbers per layer",
                    ),
                ]
            for alt, hint in mistakes:
                if abs(got - alt) <= 0.005 * alt:
                    raise _Fail(hint + where)
            raise _Fail(
                f"got {got:,.0f}, expected about {want:,} (within {COUNT_RTOL:.0%}; yours is {got / want:.3f}x){where}"
            )

    return check


SHORT = [(12, 768, 50257, 0), (48, 1600, 50257, 0), (6, 384, 5000, 3)]  # the first tokens: weights dominate
LONG = [(12, 768, 50257, 1023), (24, 1024, 50257, 4000), (6, 384, 5000, 300)]  # attention and the cache grow


# ---- 06: RoPE ----------------------------------------------------------------------------------


def _ref_rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """minfer's rotation of x [n_head, n_seq, d_head] at `positions` [n_seq], base theta."""
    return ref_rope(x, *rope_tables(np.asarray(positions), inverse_frequencies(x.shape[-1], theta)))


def _rope_interleaved(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """The RoPE paper's layout, a mistake here: neighbours (2i, 2i + 1) paired, not (i, i + d_head/2)."""
    angles = np.asarray(positions, np.float64)[:, None] * inverse_frequencies(x.shape[-1], theta)  # [n_seq, half]
    cos, sin = np.cos(angles), np.sin(angles)  # [n_seq, half]
    even, odd = x[..., 0::2], x[..., 1::2]  # [n_head, n_seq, half]
    return np.stack([even * cos - odd * sin, odd * cos + even * sin], axis=-1).reshape(x.shape)


def _rope_mistakes(x: np.ndarray, positions: np.ndarray, theta: float) -> list[tuple[Callable[[], np.ndarray], str]]:
    n_seq, d_head = x.shape[1], x.shape[2]
    half = d_head // 2
    want = _ref_rope(x, positions, theta)
    per_dim = positions[:, None] / theta ** (np.arange(d_head) / d_head)  # [n_seq, d_head]: no pairs
    return [
        (lambda: x, "x comes back as it went in: turn each pair by positions[p] * inv_freq[i]"),
        (
            lambda: _rope_interleaved(x, positions, theta),
            "rotated neighbouring pairs (0, 1), (2, 3), ... as the RoPE paper writes it; Hugging Face "
            "checkpoints (and minfer) pair dimension i with i + d_head/2 (rotate-half): "
            "x1 = x[..., :d_head/2], x2 = x[..., d_head/2:]",
        ),
        (
            lambda: _ref_rope(x, -positions, theta),
            "rotated the wrong way (the sign of sin): rotate_half(x) is concatenate(-x2, x1), so the "
            "first half is x1 cos - x2 sin and the second x2 cos + x1 sin",
        ),
        (
            lambda: _ref_rope(x, positions + 1, theta),
            "the positions are off by one (positions + 1): the token at position p turns by "
            "p * inv_freq, and position 0 is not turned at all",
        ),
        (
            lambda: _ref_rope(x, positions - 1, theta),
            "the positions are off by one (positions - 1): the token at position p turns by p * inv_freq",
        ),
        (
            lambda: _ref_rope(x, np.arange(n_seq), theta),
            "used 0 .. n_seq - 1 instead of `positions`: after a KV cache the new tokens sit further "
            "on, and each turns by its own positions[p]",
        ),
        (
            lambda: np.concatenate([want[..., :half], x[..., half:]], axis=-1),
            "the second half is not rotated: cos and sin hold each pair's angle in BOTH halves, "
            "[n_seq, d_head] (the angles concatenated with themselves), so the second half becomes "
            "x2 cos + x1 sin",
        ),
        (
            lambda: np.concatenate([want[..., :half], np.zeros_like(x[..., half:])], axis=-1),
            "the second half is zero: cos and sin hold each pair's angle in BOTH halves, "
            "[n_seq, d_head], so the second half becomes x2 cos + x1 sin",
        ),
        (
            lambda: x * np.cos(per_dim) + rotate_half(x) * np.sin(per_dim),
            "one frequency per dimension, theta^(-j / d_head) for j < d_head: RoPE has one per PAIR, "
            "inv_freq[i] = theta^(-2i / d_head) for i < d_head/2, written into both halves",
        ),
        (
            lambda: _ref_rope(x, positions, theta**0.5),
            "pair i's frequency is theta^(-2i / d_head); this used theta^(-i / d_head)",
        ),
        (lambda: _ref_rope(x, positions, 10000.0), "the theta argument is ignored: use the theta passed in"),
    ]


def _rope_check(cases: list[tuple[int, int, int, int, float]], seed: int) -> Callable[[Funcs], None]:
    """cases: (n_head, n_seq, d_head, first position, theta)."""

    def check(f: Funcs) -> None:
        rng = _rng(seed)
        for n_head, n_seq, d_head, start, theta in cases:
            x = _randn(rng, n_head, n_seq, d_head)
            positions = np.arange(start, start + n_seq)  # [n_seq]
            where = f" (x {_fmt(x.shape)}, positions {start}..{start + n_seq - 1}, theta={theta:g})"
            got = _call(f["apply_rope"], x.copy(), positions.copy(), theta, where=where)
            want = _ref_rope(x, positions, theta)
            near = _as_array(got, "apply_rope", want, where)
            if start > 1000 and not _close(near, want, atol=1e-4) and _close(near, want, atol=2e-2):
                raise _Fail(
                    "close, but not within 1e-4, at large positions: the angles positions * inv_freq "
                    "lost precision (float32 has 24 bits: about 5e-4 radians at position 4,000); "
                    f"compute them in float64, NumPy's default, and cast the result to float32{where}"
                )
            _compare(got, want, "apply_rope", where, _rope_mistakes(x, positions, theta), atol=1e-4)

    return check


# ---- 07: grouped-query decode attention --------------------------------------------------------


def _ref_gqa(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, length: int) -> np.ndarray:
    """minfer's grouped attention of one query token over the first `length` positions.
    q: [n_head, d_head], caches [n_kv_head, max_seq, d_head] -> [n_head, d_head]"""
    return ref_attention(q[:, None], k_cache[:, :length], v_cache[:, :length])[:, 0]


def _gqa_mistakes(q, k_cache, v_cache, length) -> list[tuple[Callable[[], np.ndarray], str]]:
    n_head, d_head = q.shape
    n_kv_head = k_cache.shape[0]
    modulo = np.arange(n_head) % n_kv_head  # [n_head]: the wrong KV head for each query head
    grouped = np.arange(n_head) // (n_head // n_kv_head)  # [n_head]: the right one
    k, v = k_cache[:, :length], v_cache[:, :length]  # [n_kv_head, length, d_head]
    scores = np.einsum("hd,hnd->hn", q, k[grouped]) / np.float32(math.sqrt(d_head))  # [n_head, length]
    over_heads = np.exp(scores - scores.max(axis=0)) / np.exp(scores - scores.max(axis=0)).sum(axis=0)
    return [
        (
            lambda: ref_attention(q[:, None], k[modulo], v[modulo])[:, 0],
            "query head h read KV head h % n_kv_head: a group's query heads are consecutive, so head "
            "h reads KV head h // (n_head // n_kv_head) (np.repeat(k, group, axis=0) repeats each KV "
            "head in place; np.tile repeats the whole stack)",
        ),
        (
            lambda: _ref_gqa(q * np.float32(math.sqrt(d_head)), k_cache, v_cache, length),
            "the scores are not scaled: divide q . k by sqrt(d_head)",
        ),
        (
            lambda: _ref_gqa(q / np.float32(math.sqrt(d_head)), k_cache, v_cache, length),
            "the scores are divided by d_head: divide by sqrt(d_head)",
        ),
        (
            lambda: _ref_gqa(q, k_cache, v_cache, k_cache.shape[1]),
            "attended over the whole buffer: positions from `length` on are stale, use only "
            "k_cache[:, :length] and v_cache[:, :length]",
        ),
        (
            lambda: _ref_gqa(q, k_cache, v_cache, length + 1),
            "attended over length + 1 positions, one past the cache: the new token's key is already "
            "in it, at index length - 1",
        ),
        (
            lambda: _ref_gqa(q, k_cache, v_cache, length - 1),
            "attended over length - 1 positions: the new token's own key, at index length - 1, counts too",
        ),
        (
            lambda: np.einsum("hn,hnd->hd", over_heads, v[grouped]),
            "the softmax runs over the heads: normalise each head's scores over the keys (the last axis)",
        ),
    ]


def _gqa_check(cases: list[tuple[int, int, int, int, int]], seed: int) -> Callable[[Funcs], None]:
    """cases: (n_head, n_kv_head, max_seq, d_head, length); positions >= length hold stale values."""

    def check(f: Funcs) -> None:
        rng = _rng(seed)
        for n_head, n_kv_head, max_seq, d_head, length in cases:
            q = _randn(rng, n_head, d_head)
            k_cache, v_cache = _randn(rng, n_kv_head, max_seq, d_head), _randn(rng, n_kv_head, max_seq, d_head)
            where = f" (q {_fmt(q.shape)}, caches {_fmt(k_cache.shape)}, length={length})"
            got = _call(f["grouped_decode_attention"], q.copy(), k_cache.copy(), v_cache.copy(), length, where=where)
            want = _ref_gqa(q, k_cache, v_cache, length)
            _compare(got, want, "grouped_decode_attention", where, _gqa_mistakes(q, k_cache, v_cache, length))

    return check


def _check_gqa_decode_loop(f: Funcs) -> None:
    """Decode 7 tokens one by one into a cache of stale values: step t must equal row t of
    minfer's causal attention over the whole sequence (3 query heads per KV head)."""
    rng = _rng(31)
    n_head, n_kv_head, max_seq, d_head, n_seq = 6, 2, 10, 12, 7
    q_all = _randn(rng, n_head, n_seq, d_head)
    k_all, v_all = _randn(rng, n_kv_head, n_seq, d_head), _randn(rng, n_kv_head, n_seq, d_head)
    want_all = ref_attention(q_all, k_all, v_all)  # [n_head, n_seq, d_head], causal over the whole sequence
    k_cache, v_cache = _randn(rng, n_kv_head, max_seq, d_head), _randn(rng, n_kv_head, max_seq, d_head)
    for t in range(n_seq):
        k_cache[:, t], v_cache[:, t] = k_all[:, t], v_all[:, t]  # the new token's key and value, written first
        q = q_all[:, t]  # [n_head, d_head]
        where = f" (decode loop, step {t}: q {_fmt(q.shape)}, caches {_fmt(k_cache.shape)}, length={t + 1})"
        got = _call(f["grouped_decode_attention"], q.copy(), k_cache.copy(), v_cache.copy(), t + 1, where=where)
        _compare(
            got,
            want_all[:, t],
            "grouped_decode_attention",
            where + ": step t must equal row t of causal attention over the whole sequence",
            _gqa_mistakes(q, k_cache, v_cache, t + 1),
        )


# ---- 08: the block table ----------------------------------------------------------------------


def _slot_mistakes(table: np.ndarray, position: int, block_size: int) -> list[tuple[tuple[int, int], str]]:
    logical, offset = position // block_size, position % block_size
    mistakes = [
        (
            (logical, offset),
            "returned the logical block, position // block_size: look it up in the table, "
            "table[position // block_size] is the physical block",
        ),
        ((offset, int(table[logical])), "returned (offset, block): return (block, offset)"),
        ((int(table[logical]), logical), "the offset is position % block_size, not position // block_size"),
    ]
    if logical + 1 < len(table):
        mistakes.append(
            (
                (int(table[logical + 1]), offset),
                "one logical block too far: block i holds positions "
                "i * block_size .. (i + 1) * block_size - 1, so position p is in block p // block_size",
            )
        )
    if offset < len(table):
        mistakes.append(
            (
                (int(table[offset]), logical),
                "block and offset mixed up: the physical block is "
                "table[position // block_size], the offset position % block_size",
            )
        )
    return mistakes


def _slot_check(cases: list[tuple[list[int], int, list[int]]]) -> Callable[[Funcs], None]:
    """cases: (table, block_size, positions)."""

    def check(f: Funcs) -> None:
        for table_list, block_size, positions in cases:
            table = np.array(table_list)  # [n_table]
            for position in positions:
                where = f" (table {table_list}, block_size={block_size}, position={position})"
                got = _call(f["slot_of"], table.copy(), position, block_size, where=where)
                want = ref_slot_of(table, position, block_size)
                try:
                    pair = (int(got[0]), int(got[1]))
                    if len(got) != 2:
                        raise ValueError
                except (TypeError, ValueError, IndexError):
                    raise _Fail(f"slot_of returned {got!r}{where}: return a pair (block, offset)") from None
                if pair == want:
                    continue
                hint = next((h for alt, h in _slot_mistakes(table, position, block_size) if alt == pair), "")
                raise _Fail(f"{hint or f'got {pair}, expected {want}'}{where}")

    return check


def _ref_write(k_pool: np.ndarray, v_pool: np.ndarray, table: np.ndarray, position: int, k, v):
    """minfer's paged write of one position into a one-layer pool -> (k_pool, v_pool) after it."""
    cache = PagedKVCache(k_pool[None].copy(), v_pool[None].copy())  # [1, n_blocks, n_kv_head, block_size, d_head]
    ref_paged_write(cache, 0, table, k[:, None], v[:, None], np.array([position]))
    return cache.k[0], cache.v[0]


def _write_hint(k_pool, v_pool, before_k, before_v, want_k, want_v, table, position, k, v) -> str:
    """Which mistake leaves the pools as the student's write_kv left them."""
    block_size = before_k.shape[2]
    block, offset = ref_slot_of(table, position, block_size)

    def written(b: int, index, k_new, v_new):
        ks, vs = before_k.copy(), before_v.copy()
        ks[(b, *index)], vs[(b, *index)] = k_new, v_new
        return ks, vs

    mistakes = [
        (
            lambda: (before_k, before_v),
            "the pools are unchanged: write into k_pool and v_pool in place "
            "(k_pool[block, :, offset] = k); a new array does not reach the caller",
        ),
        (
            lambda: written(position // block_size, (slice(None), offset), k, v),
            "wrote into block "
            "position // block_size, the logical block: the physical block is table[position // block_size]",
        ),
        (
            lambda: written(block, (offset,), k, v),
            "wrote at k_pool[block, offset]: the pool's axes are [n_blocks, "
            "n_kv_head, block_size, d_head], so the offset indexes axis 2: k_pool[block, :, offset] = k",
        ),
        (
            lambda: written(block, (slice(None), slice(None)), k[:, None], v[:, None]),
            "wrote the whole block: write only the position's slot, k_pool[block, :, offset]",
        ),
        (
            lambda: written(block, (slice(None), offset), v, k),
            "keys and values are swapped: k into k_pool, v into v_pool",
        ),
        (lambda: (want_k, before_v), "only the keys were written: write v into v_pool too"),
        (lambda: (before_k, want_v), "only the values were written: write k into k_pool too (in place)"),
    ]
    for mistaken, hint in mistakes:
        try:
            alt_k, alt_v = mistaken()
        except (ValueError, IndexError):  # the mistake cannot happen on these shapes
            continue
        if np.array_equal(k_pool, alt_k) and np.array_equal(v_pool, alt_v):
            return hint
    return "the pools differ from the reference after the write"


def _write_check(cases: list[tuple[int, int, int, int, int, list[int]]], seed: int) -> Callable[[Funcs], None]:
    """cases: (n_blocks, n_kv_head, block_size, d_head, n_table, positions); pools full of stale values."""

    def check(f: Funcs) -> None:
        rng = _rng(seed)
        for n_blocks, n_kv_head, block_size, d_head, n_table, positions in cases:
            k_pool, v_pool = (
                _randn(rng, n_blocks, n_kv_head, block_size, d_head),
                _randn(rng, n_blocks, n_kv_head, block_size, d_head),
            )
            table = rng.permutation(n_blocks)[:n_table]  # [n_table]: a shuffled table
            for position in positions:
                k, v = _randn(rng, n_kv_head, d_head), _randn(rng, n_kv_head, d_head)
                want_k, want_v = _ref_write(k_pool, v_pool, table, position, k, v)
                before_k, before_v = k_pool.copy(), v_pool.copy()
                where = f" (pools {_fmt(k_pool.shape)}, table {table.tolist()}, position={position})"
                _call(
                    f["write_kv"],
                    k_pool,
                    v_pool,
                    table.copy(),
                    position,
                    k.copy(),
                    v.copy(),
                    where=where,
                    mutable=(0, 1),
                )
                if not (np.array_equal(k_pool, want_k) and np.array_equal(v_pool, want_v)):
                    hint = _write_hint(k_pool, v_pool, before_k, before_v, want_k, want_v, table, position, k, v)
                    raise _Fail(hint + where)

    return check


def _read_mistakes(pool: np.ndarray, table: np.ndarray, n_keys: int) -> list[tuple[Callable[[], np.ndarray], str]]:
    n_kv_head, block_size, d_head = pool.shape[1:]
    used = -(-n_keys // block_size)
    return [
        (
            lambda: ref_gather(pool, np.arange(used), n_keys),
            "read blocks 0, 1, 2, ... of the pool: read the "
            "sequence's own blocks, pool[table[i]] for logical block i, in table order",
        ),
        (
            lambda: ref_gather(pool, np.sort(table[:used]), n_keys),
            "read the sequence's blocks in the pool's order: "
            "read them in the table's order (logical block 0 first), whatever their numbers",
        ),
        (
            lambda: pool[table[:used]].reshape(n_kv_head, used * block_size, d_head)[:, :n_keys],
            "reshaped "
            "[blocks, n_kv_head, block_size, d_head] without moving the heads first: transpose to [n_kv_head, blocks, "
            "block_size, d_head], then reshape to [n_kv_head, blocks * block_size, d_head]",
        ),
    ]


def _read_check(cases: list[tuple[int, int, int, int, int, int]], seed: int) -> Callable[[Funcs], None]:
    """cases: (n_blocks, n_kv_head, block_size, d_head, n_table, n_keys)."""

    def check(f: Funcs) -> None:
        rng = _rng(seed)
        for n_blocks, n_kv_head, block_size, d_head, n_table, n_keys in cases:
            pool = _randn(rng, n_blocks, n_kv_head, block_size, d_head)
            table = rng.permutation(n_blocks)[:n_table]  # [n_table]
            where = f" (pool {_fmt(pool.shape)}, table {table.tolist()}, n_keys={n_keys})"
            got = _call(f["read_kv"], pool.copy(), table.copy(), n_keys, where=where)
            want = ref_gather(pool, table, n_keys)  # [n_kv_head, n_keys, d_head]
            _compare(got, want, "read_kv", where, _read_mistakes(pool, table, n_keys))

    return check


def _check_block_round_trip(f: Funcs) -> None:
    """Write 23 positions one by one through a shuffled table of blocks of 4 into pools that
    hold other sequences' values, then read back the first n: the keys and values written, in
    order; the blocks the table does not name stay untouched."""
    rng = _rng(41)
    n_blocks, n_kv_head, block_size, d_head, n_seq = 12, 2, 4, 6, 23
    k_all, v_all = _randn(rng, n_kv_head, n_seq, d_head), _randn(rng, n_kv_head, n_seq, d_head)
    k_pool, v_pool = (
        _randn(rng, n_blocks, n_kv_head, block_size, d_head),
        _randn(rng, n_blocks, n_kv_head, block_size, d_head),
    )
    others_k, others_v = k_pool.copy(), v_pool.copy()
    table = np.array([9, 2, 11, 0, 5, 7])  # [6]: 24 positions' worth
    for p in range(n_seq):
        where = f" (round trip, table {table.tolist()}, writing position {p})"
        _call(
            f["write_kv"],
            k_pool,
            v_pool,
            table.copy(),
            p,
            k_all[:, p].copy(),
            v_all[:, p].copy(),
            where=where,
            mutable=(0, 1),
        )
    untouched = np.setdiff1d(np.arange(n_blocks), table)  # blocks of other sequences
    if not (
        np.array_equal(k_pool[untouched], others_k[untouched])
        and np.array_equal(v_pool[untouched], others_v[untouched])
    ):
        raise _Fail(f"blocks {untouched.tolist()} are not in the table but changed: write only through the table")
    for n_keys in (1, 4, 5, 12, 23):
        where = f" (round trip: table {table.tolist()}, {n_seq} positions written one by one, n_keys={n_keys})"
        for pool, want, name in ((k_pool, k_all, "keys"), (v_pool, v_all, "values")):
            got = _call(f["read_kv"], pool.copy(), table.copy(), n_keys, where=where)
            _compare(
                got,
                want[:, :n_keys],
                "read_kv",
                f"{where}: read_kv must give back the {name} written, in order",
                _read_mistakes(pool, table, n_keys),
            )


# ---- 09: one scheduler step ----------------------------------------------------------------------


@dataclass
class _Seq:
    """The stub's Seq, for a student file that lost its own."""

    id: int
    n_tokens: int
    n_cached: int = 0
    n_blocks: int = 0


@dataclass(frozen=True)
class _Scenario:
    """An engine's state at the start of a step."""

    running: tuple[tuple[int, int, int, int], ...]  # (id, n_tokens, n_cached, n_blocks), oldest first
    waiting: tuple[tuple[int, int], ...]  # (id, n_tokens), front first
    free_blocks: int
    block_size: int
    max_batch: int
    max_step_tokens: int

    def __str__(self) -> str:
        running = ", ".join(f"{i}: {n}/{c}/{b}" for i, n, c, b in self.running)
        waiting = ", ".join(f"{i}: {n}" for i, n in self.waiting)
        return (
            f"running [id: n_tokens/n_cached/n_blocks {running}], waiting [id: n_tokens {waiting}], "
            f"free_blocks={self.free_blocks}, block_size={self.block_size}, max_batch={self.max_batch}, "
            f"max_step_tokens={self.max_step_tokens}"
        )


_Plan = tuple[list[int], list[tuple[int, int]], list[int], list[int]]  # decodes, prefills, preempted, admitted
_PLAN_FIELDS = ("decodes", "prefills", "preempted", "admitted")


def _tiny_engine_model():
    """A random-weight model too small to matter: the engine needs one, its scheduler never runs it."""
    cfg = Config(n_layer=1, n_head=1, n_embd=4, n_ctx=4096, n_vocab=8)
    return Model(cfg, random_weights(cfg, seed=0), name="scheduler check")


def _engine_plan(sc: _Scenario) -> _Plan:
    """What minfer's Engine decides in this state: its `_schedule`, read back."""
    total = sum(b for *_, b in sc.running) + sc.free_blocks
    spare = max(0, 2 - total)  # add_request below needs 2 blocks when a block holds 1 position
    engine = Engine(
        _tiny_engine_model(), sc.max_batch, total + spare, sc.block_size, sc.max_step_tokens, prefix_caching=False
    )
    for _ in range(spare):
        engine.blocks.allocate()  # held by nobody: the free count is the scenario's
    entries = [*sc.running, *((i, n, 0, 0) for i, n in sc.waiting)]
    for _ in entries:
        engine.add_request([1], 1, stop_tokens=())
    engine._take_inbox()
    requests = list(engine.waiting)
    for r, (i, n, c, b) in zip(requests, entries):
        r.id, r.ids, r.n_cached, r.table = i, [1] * n, c, [engine.blocks.allocate() for _ in range(b)]
    engine.running, engine.waiting = requests[: len(sc.running)], deque(requests[len(sc.running) :])
    preempted: list[int] = []
    preempt = engine._preempt
    engine._preempt = lambda r: (preempted.append(r.id), preempt(r))  # record who, in order
    decodes, chunks, _ = engine._schedule()
    admitted = engine.running[len(sc.running) - len(preempted) :]  # appended after the survivors
    return [r.id for r in decodes], [(r.id, n) for r, n in chunks], preempted, [r.id for r in admitted]


def _model_plan(sc: _Scenario, mistake: str = "") -> _Plan:
    """The engine's rules written out (tests/test_exercises.py checks they equal `_engine_plan`),
    or with one `mistake`, to recognise it in a student's plan."""
    bs = sc.block_size
    running = [_Seq(*s) for s in sc.running]
    queue = deque(_Seq(i, n) for i, n in sc.waiting)
    free = sc.free_blocks
    decodes, prefills, preempted, admitted = [], [], [], []

    def blocks(n_positions: int) -> int:
        return n_positions // bs if mistake == "floor blocks" else -(-n_positions // bs)

    def reserve(s: _Seq, n_positions: int) -> bool:
        nonlocal free
        missing = blocks(n_positions) - s.n_blocks
        if missing > free:
            return False
        free, s.n_blocks = free - max(0, missing), s.n_blocks + max(0, missing)
        return True

    def preempt(s: _Seq) -> None:
        nonlocal free
        free, s.n_blocks = free + s.n_blocks, 0
        s.n_cached = s.n_cached if mistake == "cache kept" else 0
        running.remove(s)
        if mistake == "to the back":
            queue.append(s)
        elif mistake != "no readmission":  # that mistake forgets it until the next step
            queue.appendleft(s)
        preempted.append(s.id)

    for s in list(running):
        if s not in running or s.n_tokens - s.n_cached != 1:
            continue
        while not reserve(s, s.n_cached + 1):
            victim = running[0] if mistake == "oldest" else running[-1]
            if mistake == "never itself" and victim is s:
                others = [r for r in running if r is not s]
                if not others:
                    break
                victim = others[-1]
            preempt(victim)
            if s not in running:
                break
        else:
            decodes.append(s.id)
    budget = sc.max_step_tokens - (0 if mistake == "budget" else len(decodes))

    def room(s: _Seq) -> int:  # positions s can take: the rest of its blocks and every free one
        return (s.n_blocks + free) * bs - s.n_cached

    for s in [s for s in running if s.n_tokens - s.n_cached > 1]:
        if budget == 0:
            break
        while s in running and room(s) == 0 and mistake != "prefills wait":
            preempt([p for p in running if p.n_tokens - p.n_cached > 1][-1])  # the newest prefill
        if s not in running or room(s) == 0:
            continue
        n = min(s.n_tokens - s.n_cached, budget, room(s))
        if not reserve(s, s.n_tokens if mistake == "whole prompt" else s.n_cached + n):
            continue
        prefills.append((s.id, n))
        budget -= n
    while queue and budget > 0 and (len(running) < sc.max_batch or mistake == "max_batch"):
        s = queue.popleft()
        n = min(s.n_tokens - s.n_cached, budget)
        if not reserve(s, s.n_tokens if mistake == "whole prompt" else s.n_cached + n):
            if mistake == "queue jumped":
                continue
            break
        running.append(s)
        prefills.append((s.id, n))
        admitted.append(s.id)
        budget -= n
    return decodes, prefills, preempted, admitted


_SCHEDULER_MISTAKES = {
    "oldest": "preempted the OLDEST running sequence: preempt the newest, the last of `running` (it has "
    "done the least work; the oldest keeps its place)",
    "never itself": "when the sequence that needs a block is itself the newest running, it preempts "
    "ITSELF (it leaves running for the front of the queue and does not decode)",
    "to the back": "a preempted sequence goes to the FRONT of the waiting queue (appendleft), ahead of "
    "requests that never ran",
    "cache kept": "a preempted sequence loses its cache: n_cached = 0 and n_blocks = 0, so when it comes "
    "back its chunk starts from its first token",
    "no readmission": "a sequence preempted in this step goes to the front of the waiting queue, so it may be "
    "admitted again in the same step, if its chunk's blocks are free",
    "budget": "each decode uses one token of the step: the prefill budget is max_step_tokens - len(decodes)",
    "prefills wait": "a running prefill that cannot fit one more position preempts the newest running "
    "sequence still prefilling (possibly itself); without that, prompts holding blocks can wait on each other "
    "forever",
    "queue jumped": "the queue is first come, first served: when the front request's blocks are not free, "
    "stop admitting; nobody behind it jumps the queue",
    "max_batch": "admit only while fewer than max_batch sequences are running",
    "whole prompt": "reserve blocks for the chunk only (n_cached + n positions), not for the whole prompt",
    "floor blocks": "positions 0 .. p - 1 need ceil(p / block_size) blocks: a partly filled block counts",
}


def _student_plan(fn: Callable, sc: _Scenario) -> _Plan:
    """Run the student's schedule_step on a scenario, with the student's own Seq class, and read the plan."""
    seq = getattr(fn, "__globals__", {}).get("Seq", _Seq)  # the student's dataclass, as the stub defines it
    try:
        running = [seq(i, n, c, b) for i, n, c, b in sc.running]
        waiting = [seq(i, n, 0, 0) for i, n in sc.waiting]
    except TypeError as e:
        raise _Fail(f"Seq(id, n_tokens, n_cached, n_blocks) fails ({e}): keep the stub's Seq dataclass") from None

    def fields(seqs: list) -> list[tuple]:
        return [(s.id, s.n_tokens, s.n_cached, s.n_blocks) for s in seqs]

    before = fields(running), fields(waiting)
    where = f" ({sc})"
    got = _call(fn, running, waiting, sc.free_blocks, sc.block_size, sc.max_batch, sc.max_step_tokens, where=where)
    if (fields(running), fields(waiting)) != before:
        raise _Fail(f"schedule_step changed its arguments{where}: copy the Seqs you change (dataclasses.replace)")
    try:
        return (
            [int(i) for i in got.decodes],
            [(int(i), int(n)) for i, n in got.prefills],
            [int(i) for i in got.preempted],
            [int(i) for i in got.admitted],
        )
    except (AttributeError, TypeError, ValueError):
        raise _Fail(
            f"schedule_step returned {got!r}{where}: return a Plan (the stub's dataclass) whose decodes, "
            "preempted and admitted are lists of ids and prefills a list of (id, n_tokens)"
        ) from None


def _plan_text(plan: _Plan) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(_PLAN_FIELDS, plan))


def _compare_plans(fn: Callable, cases: list[tuple[str, _Scenario, _Plan]]) -> None:
    """Fail on the first case where the student's plan differs from the expected one. The hint
    names the mistake that reproduces the student's plans on every case (one scenario alone
    can fit two mistakes), else one that reproduces this case, else the first difference."""
    gots = [_student_plan(fn, sc) for _, sc, _ in cases]
    wrong = [(source, sc, want, got) for (source, sc, want), got in zip(cases, gots) if got != want]
    if not wrong:
        return
    source, sc, want, got = wrong[0]
    everywhere = [m for m in _SCHEDULER_MISTAKES if all(_model_plan(s, m) == g for (_, s, _), g in zip(cases, gots))]
    here = [m for m in _SCHEDULER_MISTAKES if _model_plan(sc, m) == got]
    if everywhere or here:
        hint = _SCHEDULER_MISTAKES[(everywhere or here)[0]]
        raise _Fail(f"{hint} ({sc}: {source} {_plan_text(want)}; yours {_plan_text(got)})")
    first = next(name for name, a, b in zip(_PLAN_FIELDS, got, want) if a != b)
    raise _Fail(f"{source} {_plan_text(want)}, yours {_plan_text(got)}: first difference in {first} ({sc})")


# the hand-worked cases: (what it shows, scenario, the plan worked out from the rules in the stub)
_HAND_CASES: list[tuple[str, _Scenario, _Plan]] = [
    ("everyone decodes", _Scenario(((0, 6, 5, 2), (1, 3, 2, 1)), (), 0, 4, 4, 16), ([0, 1], [], [], [])),
    (
        "a decode needs a block, none is free: the newest is preempted",
        _Scenario(((0, 9, 8, 2), (1, 3, 2, 1), (2, 7, 6, 2)), (), 0, 4, 4, 16),
        ([0, 1], [], [2], []),
    ),
    ("the newest preempts itself", _Scenario(((0, 3, 2, 1), (1, 5, 4, 1)), (), 0, 4, 4, 16), ([0], [], [1], [])),
    (
        "preempted, then admitted again with a smaller chunk",
        _Scenario(((0, 9, 8, 2), (1, 6, 5, 2)), (), 0, 4, 4, 5),
        ([0], [(1, 4)], [1], [1]),
    ),
    (
        "a chunk of what is left of the budget",
        _Scenario(((0, 3, 2, 1),), ((1, 30), (2, 5)), 10, 4, 4, 12),
        ([0], [(1, 11)], [], [1]),
    ),
    (
        "a running prefill goes before the queue",
        _Scenario(((0, 3, 2, 1), (1, 30, 11, 3)), ((2, 5),), 10, 4, 4, 12),
        ([0], [(1, 11)], [], []),
    ),
    (
        "a preempted sequence waits at the front of the queue",
        _Scenario(((0, 5, 4, 1), (1, 6, 5, 2)), ((2, 3),), 0, 4, 4, 8),
        ([0], [], [1], []),
    ),
    ("the front of the queue blocks the rest", _Scenario((), ((0, 20), (1, 2)), 3, 4, 4, 32), ([], [], [], [])),
    ("max_batch is full", _Scenario(((0, 3, 2, 1), (1, 3, 2, 1)), ((2, 4),), 10, 4, 2, 8), ([0, 1], [], [], [])),
]


def _check_scheduler_hand_cases(f: Funcs) -> None:
    _compare_plans(f["schedule_step"], [(f"{what}: the plan is", sc, want) for what, sc, want in _HAND_CASES])


def _scheduler_scenarios(seed: int, n: int, tight: bool) -> list[_Scenario]:
    """Random engine states. tight: few free blocks and decodes at block edges (preemption);
    otherwise long queues and small budgets (chunks, admissions, max_batch)."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        bs = int(rng.choice([1, 2, 4, 8, 16]))
        max_batch = int(rng.integers(1, 7))
        max_step_tokens = int(rng.integers(max_batch + 1, max_batch + (12 if tight else 40)))
        running, ids = [], iter(range(100))
        for _ in range(int(rng.integers(0 if not tight else 1, max_batch + 1))):
            n_cached = int(rng.integers(1, 6) * bs if tight and rng.random() < 0.6 else rng.integers(1, 60))
            todo = 1 if rng.random() < (0.8 if tight else 0.5) else int(rng.integers(2, 60))
            running.append((next(ids), n_cached + todo, n_cached, -(-n_cached // bs)))
        waiting = [(next(ids), int(rng.integers(1, 80))) for _ in range(int(rng.integers(0, 3 if tight else 6)))]
        free = int(rng.integers(0, 3) if tight else rng.integers(0, 12))
        out.append(_Scenario(tuple(running), tuple(waiting), free, bs, max_batch, max_step_tokens))
    return out


def _scheduler_check(seed: int, n: int, tight: bool) -> Callable[[Funcs], None]:
    def check(f: Funcs) -> None:
        cases = [("minfer's Engine decides", sc, _engine_plan(sc)) for sc in _scheduler_scenarios(seed, n, tight)]
        _compare_plans(f["schedule_step"], cases)

    return check


CHECKS: dict[str, list[Check]] = {
    "01": [
        ("softmax: values on several shapes", _check_softmax_values),
        ("softmax: large logits stay finite", _check_softmax_stable),
        (
            "causal_attention: a whole sequence (n_q = n_k)",
            _attention_check([(1, 4, 4, 8), (3, 5, 5, 20), (12, 6, 6, 64)], seed=6),
        ),
        ("causal_attention: one new query (n_q = 1)", _attention_check([(3, 1, 9, 20), (2, 1, 1, 5)], seed=7)),
        (
            "causal_attention: queries after a cache (n_q < n_k)",
            _attention_check([(3, 3, 8, 20), (4, 2, 11, 16)], seed=8),
        ),
        (
            "causal_attention: large scores stay finite",
            _attention_check(
                [(3, 5, 5, 20)],
                seed=9,
                scale=300.0,
                nan_hint="NaN or inf on large scores: the softmax overflows; subtract the row max before exp",
            ),
        ),
    ],
    "02": [
        ("layer_norm: values on several shapes", _layer_norm_check(10, specials=False)),
        ("layer_norm: constant rows, tiny variance, another eps", _layer_norm_check(11, specials=True)),
    ],
    "03": [
        ("append_kv: prefill into an empty cache", _append_check([(3, 16, 20, 0, 5), (1, 4, 8, 0, 4)])),
        ("append_kv: one decode token", _append_check([(3, 16, 20, 5, 1), (2, 9, 7, 3, 2)])),
        ("append_kv: the last free slot", _append_check([(3, 16, 20, 15, 1)])),
        ("cached_attention: one new token", _cached_attention_check([(3, 16, 20, 9, 1), (2, 8, 5, 1, 1)])),
        (
            "cached_attention: several new tokens (causal among them)",
            _cached_attention_check([(3, 16, 20, 10, 4), (4, 12, 16, 5, 5)]),
        ),
        ("KV cache: decode loop equals attention without a cache", _check_decode_loop),
    ],
    "04": [
        ("top_k_filter: keeps the k largest", _top_k_check(_top_k_cases)),
        ("top_k_filter: k = 0, k >= n_vocab, ties", _top_k_check(_top_k_edge_cases)),
        ("top_p_filter: keeps the smallest set holding p", _top_p_check(_top_p_cases)),
        ("top_p_filter: p = 1, tiny p, -inf inputs, ties", _top_p_check(_top_p_edge_cases)),
    ],
    "05": [
        ("decode_step_flops: first tokens", _count_check("decode_step_flops", SHORT)),
        ("decode_step_flops: long contexts", _count_check("decode_step_flops", LONG)),
        ("decode_step_bytes: first tokens", _count_check("decode_step_bytes", SHORT)),
        ("decode_step_bytes: long contexts", _count_check("decode_step_bytes", LONG)),
    ],
    "06": [
        (
            "apply_rope: positions 0 .. n_seq - 1",
            _rope_check([(2, 5, 8, 0, 1e4), (3, 7, 20, 0, 1e4), (1, 1, 2, 0, 1e4), (4, 6, 64, 0, 1e4)], seed=21),
        ),
        ("apply_rope: positions after a cache", _rope_check([(3, 4, 20, 9, 1e4), (2, 1, 16, 37, 1e4)], seed=22)),
        ("apply_rope: another theta (Llama 3's 500000)", _rope_check([(3, 6, 20, 5, 5e5), (2, 4, 128, 0, 5e5)], 23)),
        (
            "apply_rope: positions near 4,000 (a long context)",
            _rope_check([(2, 3, 64, 4000, 5e5), (3, 2, 20, 4093, 1e4)], seed=24),
        ),
    ],
    "07": [
        (
            "grouped_decode_attention: 3 and 4 query heads per KV head",
            _gqa_check([(6, 2, 16, 20, 9), (8, 2, 12, 16, 9)], seed=25),
        ),
        (
            "grouped_decode_attention: one KV head (MQA), one per query head (MHA)",
            _gqa_check([(4, 1, 10, 8, 7), (3, 3, 9, 20, 5)], seed=26),
        ),
        (
            "grouped_decode_attention: a cache of one position, a full cache",
            _gqa_check([(6, 3, 8, 12, 1), (9, 3, 11, 64, 11)], seed=27),
        ),
        ("grouped_decode_attention: decode steps equal causal attention", _check_gqa_decode_loop),
    ],
    "08": [
        (
            "slot_of: a shuffled table, positions at the edges of blocks",
            _slot_check([([7, 2, 9], 16, [0, 15, 16, 20, 31, 32, 47]), ([4, 0, 8, 3, 6], 4, list(range(20)))]),
        ),
        ("slot_of: block size 1", _slot_check([([5, 3, 0, 6, 1, 2], 1, list(range(6)))])),
        (
            "write_kv: one position at a time, in place, through the table",
            _write_check(
                [(6, 4, 4, 8, 3, [2, 7, 8, 11]), (10, 3, 4, 5, 4, [0, 3, 4, 9, 15]), (5, 2, 1, 3, 5, [0, 1, 4])], 42
            ),
        ),
        (
            "read_kv: gather through a shuffled table",
            _read_check(
                [
                    (10, 3, 4, 5, 4, 1),
                    (10, 3, 4, 5, 4, 4),
                    (10, 3, 4, 5, 4, 5),
                    (10, 3, 4, 5, 4, 16),
                    (8, 2, 16, 8, 3, 33),
                    (7, 2, 1, 4, 6, 6),
                ],
                43,
            ),
        ),
        ("block table: written position by position, read back in order", _check_block_round_trip),
    ],
    "09": [
        ("schedule_step: the hand-worked cases", _check_scheduler_hand_cases),
        ("schedule_step: decodes and preemption, against minfer's Engine", _scheduler_check(51, 150, tight=True)),
        (
            "schedule_step: chunks, admissions and max_batch, against minfer's Engine",
            _scheduler_check(52, 150, tight=False),
        ),
    ],
}
