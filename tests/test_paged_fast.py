"""The Numba backend through block tables: prefill in chunks into a paged KV cache, then decode
several sequences in one step, reading the blocks in place. Both must give what the contiguous
cache gives (model.prefill and model.decode on a KVCache) and what the NumPy reference gives
through the same tables (NumpyBackend.prefill_paged / decode_paged, which gather the blocks).
And a bad table is an error before any kernel runs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import FIXTURES, relative_diff

import minfer
from minfer.checkpoints.store import WEIGHTS_DIR
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.fast import decode_step
from minfer.kvcache import BatchKVCache
from minfer.serving.paged import PagedKVCache, PagedSequence

RTOL = 1e-4  # max |difference| relative to the largest |logit|: float32 sums in another order
BLOCK_SIZE = 4  # small, so prompts span several blocks and end part-way through one
PROMPTS = [list(range(1, 12)), [7, 3, 9, 200], [5]]  # 11, 4 (one full block) and 1 token(s)
CHUNKS = [5, 1, 4]  # prefill chunk sizes, the last chunk taking whatever is left
N_STEPS = 3  # decode steps, every sequence in each
MODELS = ["classroom", "tiny-gpt2", "classroom-llama", "tiny-llama-mqa", "tiny-qwen3"]


def path(name: str):
    return WEIGHTS_DIR / name if name.startswith("classroom") else FIXTURES / name


@pytest.fixture(scope="module", params=MODELS)
def models(request) -> tuple[minfer.Model, minfer.Model]:
    """(the Numba model, the NumPy reference) of one checkpoint."""
    return minfer.load_model(path(request.param), backend="numba"), minfer.load_model(path(request.param))


def shuffled_tables(n_seq: int, n_table: int, seed: int = 0) -> tuple[int, np.ndarray]:
    """n_table blocks for each of n_seq sequences, in a shuffled order of a pool with two blocks to
    spare. -> (n_blocks, tables [n_seq, n_table])"""
    n_blocks = n_seq * n_table + 2
    return n_blocks, np.random.default_rng(seed).permutation(n_blocks)[: n_seq * n_table].reshape(n_seq, n_table)


def chunks(ids: list[int]) -> list[list[int]]:
    """ids cut at CHUNKS' sizes (fewer pieces for a short prompt)."""
    out, start = [], 0
    for size in CHUNKS:
        if start < len(ids):
            out.append(ids[start : start + size])
            start += size
    if start < len(ids):
        out[-1] = out[-1] + ids[start:]
    return out


def test_paged_prefill_and_decode_equal_the_contiguous_cache_and_the_reference(models):
    fast, ref = models
    n_table = -(-(max(map(len, PROMPTS)) + N_STEPS) // BLOCK_SIZE)  # room for the longest prompt and its steps
    n_blocks, tables = shuffled_tables(len(PROMPTS), n_table)
    pools = {m: PagedKVCache.empty(m.config, n_blocks, BLOCK_SIZE) for m in (fast, ref)}
    seqs = {m: [PagedSequence(pools[m], t) for t in tables] for m in (fast, ref)}
    caches = [fast.new_cache(32) for _ in PROMPTS]  # the contiguous path, one KVCache per sequence
    tokens = []
    for i, prompt in enumerate(PROMPTS):
        for chunk in chunks(prompt):
            got = fast.runner.prefill_paged(np.array(chunk), seqs[fast][i])  # [n_vocab]
            want = ref.runner.prefill_paged(np.array(chunk), seqs[ref][i])
            contiguous = fast.prefill(chunk, caches[i])
            assert relative_diff(got, want) <= RTOL and relative_diff(got, contiguous) <= RTOL
        assert seqs[fast][i].length == len(prompt)
        tokens.append(int(got.argmax()))
    for _ in range(N_STEPS):  # every sequence in one step, each at its own position
        positions = np.array([s.length for s in seqs[fast]])  # [n_seq]
        got = fast.runner.decode_paged(np.array(tokens), positions, pools[fast], tables)  # [n_seq, n_vocab]
        want = ref.runner.decode_paged(np.array(tokens), positions, pools[ref], tables)
        assert relative_diff(got, want) <= RTOL
        for i, token in enumerate(tokens):
            assert relative_diff(got[i], fast.decode(token, caches[i])) <= RTOL
            seqs[fast][i].advance(1)
            seqs[ref][i].advance(1)
        tokens = got.argmax(axis=-1).tolist()
    for a, b in [(pools[fast].k, pools[ref].k), (pools[fast].v, pools[ref].v)]:  # the same blocks written
        np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * np.abs(b).max())


