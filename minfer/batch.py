"""Batched generation: several prompts at once, one decode step for all of them (lesson 07).

Decode is memory-bound: one token costs a full read of every weight. With a batch of B
sequences, each decode step multiplies a [B, n_embd] matrix by the weights instead of a vector,
so the weights are read once for B tokens and the FLOPs per byte grow with B, until the step is
limited by arithmetic instead of memory.

Prompts may have different lengths. Each sequence is prefilled on its own into its slot of one
batched KV cache; after that, every decode step takes one token from each unfinished sequence,
each at its own position. Sequences finish independently and leave the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

import numpy as np

from minfer.checks import is_whole, token_id_array
from minfer.config import ModelConfig
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.generation import (
    Generation,
    check_max_new_tokens,
    new_stopping,
    prompt_ids,
    stop_string_list,
    stop_token_set,
)
from minfer.kvcache import BatchKVCache, in_use
from minfer.model import Model
from minfer.sampling import SamplingParams, sample


def prefill_slot(model: Model, ids: Sequence[int], cache: BatchKVCache, b: int) -> np.ndarray:
    """Prefill one sequence into slot b with the single-sequence code. -> logits [n_vocab]"""
    if not is_whole(b) or not 0 <= b < cache.k.shape[1]:
        raise InvalidInputError(f"slot b={b!r} must be an integer in [0, {cache.k.shape[1]}): the batch's slots")
    slot = cache.slot(b)
    logits = model.prefill(ids, slot)  # [n_vocab]
    cache.lengths[b] = slot.length
    return logits


def decode_batch(model: Model, tokens: np.ndarray, cache: BatchKVCache, rows: np.ndarray) -> np.ndarray:
    """One decode step for several sequences: tokens[i] goes into slot rows[i] at that slot's
    length, and each slot's length advances by one. tokens, rows: [n_rows] -> logits [n_rows, n_vocab]

    Checked here, computed by the model's backend: the NumPy reference runs `hidden_states`
    with each row at its own position; the Numba backend one compiled step for all rows."""
    with in_use(cache):  # the cache is checked and written by this call alone
        tokens, rows = check_batch_step(model.config, tokens, cache, rows)  # [n_rows], [n_rows]
        return model.runner.decode_batch(tokens, cache, rows)  # [n_rows, n_vocab]


def check_batch_step(c: ModelConfig, tokens, cache: BatchKVCache, rows) -> tuple[np.ndarray, np.ndarray]:
    """What a batched step indexes by must fit: the cache's shape, one distinct slot per row,
    token ids in the vocabulary, a free position in every slot. -> (tokens, rows) as int64 arrays"""
    if not isinstance(cache, BatchKVCache):
        raise InvalidInputError(f"cache must be a BatchKVCache, not {type(cache).__name__}")
    shape = (c.n_layer, None, c.n_kv_head, None, c.d_head)
    for name in ("k", "v"):
        a = getattr(cache, name)
        if a.dtype != np.float32 or a.ndim != 5 or any(n is not None and n != m for n, m in zip(shape, a.shape)):
            raise InvalidInputError(
                f"cache.{name} is {a.dtype} {list(a.shape)}; this model needs float32 [n_layer={c.n_layer}, "
                f"n_batch, n_kv_head={c.n_kv_head}, max_seq, d_head={c.d_head}]: "
                "make it with BatchKVCache.empty(model, ...)"
            )
    n_batch = cache.k.shape[1]
    if cache.v.shape != cache.k.shape or cache.lengths.shape != (n_batch,):
        raise InvalidInputError("cache.k, cache.v and cache.lengths disagree on the batch's shape")
    tokens, rows = token_id_array(tokens), token_id_array(rows, "rows")  # [n_rows], [n_rows]
    if tokens.shape != rows.shape or not len(rows):
        raise InvalidInputError(f"{len(tokens)} tokens for {len(rows)} rows: give one token per row, at least one")
    if rows.min() < 0 or rows.max() >= n_batch or len(np.unique(rows)) != len(rows):
        raise InvalidInputError(f"rows must be distinct slots in [0, {n_batch}), got {rows.tolist()}")
    if tokens.min() < 0 or tokens.max() >= c.n_vocab:
        raise InvalidInputError(f"token ids must be in the vocabulary [0, {c.n_vocab})")
    lengths = cache.lengths[rows]  # [n_rows]
    if lengths.min() < 0:
        raise InvalidInputError(f"cache.lengths must be >= 0, got {cache.lengths.tolist()}")
    full = rows[lengths >= min(cache.max_seq, c.n_ctx)]
    if full.size:
        raise ContextOverflowError(
            f"slot {int(full[0])} holds {int(cache.lengths[full[0]])} positions: no room for one more "
            f"(max_seq={cache.max_seq}, n_ctx={c.n_ctx}); make the cache with a larger max_seq"
        )
    return tokens, rows


def generate_batch(
    model: Model,
    prompts: Sequence[str | Sequence[int]],
    max_new_tokens: int = 64,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    stop_tokens: Sequence[int] | None = None,
    stop_strings: Sequence[str] | str = (),
    params: SamplingParams | None = None,
) -> list[Generation]:
    """Generate after every prompt at once; returns one Generation per prompt, in order.

    Each sequence samples with its own random generator seeded by `seed`, and stops by the same
    rule as `generate` (`minfer.generation.Stopping`), so with the same parameters it gets the
    tokens and text `generate` would give it alone. Timings are per step of the whole batch (a
    sequence's per-token latency is the batch step's).

    Example:
        >>> gens = generate_batch(model, ["And the king said", "In the beginning"], 20)
        >>> [g.text for g in gens]
    """
    start = perf_counter()
    params = params or SamplingParams(temperature=temperature, seed=seed)
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise InvalidInputError(
            f"generate_batch takes a list of prompts, not a {type(prompts).__name__}; "
            "for one prompt pass [prompt] (or call generate)"
        )
    if not prompts:
        raise InvalidInputError("generate_batch needs at least one prompt")
    max_new_tokens = check_max_new_tokens(max_new_tokens)
    stops = stop_token_set(model, stop_tokens)
    stop_strings = stop_string_list(model, stop_strings)
    ids = [prompt_ids(model, p) for p in prompts]
    n_ctx, longest = model.config.n_ctx, max(map(len, ids))
    if longest > n_ctx:
        raise ContextOverflowError(
            f"a prompt has {longest} tokens, more than the context window n_ctx={n_ctx}; shorten it"
        )
    cache = BatchKVCache.empty(model, len(ids), min(n_ctx, longest + max_new_tokens))
    results = [Generation(prompt_tokens=x) for x in ids]
    stopping = [new_stopping(model, stops, max_new_tokens, stop_strings) for _ in ids]
    rngs = [np.random.default_rng(params.seed) for _ in ids]
    histories = [list(x) for x in ids]
    logits = []  # n_rows x [n_vocab], one per unfinished sequence
    for b, x in enumerate(ids):
        t = perf_counter()
        logits.append(prefill_slot(model, x, cache, b))
        results[b].prefill_seconds = perf_counter() - t
    rows = np.arange(len(ids))  # slots still generating
    last = start
    while True:
        tokens = [sample(lg, params, history=histories[b], rng=rngs[b]) for lg, b in zip(logits, rows)]
        step = perf_counter() - last
        for token, row in zip(tokens, rows):
            results[row].token_seconds.append(step)
            histories[row].append(token)
            stopping[row].add(results[row], token, int(cache.lengths[row]))
        going = [i for i, b in enumerate(rows) if not results[b].finish_reason]
        if not going:
            break
        rows = rows[going]  # [n_rows]
        last = perf_counter()
        logits = list(decode_batch(model, np.array(tokens)[going], cache, rows))  # n_rows x [n_vocab]
    for g, stop in zip(results, stopping):
        stop.finish(g)
    return results
