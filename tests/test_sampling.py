"""Sampling: transformers' distributions, seeded draws that follow them, and every edge.

The fixtures (tests/fixtures/sampling.*) come from make_sampling_fixtures.py, which runs
transformers' own logits processors; the statistics and edge cases need no reference.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file

from minfer.errors import InvalidInputError
from minfer.sampling import (
    SamplingParams,
    apply_penalties,
    apply_temperature,
    distribution,
    inverse_cdf,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)

PROB_ATOL = 1e-6  # |minfer - transformers| per probability; the fixture's own float32 error is < 5e-7
HF = load_file(str(FIXTURES / "sampling.safetensors"))
HF_CASES = json.loads((FIXTURES / "sampling.json").read_text())["cases"]
HF_GRID = [(case, i) for case, info in HF_CASES.items() for i in range(len(info["grid"]))]

LOGITS10 = np.array([1.2, -0.3, 0.7, 2.1, -1.5, 0.0, 1.9, -0.8, 0.4, 1.0])  # [10], no ties
HISTORY10 = [3, 3, 6, 0, 4]


def assert_is_distribution(probs: np.ndarray) -> None:
    assert probs.dtype == np.float64 and np.isfinite(probs).all() and (probs >= 0).all()
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def one_hot(i: int, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[i] = 1.0
    return out


# --- transformers' distributions ---------------------------------------------------------------


@pytest.mark.parametrize("case, i", HF_GRID, ids=[f"{c}-{i}-{HF_CASES[c]['grid'][i]}" for c, i in HF_GRID])
def test_distribution_matches_transformers(case, i):
    params = SamplingParams(**HF_CASES[case]["grid"][i])
    got = distribution(HF[f"{case}.logits"], params, HF[f"{case}.history"])  # [n_vocab]
    want = HF[f"{case}.probs"][i]  # [n_vocab]
    assert_is_distribution(got)
    assert np.abs(got - want).max() <= PROB_ATOL
    assert (got[want > 0] > 0).all()  # every token transformers keeps, minfer keeps
    assert (got[want == 0] < 1e-30).all()  # and the rest were filtered (0) or underflow float32


def test_the_fixture_penalties_change_the_greedy_token():
    """Guards the fixture's point: its history makes the penalized argmax differ."""
    grid = HF_CASES["small"]["grid"]
    plain = grid.index({"temperature": 0.0})
    penalized = grid.index({"temperature": 0.0, "repetition_penalty": 1.3})
    probs = HF["small.probs"]
    assert probs[plain].argmax() != probs[penalized].argmax()