def test_one_compiled_step_serves_every_cache():
    """decode (a KVCache), decode_batch (a BatchKVCache) and decode_paged pass the step arguments of
    the same types, so the step compiled for one serves the others (no second compilation)."""
    model = minfer.load_model(path("tiny-gpt2"), backend="numba")
    model.decode(3, (cache := model.new_cache(8)))
    signatures = set(decode_step.signatures)
    batch = BatchKVCache.empty(model, 2, 8)
    model.runner.decode_batch(np.array([3, 4]), batch, np.array([1, 0]))
    pool = PagedKVCache.empty(model.config, 4, BLOCK_SIZE)
    model.runner.decode_paged([3, 4], [0, 5], pool, np.array([[2, 0], [1, 3]]))
    assert set(decode_step.signatures) == signatures and cache.length == 1


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama-mqa"])
def fast(request) -> minfer.Model:
    return minfer.load_model(path(request.param), backend="numba")


@pytest.mark.parametrize(
    "tables, positions, error, words",
    [
        ([[0, 1], [2, 9]], [3, 5], InvalidInputError, "blocks in [0, 4)"),  # block 9 of a pool of 4
        ([[0, 1], [2, -1]], [3, 5], InvalidInputError, "blocks in [0, 4)"),  # a negative block
        ([[0, 1], [2, 2**32 + 3]], [3, 5], InvalidInputError, "blocks in [0, 4)"),  # wraps to 3 in int32
        ([[0, 1], [2, 3]], [3, 8], ContextOverflowError, "block table"),  # past its table's 2 x 4 positions
        ([[0], [2]], [3, -1], ContextOverflowError, "block table"),
        ([[0, 1], [2, 3]], [[3], [5]], InvalidInputError, "one position"),
    ],
)
def test_a_bad_paged_step_is_a_clear_error_and_writes_nothing(fast, tables, positions, error, words):
    pool = PagedKVCache.empty(fast.config, 4, BLOCK_SIZE)
    with pytest.raises(error, match=re.escape(words)):
        fast.runner.decode_paged([3, 4], positions, pool, tables)
    assert not pool.k.any() and not pool.v.any()


def test_a_bad_paged_prefill_is_a_clear_error_and_writes_nothing(fast):
    n_ctx, n_vocab = fast.config.n_ctx, fast.config.n_vocab
    pool = PagedKVCache.empty(fast.config, 3 * n_ctx // BLOCK_SIZE, BLOCK_SIZE)
    short = PagedSequence(pool, np.array([2, 0]))  # room for 8 positions
    for ids, seq, error in [
        (range(9), short, ContextOverflowError),  # past its table
        (range(7), PagedSequence(pool, np.array([2, 0]), length=2), ContextOverflowError),  # 2 + 7 past it too
        ([1, n_vocab], short, InvalidInputError),  # outside the vocabulary
        ([], short, InvalidInputError),
        ([1.5, 2], short, InvalidInputError),
        ([1, 2], PagedSequence(pool, np.array([len(pool.k[0])])), InvalidInputError),  # no such block
        (range(n_ctx + 1), PagedSequence(pool, np.arange(2 * n_ctx // BLOCK_SIZE)), ContextOverflowError),
    ]:
        with pytest.raises(error):
            fast.runner.prefill_paged(np.array(ids) if len(ids) else ids, seq)
        assert not pool.k.any() and seq.length in (0, 2)
    wrong = PagedKVCache(pool.k, pool.v[:, :-1])  # v with a block fewer than k
    with pytest.raises(InvalidInputError, match="one shape"):
        fast.runner.decode_paged([3], [0], wrong, [[1]])
