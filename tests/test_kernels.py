"""Every Numba kernel against its NumPy twin (minfer.fast.kernels.TWINS), over shapes that include the
odd ones: a head size of 20, one token, a full context, blocks that do not divide the keys, row
and column counts that are not multiples of the vector width or of the kernels' chunks.

Each kernel writes into an `out` filled with NaN first, so a missed element shows up, and must
return None: the output is the array the caller passed in, not a new one. No test asserts a
speed (benchmarks/kernels.py measures them): this machine is shared and its speeds swing.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from minfer.embed import embed as embed_stage
from minfer.embed import lm_head as lm_head_stage
from minfer.fast.kernels import (
    TWINS,
    add,
    decode_attention,
    dequantize_int8,
    gelu,
    layer_norm,
    linear,
    linear_int8,
    lm_head,
    quantize_int8,
)
from minfer.fast.kernels.attention import decode_attention_numpy
from minfer.fast.kernels.quant import Q_MAX, linear_int8_numpy
from minfer.layers import gelu as gelu_numpy
from minfer.layers import layer_norm as layer_norm_numpy
from minfer.layers import linear as linear_numpy
from minfer.rope import RopeScaling, inverse_frequencies

RTOL = 1e-5  # max |got - want| relative to the largest |want|: float32 sums in another order


def rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def check_twin(name: str, args: tuple, out_shape: tuple, *extra) -> np.ndarray:
    """Run TWINS[name]'s kernel into a NaN-filled out and compare it with the reference."""
    kernel, reference = TWINS[name]
    want = reference(*args)
    out = np.full(out_shape, np.nan, np.float32)
    assert kernel(*args, out, *extra) is None  # writes into out, allocates no result
    assert out.shape == want.shape and not np.isnan(out).any(), "some outputs were not written"
    assert rel_diff(out, want) <= RTOL, f"{name}: {rel_diff(out, want):.2e}"
    return out


def test_twins_cover_every_kernel():
    import minfer.fast.kernels as K

    kernels = {n for n in K.__all__ if hasattr(getattr(K, n), "py_func")}  # the @njit functions
    assert kernels == set(TWINS)


# --- elementwise ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_rows, n_embd", [(1, 60), (5, 768), (16, 37), (3, 1)])
def test_layer_norm(n_rows, n_embd):
    x = randn(n_rows, n_embd) * 3 + 2  # a mean far from 0, as in the residual stream
    check_twin("layer_norm", (x, randn(n_embd, seed=1), randn(n_embd, seed=2), 1e-5), x.shape)


@pytest.mark.parametrize("n_rows, n", [(1, 3072), (5, 77), (16, 60), (33, 1001)])  # the last: parallel
def test_gelu(n_rows, n):
    x = randn(n_rows, n) * 4  # into both flat tails of tanh
    check_twin("gelu", (x,), x.shape)


@pytest.mark.parametrize("n_rows, n", [(1, 64), (5, 384), (16, 24), (3, 1)])  # 24: a Qwen3 head's q/k norm
def test_rms_norm(n_rows, n):
    x = randn(n_rows, n) * 3 + 2
    check_twin("rms_norm", (x, randn(n, seed=1), 1e-6), x.shape)


@pytest.mark.parametrize("n_rows, n_hidden", [(1, 96), (5, 77), (33, 1001)])  # the last: parallel
def test_swiglu(n_rows, n_hidden):
    gate_up = randn(n_rows, 2 * n_hidden) * 4
    gate_up[0, 0] = -200.0  # exp(-g) overflows: silu gives -0 times up
    check_twin("swiglu", (gate_up,), (n_rows, n_hidden))


@pytest.mark.parametrize("n_rows, n", [(1, 768), (5, 77)])
def test_add(n_rows, n):
    check_twin("add", (randn(n_rows, n), randn(n_rows, n, seed=1)), (n_rows, n))


def test_elementwise_kernels_work_in_place():
    x, w, b = randn(3, 60) + 5, randn(60, seed=1), randn(60, seed=2)
    for name, args, want in [
        ("gelu", (x,), TWINS["gelu"].reference(x)),
        ("add", (x, w[None, :] * np.ones((3, 1), np.float32)), x + w),
        ("layer_norm", (x, w, b, 1e-5), TWINS["layer_norm"].reference(x, w, b)),
        ("rms_norm", (x, w, 1e-6), TWINS["rms_norm"].reference(x, w, 1e-6)),
    ]:
        inout = args[0].copy()
        TWINS[name].kernel(inout, *args[1:], inout)
        assert rel_diff(inout, want) <= RTOL, name