# --- seeded draws follow the distribution -----------------------------------------------------


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi-square(df) = 1 - P(df/2, x/2), P the regularized lower incomplete
    gamma function, summed by its power series (Abramowitz & Stegun 6.5.29):
    P(a, z) = z^a e^-z / Gamma(a) * sum_n z^n / (a (a+1) ... (a+n))."""
    a, z = df / 2, x / 2
    term = total = 1 / a
    n = 0
    while term > 1e-17 * total:
        n += 1
        term *= z / (a + n)
        total += term
    return 1 - math.exp(a * math.log(z) - z - math.lgamma(a)) * total


def test_chi2_sf_against_closed_form_and_table():
    assert chi2_sf(5.0, 2) == pytest.approx(math.exp(-2.5), rel=1e-12)  # df=2: exactly e^(-x/2)
    assert chi2_sf(27.877, 9) == pytest.approx(0.001, rel=1e-3)  # NIST/SEMATECH e-Handbook 1.3.6.7.4
    assert chi2_sf(16.919, 9) == pytest.approx(0.05, rel=1e-3)  # same table


def fit_p_value(draws: list[int], probs: np.ndarray) -> float:
    """Pearson's chi-square goodness of fit of `draws` to `probs` [n]; draws outside the
    support fail outright."""
    counts = np.bincount(draws, minlength=len(probs))  # [n]
    support = probs > 0
    assert counts[~support].sum() == 0  # never a token with probability 0
    expected = len(draws) * probs[support]
    statistic = float(((counts[support] - expected) ** 2 / expected).sum())
    return chi2_sf(statistic, df=int(support.sum()) - 1)


def test_seeded_draws_fit_the_distribution():
    """20,000 draws through sample(), penalties and filters on: the counts fit distribution()."""
    params = SamplingParams(temperature=0.7, top_k=8, min_p=0.02, repetition_penalty=1.3, presence_penalty=0.5)
    rng = np.random.default_rng(2024)
    draws = [sample(LOGITS10, params, HISTORY10, rng=rng) for _ in range(20_000)]
    assert fit_p_value(draws, distribution(LOGITS10, params, HISTORY10)) > 1e-3


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=1.0),
        SamplingParams(temperature=2.0, top_p=0.9),
        SamplingParams(temperature=0.3, frequency_penalty=-1.0),
    ],
)
def test_inverse_cdf_draws_fit_the_distribution(params):
    """The same check on more shapes, calling inverse_cdf directly (sample() is just
    distribution() then inverse_cdf(probs, rng.random()): test_sample_is_inverse_cdf_of_one_draw)."""
    probs = distribution(LOGITS10, params, HISTORY10)  # [10]
    draws = [inverse_cdf(probs, u) for u in np.random.default_rng(11).random(20_000)]
    assert fit_p_value(draws, probs) > 1e-3


def test_sample_is_inverse_cdf_of_one_draw():
    """The draw method is part of the contract: one rng.random() per token, through the CDF."""
    params = SamplingParams(
        temperature=1.3,
        top_k=7,
        top_p=0.95,
        min_p=0.01,
        repetition_penalty=1.2,
        frequency_penalty=0.2,
        presence_penalty=0.1,
    )
    rng, twin = np.random.default_rng(99), np.random.default_rng(99)
    probs = distribution(LOGITS10, params, HISTORY10)
    assert [sample(LOGITS10, params, HISTORY10, rng=rng) for _ in range(300)] == [
        inverse_cdf(probs, twin.random()) for _ in range(300)
    ]


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=1.5, top_k=3),
        SamplingParams(temperature=1.5, top_p=0.6),
        SamplingParams(temperature=1.5, min_p=0.4),
        SamplingParams(temperature=1.0, top_k=5, top_p=0.8, min_p=0.1, frequency_penalty=0.8),
    ],
)
def test_draws_never_leave_the_support(params):
    logits = LOGITS10.copy()
    logits[[1, 7]] = -np.inf
    support = set(np.flatnonzero(distribution(logits, params, HISTORY10)))
    assert 1 <= len(support) < 10
    rng = np.random.default_rng(0)
    drawn = {sample(logits, params, HISTORY10, rng=rng) for _ in range(1000)}
    assert drawn <= support


class FixedRng:
    """A stand-in Generator whose random() returns chosen numbers, to aim at slice edges."""

    def __init__(self, *values: float):
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_inverse_cdf_skips_zero_probability_tokens_at_the_edges():
    probs = np.array([0.0, 0.25, 0.0, 0.0, 0.75, 0.0])  # zero-width slices everywhere
    largest_u = np.nextafter(1.0, 0.0)
    assert inverse_cdf(probs, 0.0) == 1
    assert inverse_cdf(probs, 0.25) == 4  # exactly on an edge: the slice to the right
    assert inverse_cdf(probs, largest_u) == 4  # never the trailing zero
    logits = np.array([0.0, -np.inf, 0.0, -np.inf])
    assert sample(logits, SamplingParams(temperature=1.0), rng=FixedRng(largest_u)) == 2
    assert sample(logits, SamplingParams(temperature=1.0), rng=FixedRng(0.5)) == 2


def test_inverse_cdf_total_rounding_up_takes_the_last_token():
    probs = np.array([0.1] * 10)  # sums to 0.9999999999999999 in float64
    assert inverse_cdf(probs, 1.0) == 9  # u * total == total (u < 1 in use; rounding can reach it)
    assert inverse_cdf(probs, np.nextafter(1.0, 0.0)) == 9


def test_every_edge_of_a_filtered_distribution_lands_in_the_support():
    probs = distribution(LOGITS10, SamplingParams(temperature=1.0, top_k=4), HISTORY10)  # [10]
    edges = np.cumsum(probs) / probs.sum()  # [10] includes the zero-width slices
    us = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 2)])  # on and either side
    us = np.clip(us, 0, np.nextafter(1.0, 0.0))  # u is in [0, 1)
    assert all(probs[inverse_cdf(probs, u)] > 0 for u in us)


def test_same_seed_same_draws_different_seed_different_draws():
    params = SamplingParams(temperature=1.0)

    def draws(seed):
        rng = np.random.default_rng(seed)
        return [sample(LOGITS10, params, HISTORY10, rng=rng) for _ in range(40)]

    assert draws(7) == draws(7) != draws(8)
    seeded = SamplingParams(temperature=1.0, seed=3)  # no rng: a fresh one from params.seed
    assert len({sample(LOGITS10, seeded) for _ in range(5)}) == 1


def test_seeded_draws_are_pinned():
    """NumPy's PCG64 stream is the same on every platform, so these ids must never change."""
    rng = np.random.default_rng(0)
    assert [sample(LOGITS10, SamplingParams(temperature=1.0), rng=rng) for _ in range(12)] == [
        6,
        3,
        0,
        0,
        6,
        9,
        6,
        6,
        5,
        9,
        6,
        0,
    ]