NO_SCALE = np.zeros(0, np.float32)  # float32 weights: no per-row scale


@pytest.mark.parametrize("n_seq, start", [(1, 0), (1, 99), (7, 3)])
def test_embed(n_seq, start):
    wte, wpe = randn(1001, 60), randn(100 + n_seq, 60, seed=1)
    ids = np.random.default_rng(2).integers(0, 1001, n_seq)
    positions = np.arange(start, start + n_seq)
    out = check_twin("embed", (ids, wte, NO_SCALE, wpe, positions), (n_seq, 60))
    np.testing.assert_array_equal(out, embed_stage(ids, wte, wpe, start))  # the stage itself, exactly


def test_embed_rows_at_their_own_positions_and_int8_rows():
    wte, wpe = randn(1001, 60), randn(100, 60, seed=1)
    ids, positions = np.array([5, 5, 900]), np.array([99, 0, 42])  # a batch: each row its own sequence
    out = check_twin("embed", (ids, wte, NO_SCALE, wpe, positions), (3, 60))
    np.testing.assert_array_equal(out, wte[ids] + wpe[positions])
    wte_q, scale = quantize_int8(wte, axis=1)
    out = check_twin("embed", (ids, wte_q, scale, wpe, positions), (3, 60))
    assert rel_diff(out, dequantize_int8(wte_q, scale, 1)[ids] + wpe[positions]) <= RTOL


# --- matrix-vector products ------------------------------------------------------------------

LINEAR_SHAPES = [  # (n_rows, n_in, n_out)
    (1, 60, 180),  # c_attn of n_embd 60: n_out below one 256-column chunk
    (1, 771, 515),  # n_in % 4 = 3 (the tail loop), n_out just past two chunks
    (2, 37, 300),
    (5, 129, 77),
    (16, 60, 1000),  # the largest batch the few-row path is for
    (1, 3, 1),
]


@pytest.mark.parametrize("n_rows, n_in, n_out", LINEAR_SHAPES)
def test_linear(n_rows, n_in, n_out):
    check_twin("linear", (randn(n_rows, n_in), randn(n_in, n_out, seed=1), randn(n_out, seed=2)), (n_rows, n_out))


@pytest.mark.parametrize("n_rows, n_embd, n_vocab", [(1, 60, 4096), (2, 20, 50257), (5, 33, 1001), (16, 60, 4096)])
def test_lm_head(n_rows, n_embd, n_vocab):
    x, wte = randn(n_rows, n_embd), randn(n_vocab, n_embd, seed=1)
    out = check_twin("lm_head", (x, wte, NO_SCALE), (n_rows, n_vocab))
    assert rel_diff(out, lm_head_stage(x, wte)) <= RTOL


# --- int8 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((60, 180), 0), ((1001, 20), 1), ((3, 37, 50), 1)])
def test_quantize_int8_round_trip_is_within_half_a_step(shape, axis):
    w = randn(*shape) * np.linspace(0.01, 3, shape[-1], dtype=np.float32)  # channels of many sizes
    w_q, scale = quantize_int8(w, axis)
    assert w_q.dtype == np.int8 and scale.dtype == np.float32
    assert scale.shape == tuple(n for i, n in enumerate(shape) if i != axis)
    assert np.abs(w_q).max(axis=axis).min() == Q_MAX  # every channel's largest weight uses the full range
    err = np.abs(w - dequantize_int8(w_q, scale, axis))
    assert (err <= np.expand_dims(scale, axis) / 2 * (1 + 1e-6)).all()


def test_quantize_int8_zero_channel_gets_scale_one():
    w = randn(8, 5)
    w[:, 2] = 0
    w_q, scale = quantize_int8(w, axis=0)
    assert scale[2] == 1 and (w_q[:, 2] == 0).all()
    assert (dequantize_int8(w_q, scale, 0)[:, 2] == 0).all()