# --- greedy ------------------------------------------------------------------------------------


def test_greedy_takes_the_argmax_and_leaves_the_rng_alone():
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    assert sample(LOGITS10, SamplingParams(), rng=rng) == 3
    assert rng.bit_generator.state == before
    assert sample(np.array([1.0, 5.0, 5.0, 2.0]), SamplingParams()) == 1  # first index on ties


def test_greedy_with_repetition_penalty_takes_the_penalized_argmax():
    logits = np.array([3.0, 2.9, -1.0, 0.5])
    params = SamplingParams(repetition_penalty=1.3)
    assert sample(logits, params, history=[0]) == 1  # 3.0 / 1.3 = 2.31 < 2.9
    assert sample(logits, params, history=[2]) == 0
    negative = np.array([-0.5, -0.6])
    assert sample(negative, SamplingParams(repetition_penalty=2.0), history=[0]) == 1  # -0.5 * 2 < -0.6
    assert sample(logits, SamplingParams(frequency_penalty=0.1), history=[0, 0]) == 1  # 3.0 - 0.2 < 2.9
    np.testing.assert_array_equal(distribution(logits, params, [0]), one_hot(1, 4))


@pytest.mark.parametrize("temperature", [1e-8, 1e-30, 1e-300, 5e-324])
def test_tiny_temperature_equals_greedy(temperature):
    logits = np.concatenate([LOGITS10, [-np.inf], 50 * LOGITS10])  # [21] a -inf, large logits
    for history in ([], HISTORY10):
        params = SamplingParams(temperature=temperature, repetition_penalty=1.2)
        greedy = distribution(logits, SamplingParams(repetition_penalty=1.2), history)
        np.testing.assert_array_equal(distribution(logits, params, history), greedy)
        assert sample(logits, params, history, rng=np.random.default_rng(0)) == int(greedy.argmax())


# --- -inf logits and filters that leave one token ---------------------------------------------

PARAM_SWEEP = [
    SamplingParams(),
    SamplingParams(temperature=2.0),
    SamplingParams(temperature=0.5, top_k=3),
    SamplingParams(temperature=1.0, top_p=0.3),
    SamplingParams(temperature=1.0, min_p=0.5),
    SamplingParams(temperature=1.0, repetition_penalty=0.5, frequency_penalty=-2.0, presence_penalty=-2.0),
    SamplingParams(temperature=1.0, repetition_penalty=1.3, frequency_penalty=2.0, presence_penalty=2.0),
]


@pytest.mark.parametrize("params", PARAM_SWEEP)
def test_neg_inf_logits_stay_at_probability_zero(params):
    logits = LOGITS10.copy()
    logits[[0, 3, 9]] = -np.inf  # including the most likely token
    history = [0, 0, 3, 6]  # penalties on -inf tokens (negative ones too) must not revive them
    probs = distribution(logits, params, history)
    assert_is_distribution(probs)
    assert (probs[[0, 3, 9]] == 0).all()


@pytest.mark.parametrize("params", PARAM_SWEEP)
def test_all_but_one_neg_inf(params):
    logits = np.full(50, -np.inf)
    logits[17] = -3.0
    np.testing.assert_array_equal(distribution(logits, params, [17, 17, 4]), one_hot(17, 50))
    assert sample(logits, params, [17], rng=np.random.default_rng(1)) == 17


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=1.0, top_k=1),
        SamplingParams(temperature=1.0, top_p=1e-9),
        SamplingParams(temperature=1.0, min_p=0.99),
        SamplingParams(temperature=3.0, top_k=4, top_p=0.05),
    ],
)
def test_filters_leaving_one_token(params):
    np.testing.assert_array_equal(distribution(LOGITS10, params), one_hot(3, 10))
    rng = np.random.default_rng(0)
    assert {sample(LOGITS10, params, rng=rng) for _ in range(50)} == {3}


# --- each step on its own ----------------------------------------------------------------------