@pytest.mark.parametrize("n_rows, n_in, n_out", LINEAR_SHAPES)
def test_linear_int8(n_rows, n_in, n_out):
    x, b = randn(n_rows, n_in), randn(n_out, seed=2)
    w = randn(n_in, n_out, seed=1)
    w[:, n_out // 2] = 0  # an all-zero output channel
    w_q, scale = quantize_int8(w, axis=0)
    out = check_twin("linear_int8", (x, w_q, scale, b), (n_rows, n_out))
    # and equal to dequantizing first, then the float32 reference
    assert rel_diff(out, linear_numpy(x, dequantize_int8(w_q, scale, 0), b)) <= RTOL
    np.testing.assert_array_equal(out[:, n_out // 2], b[n_out // 2])


@pytest.mark.parametrize("n_rows, n_embd, n_vocab", [(1, 60, 4096), (2, 20, 50257), (16, 33, 1001)])
def test_lm_head_int8(n_rows, n_embd, n_vocab):
    x, wte = randn(n_rows, n_embd), randn(n_vocab, n_embd, seed=1)
    wte[7] = 0
    wte_q, scale = quantize_int8(wte, axis=1)
    out = check_twin("lm_head", (x, wte_q, scale), (n_rows, n_vocab))
    assert rel_diff(out, x @ dequantize_int8(wte_q, scale, 1).T) <= RTOL


# --- attention -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_head, d_head, max_seq, length",
    [
        (3, 20, 256, 1),  # the first token: softmax of one score
        (3, 20, 256, 256),  # a full cache
        (12, 64, 300, 77),  # GPT-2's heads, past the parallel threshold
        (12, 64, 1024, 1024),
    ],
)
def test_decode_attention(n_head, d_head, max_seq, length):
    q, k, v = randn(n_head, d_head), randn(n_head, max_seq, d_head, seed=1), randn(n_head, max_seq, d_head, seed=2)
    scores = np.empty((n_head, max_seq), np.float32)
    check_twin("decode_attention", (q, k, v, length), (n_head, d_head), scores)


def test_decode_attention_ignores_the_cache_past_length():
    q, k, v = randn(3, 20), randn(3, 50, 20, seed=1), randn(3, 50, 20, seed=2)
    k[:, 10:], v[:, 10:] = np.nan, np.nan  # unwritten cache positions
    out = np.empty((3, 20), np.float32)
    TWINS["decode_attention"].kernel(q, k, v, 10, out, np.empty((3, 50), np.float32))
    assert not np.isnan(out).any()


@pytest.mark.parametrize(
    "n_batch, slots, lengths, d_head",
    [
        (1, [0], [1], 20),  # one sequence, its first token
        (5, [4, 0, 2], [7, 300, 1], 20),  # ragged rows in any slot order, one full cache
        (8, list(range(8)), [77] * 8, 64),  # a whole batch past the parallel threshold
    ],
)
def test_batch_decode_attention(n_batch, slots, lengths, d_head):
    n_head, max_seq, n_rows = 3, 300, len(slots)
    k, v = randn(n_batch, n_head, max_seq, d_head, seed=1), randn(n_batch, n_head, max_seq, d_head, seed=2)
    slots, lengths = np.array(slots), np.array(lengths)
    q, scores = randn(n_rows, n_head, d_head), np.empty((n_rows, n_head, max_seq), np.float32)
    out = check_twin("batch_decode_attention", (q, k, v, slots, lengths), (n_rows, n_head, d_head), scores)
    for b, n in zip(slots, lengths):  # unwritten positions past each row's own length
        k[b, :, n:], v[b, :, n:] = np.nan, np.nan
    TWINS["batch_decode_attention"].kernel(q, k, v, slots, lengths, masked := np.empty_like(out), scores)
    np.testing.assert_array_equal(masked, out)  # are never read
    for r, (b, n) in enumerate(zip(slots, lengths)):  # and each row is one sequence's decode attention
        assert rel_diff(out[r], decode_attention_numpy(q[r], k[b], v[b], n)) <= RTOL


@pytest.mark.parametrize(
    "n_head, d_head, n_q, n_k, block",
    [
        (3, 20, 1, 1, 64),  # one token, nothing cached
        (3, 20, 256, 256, 64),  # a full context, blocks dividing it
        (3, 20, 256, 256, 48),  # blocks that do not divide it
        (3, 20, 5, 300, 64),  # a few new tokens after a cached prefix
        (3, 20, 17, 40, 7),
        (12, 64, 100, 130, 32),
        (2, 8, 9, 9, 1),  # one-by-one blocks: the online softmax at its most incremental
    ],
)
def test_prefill_attention(n_head, d_head, n_q, n_k, block):
    q, k, v = randn(n_head, n_q, d_head), randn(n_head, n_k, d_head, seed=1), randn(n_head, n_k, d_head, seed=2)
    check_twin("prefill_attention", (q * 3, k, v), (n_head, n_q, d_head), block)  # * 3: peaked softmax


def test_prefill_attention_never_reads_the_future():
    q, k, v = randn(2, 8, 16), randn(2, 8, 16, seed=1), randn(2, 8, 16, seed=2)
    want = np.empty_like(q)
    TWINS["prefill_attention"].kernel(q, k, v, want, 3)
    k[:, -1], v[:, -1] = np.nan, np.nan  # only the last query may look at the last key
    got = np.empty_like(q)
    TWINS["prefill_attention"].kernel(q, k, v, got, 3)
    np.testing.assert_array_equal(got[:, :-1], want[:, :-1])


@pytest.mark.parametrize(
    "n_head, n_kv_head, d_head, slots, lengths",
    [
        (4, 1, 24, [0], [1]),  # multi-query attention, d_head not a power of two, the first token
        (8, 2, 48, [2, 0, 1], [7, 300, 1]),  # the classroom-llama's heads, ragged rows in any slot order
        (3, 3, 20, [1, 0], [300, 5]),  # groups of one: GPT-2's case
        (8, 2, 64, list(range(4)), [200] * 4),  # a batch past the parallel threshold
    ],
)
def test_grouped_decode_attention(n_head, n_kv_head, d_head, slots, lengths):
    n_batch, max_seq, n_rows = max(slots) + 1, 300, len(slots)
    k = randn(n_batch, n_kv_head, max_seq, d_head, seed=1)
    v = randn(n_batch, n_kv_head, max_seq, d_head, seed=2)
    slots, lengths = np.array(slots), np.array(lengths)
    q, scores = randn(n_rows, n_head, d_head) * 3, np.empty((n_rows, n_head, max_seq), np.float32)
    args = (q, k, v, slots, lengths)
    out = check_twin("grouped_decode_attention", args, (n_rows, n_head, d_head), scores)
    group = n_head // n_kv_head  # the same as GPT-2's kernel over KV heads repeated for their groups
    repeated = TWINS["batch_decode_attention"].reference(
        q, *(np.repeat(a, group, axis=1) for a in (k, v)), slots, lengths
    )
    assert rel_diff(out, repeated) <= RTOL
    for b, n in zip(slots, lengths):  # unwritten positions past each row's own length
        k[b, :, n:], v[b, :, n:] = np.nan, np.nan
    TWINS["grouped_decode_attention"].kernel(*args, masked := np.empty_like(out), scores)
    np.testing.assert_array_equal(masked, out)  # are never read


# --- RoPE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d_head, scaling",
    [
        (24, None),  # not a power of two (Qwen3's fixture)
        (16, RopeScaling("llama3", 4.0, 1.0, 4.0, 32)),  # the tiny-llama-mqa fixture's
        (128, RopeScaling("linear", 2.0)),
    ],
)
def test_rope_table(d_head, scaling):
    inv_freq = inverse_frequencies(d_head, 10000.0, scaling)
    positions = np.array([0, 1, 63, 4095, 131071])  # to Llama 3's context, where the angles are large
    out = check_twin("rope_table", (positions, inv_freq), (2, len(positions), d_head))
    np.testing.assert_allclose(out, TWINS["rope_table"].reference(positions, inv_freq), rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_rows, n_heads, d_head", [(1, 1, 24), (5, 8, 48), (3, 2, 2)])
def test_rope(n_rows, n_heads, d_head):
    x = randn(n_rows, n_heads, d_head)
    table = TWINS["rope_table"].reference(np.array([3, 0, 77, 9, 1000])[:n_rows], inverse_frequencies(d_head, 1e4))
    out = check_twin("rope", (x, table), x.shape)
    inout = x.copy()
    TWINS["rope"].kernel(inout, table, inout)  # in place, as the decode step calls it
    np.testing.assert_array_equal(inout, out)


# --- called from compiled code ---------------------------------------------------------------


@njit(cache=True)
def _tiny_decode_layer(
    x, ln_w, ln_b, w_qkv, b_qkv, w_q, scale, b_out, k_cache, v_cache, length, h, qkv, q, att, scores, logits, wte
):  # every kernel from inside @njit code
    layer_norm(x, ln_w, ln_b, 1e-5, h)
    linear(h, w_qkv, b_qkv, qkv)
    n_head, d_head = q.shape
    for head in range(n_head):
        for i in range(d_head):
            q[head, i] = qkv[0, head * d_head + i]
    decode_attention(q, k_cache, v_cache, length, att.reshape(n_head, d_head), scores)
    linear_int8(att, w_q, scale, b_out, h)
    gelu(h, h)
    add(x, h, x)
    lm_head(x, wte, np.zeros(0, np.float32), logits)


def test_kernels_can_be_called_from_njit_code():
    n_head, d_head, n_embd = 3, 20, 60
    x, w_qkv = randn(1, n_embd), randn(n_embd, 3 * n_embd, seed=1) * 0.1
    k, v = randn(n_head, 16, d_head, seed=2), randn(n_head, 16, d_head, seed=3)
    w_q, scale = quantize_int8(randn(n_embd, n_embd, seed=4) * 0.1, axis=0)
    ln_w, ln_b, b_qkv, b_out = np.ones(n_embd, np.float32), randn(n_embd), randn(3 * n_embd), randn(n_embd)
    wte = randn(100, n_embd, seed=5)
    # the same steps, by the NumPy twins
    h = layer_norm_numpy(x, ln_w, ln_b)
    q = linear_numpy(h, w_qkv, b_qkv)[0, :n_embd].reshape(n_head, d_head)
    att = decode_attention_numpy(q, k, v, 9).reshape(1, n_embd)
    want_x = x + gelu_numpy(linear_int8_numpy(att, w_q, scale, b_out))
    want = want_x @ wte.T

    logits = np.empty((1, 100), np.float32)
    _tiny_decode_layer(
        x,
        ln_w,
        ln_b,
        w_qkv,
        b_qkv,
        w_q,
        scale,
        b_out,
        k,
        v,
        9,
        np.empty((1, n_embd), np.float32),
        np.empty((1, 3 * n_embd), np.float32),
        np.empty((n_head, d_head), np.float32),
        np.empty((1, n_embd), np.float32),
        np.empty((n_head, 16), np.float32),
        logits,
        wte,
    )
    assert rel_diff(x, want_x) <= RTOL  # x was updated in place
    assert rel_diff(logits, want) <= RTOL


# --- attention through block tables ---------------------------------------------------------


def paged_copy(k: np.ndarray, lengths: np.ndarray, block_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first lengths[r] keys of a contiguous k [n_rows, n_kv_head, max_seq, d_head]
    copied position by position into blocks of a pool, in a shuffled order. Everything else
    in the pool is NaN: a spare block (which pads every table past its row's last block) and
    the unfilled tail of each row's last block, so a read of either shows in the output.
    -> (pool [n_blocks, n_kv_head, block_size, d_head], tables [n_rows, n_table] int32)"""
    n_rows, n_kv_head, _, d_head = k.shape
    n_used = [-(-int(n) // block_size) for n in lengths]  # blocks each row fills
    order = np.random.default_rng(seed).permutation(sum(n_used) + 1)  # + 1: the spare
    spare, order = order[-1], order[:-1]
    tables = np.full((n_rows, max(n_used) + 1), spare, np.int32)  # [n_rows, n_table], padded with the spare
    pool = np.full((len(order) + 1, n_kv_head, block_size, d_head), np.nan, np.float32)
    for r, n in enumerate(lengths):
        tables[r, : n_used[r]], order = order[: n_used[r]], order[n_used[r] :]
        for p in range(n):  # the lookup written out, independent of minfer.serving.paged
            pool[tables[r, p // block_size], :, p % block_size] = k[r, :, p]
    return pool, tables


@pytest.mark.parametrize(
    "block_size, n_head, n_kv_head, d_head, lengths",
    [
        (1, 3, 3, 20, [1, 5, 3]),  # one position per block; groups of one (GPT-2's case)
        (3, 8, 2, 24, [7, 9, 1]),  # a part-filled last block, exactly full blocks, one key
        (16, 8, 4, 20, [16, 33, 48, 5]),  # vLLM's block size; groups of two
        (4, 4, 1, 48, [13]),  # multi-query attention, one row
        (16, 8, 2, 64, [200, 150, 177, 64]),  # past the parallel threshold
    ],
)
def test_paged_decode_attention(block_size, n_head, n_kv_head, d_head, lengths):
    n_rows, lengths = len(lengths), np.array(lengths)
    k = randn(n_rows, n_kv_head, int(lengths.max()), d_head, seed=1)  # each row's own contiguous cache
    v = randn(n_rows, n_kv_head, int(lengths.max()), d_head, seed=2)
    (k_pool, tables), (v_pool, _) = paged_copy(k, lengths, block_size, 3), paged_copy(v, lengths, block_size, 3)
    q, scores = randn(n_rows, n_head, d_head) * 3, np.empty((n_rows, n_head, int(lengths.max())), np.float32)
    out = check_twin("paged_decode_attention", (q, k_pool, v_pool, tables, lengths), (n_rows, n_head, d_head), scores)
    # no NaN came through (check_twin), so neither a table's padding nor a block's tail was read; and
    # it is attention over the same keys held contiguously
    contiguous = TWINS["grouped_decode_attention"].reference(q, k, v, np.arange(n_rows), lengths)
    assert rel_diff(out, contiguous) <= RTOL