def test_apply_penalties():
    logits = np.array([2.0, -2.0, 1.0, 0.0])
    np.testing.assert_allclose(
        apply_penalties(logits, [0, 0, 0, 1], repetition_penalty=2.0), [1.0, -4.0, 1.0, 0.0]
    )  # each token once, however often it occurs
    np.testing.assert_allclose(
        apply_penalties(logits, [0, 0, 0, 1], frequency_penalty=0.5), [0.5, -2.5, 1.0, 0.0]
    )  # once per occurrence
    np.testing.assert_allclose(
        apply_penalties(logits, [0, 0, 0, 1], presence_penalty=0.5), [1.5, -2.5, 1.0, 0.0]
    )  # once per token
    np.testing.assert_array_equal(apply_penalties(logits, []), logits)


def test_apply_temperature_cannot_overflow():
    out = apply_temperature(np.array([1.0, 3.0, -np.inf]), 1e-320)  # -2 / 1e-320 overflows to -inf
    assert out[1] == 0 and out[0] == -np.inf and out[2] == -np.inf
    np.testing.assert_allclose(apply_temperature(np.array([1.0, 3.0]), 2.0), [-1.0, 0.0])


def test_filters_follow_transformers_rules():
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    # top-p 0.6: sorted upward, cumulative 0.2, 0.5, 1.0; removed where <= 1 - 0.6 = 0.4
    assert np.isfinite(top_p_filter(logits, 0.6)).tolist() == [True, True, False]
    assert np.isfinite(top_p_filter(logits, 1.0)).all()
    # min-p 0.5: keep probabilities >= 0.5 * 0.5
    assert np.isfinite(min_p_filter(logits, 0.5)).tolist() == [True, True, False]
    assert np.isfinite(top_k_filter(logits, 2)).tolist() == [True, True, False]
    # a token tied with the k-th largest stays, as in transformers' TopKLogitsWarper
    assert np.isfinite(top_k_filter(np.array([1.0, 2.0, 2.0, 0.0]), 1)).tolist() == [False, True, True, False]
    for off in (top_k_filter(logits, 0), top_p_filter(logits, 1.0), min_p_filter(logits, 0.0)):
        np.testing.assert_array_equal(off, logits)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("temperature", -0.5),
        ("temperature", float("nan")),
        ("temperature", float("inf")),
        ("temperature", "0.7"),
        ("top_k", -1),
        ("top_k", 2.5),
        ("top_k", True),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_p", -0.1),
        ("top_p", float("nan")),
        ("min_p", -0.1),
        ("min_p", 1.0),
        ("min_p", float("nan")),
        ("repetition_penalty", 0.0),
        ("repetition_penalty", -1.3),
        ("repetition_penalty", float("inf")),
        ("frequency_penalty", 2.5),
        ("frequency_penalty", -2.01),
        ("frequency_penalty", float("nan")),
        ("presence_penalty", 3.0),
        ("presence_penalty", float("-inf")),
        ("seed", -3),
        ("seed", 1.5),
    ],
)
def test_bad_parameters_are_named(name, value):
    with pytest.raises(InvalidInputError, match=rf"^{name}=") as info:
        SamplingParams(**{name: value})
    assert repr(value) in str(info.value) and "must be" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_range_boundaries_are_accepted():
    SamplingParams(
        temperature=0,
        top_k=0,
        top_p=1.0,
        min_p=0.0,
        repetition_penalty=1e-3,
        frequency_penalty=-2,
        presence_penalty=2,
        seed=0,
    )
    SamplingParams(temperature=np.float32(0.5), top_k=np.int64(5), top_p=1e-12, min_p=0.999, seed=np.int64(1))


@pytest.mark.parametrize(
    "logits, history, message",
    [
        (np.zeros((2, 5)), [], "shape"),
        (np.array([0.0, np.nan]), [], "NaN"),
        (np.array([0.0, np.inf]), [], r"\+inf"),
        (np.full(4, -np.inf), [], "finite"),
        (np.zeros(4), [1, 4], "history"),
        (np.zeros(4), [-1], "history"),
    ],
)
def test_bad_logits_or_history(logits, history, message):
    with pytest.raises(InvalidInputError, match=message):
        sample(logits, SamplingParams(temperature=1.0), history)


def test_float32_logits_and_array_history():
    probs = distribution(
        LOGITS10.astype(np.float32), SamplingParams(temperature=0.8, top_p=0.9), np.array(HISTORY10, dtype=np.int32)
    )
    assert_is_distribution(probs)
