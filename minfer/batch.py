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
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from minfer.attention import merge_heads
from minfer.checks import check_fits
from minfer.config import Config
from minfer.embed import lm_head
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.generation import (
    Generation,
    check_max_new_tokens,
    new_stopping,
    prompt_ids,
    stop_string_list,
    stop_token_set,
)
from minfer.kvcache import KVCache
from minfer.layers import layer_norm, linear, softmax
from minfer.mlp import mlp
from minfer.model import Model, kv_bytes_per_position
from minfer.sampling import SamplingParams, sample
from minfer.weights import AttentionWeights, BlockWeights


@dataclass
class BatchKVCache:
    """One KV cache slot per sequence; each sequence has its own length."""

    k: np.ndarray  # [n_layer, n_batch, n_head, max_seq, d_head]
    v: np.ndarray  # [n_layer, n_batch, n_head, max_seq, d_head]
    lengths: np.ndarray  # [n_batch] int: positions filled in each slot

    @classmethod
    def empty(cls, model: Model, n_batch: int, max_seq: int) -> BatchKVCache:
        """Zeroed slots of `max_seq` positions; an InsufficientMemoryError at once if they would
        not fit in the memory available now."""
        c = model.config
        check_fits(
            n_batch * max_seq * kv_bytes_per_position(c),
            f"the KV cache of a batch of {n_batch}",
            "generate fewer sequences or fewer tokens at once",
        )
        shape = (c.n_layer, n_batch, c.n_head, max_seq, c.d_head)
        return cls(
            np.zeros(shape, np.float32),
            np.zeros(shape, np.float32),  # shape
            np.zeros(n_batch, np.int64),
        )  # [n_batch]

    def slot(self, b: int) -> KVCache:
        """Sequence b's part as an ordinary KVCache (a view: writes land in this batch cache)."""
        return KVCache(k=self.k[:, b], v=self.v[:, b], length=int(self.lengths[b]))


def prefill_slot(model: Model, ids: Sequence[int], cache: BatchKVCache, b: int) -> np.ndarray:
    """Prefill one sequence into slot b with the single-sequence code. -> logits [n_vocab]"""
    slot = cache.slot(b)
    logits = model.prefill(ids, slot)  # [n_vocab]
    cache.lengths[b] = slot.length
    return logits


def write_kv_rows(
    cache: BatchKVCache, layer: int, rows: np.ndarray, k: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Write one new key and value per row at that slot's length; return every row's keys and
    values up to the longest. k, v: [n_rows, n_head, d_head] -> 2 x [n_rows, n_head, n_keys, d_head]"""
    pos = cache.lengths[rows]  # [n_rows] where each new token goes
    cache.k[layer, rows, :, pos] = k
    cache.v[layer, rows, :, pos] = v
    n_keys = int(pos.max()) + 1
    if len(rows) == cache.k.shape[1]:  # every slot: a slice (a view) instead of a gather (a copy)
        return cache.k[layer, :, :, :n_keys], cache.v[layer, :, :, :n_keys]  # [n_rows, n_head, n_keys, d_head]
    return cache.k[layer, rows, :, :n_keys], cache.v[layer, rows, :, :n_keys]  # same


def masked_attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Each row's one query attends over its own keys 0..pos[row]; later keys belong to longer
    sequences and are masked out. q: [n_rows, n_head, 1, d_head], keys, values:
    [n_rows, n_head, n_keys, d_head], pos: [n_rows] -> [n_rows, n_head, 1, d_head]"""
    n_keys, d_head = keys.shape[2], q.shape[-1]
    scores = q @ keys.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d_head))  # [n_rows, n_head, 1, n_keys]
    mask = np.where(np.arange(n_keys)[None, :] <= pos[:, None], 0.0, -np.inf).astype(np.float32)  # [n_rows, n_keys]
    return softmax(scores + mask[:, None, None, :]) @ values  # [n_rows, n_head, 1, d_head]


def batch_attention(
    x: np.ndarray, w: AttentionWeights, n_head: int, cache: BatchKVCache, layer: int, rows: np.ndarray
) -> np.ndarray:
    """One new token per sequence attends over its own cached keys. x: [n_rows, n_embd] -> same

    `rows` are the cache slots of x's rows. Slots have different lengths, so keys past a slot's
    own length are masked out; the matrix products still run over the longest one.
    """
    n_rows, n_embd = x.shape
    d_head = n_embd // n_head
    qkv = linear(x, w.c_attn.weight, w.c_attn.bias)  # [n_rows, 3 * n_embd]
    q, k, v = (p.reshape(n_rows, n_head, 1, d_head) for p in np.split(qkv, 3, axis=-1))  # [n_rows, n_head, 1, d_head]
    pos = cache.lengths[rows]  # [n_rows] positions of the new tokens (lengths move after the last layer)
    keys, values = write_kv_rows(cache, layer, rows, k[:, :, 0], v[:, :, 0])  # [n_rows, n_head, n_keys, d_head]
    out = masked_attention(q, keys, values, pos)  # [n_rows, n_head, 1, d_head]
    return linear(merge_heads(out[:, :, 0].transpose(1, 0, 2)), w.c_proj.weight, w.c_proj.bias)  # [n_rows, n_embd]


def batch_block(
    x: np.ndarray, w: BlockWeights, cfg: Config, cache: BatchKVCache, layer: int, rows: np.ndarray
) -> np.ndarray:
    """`minfer.block.block` for one new token per row, each at its own position. x: [n_rows, n_embd] -> same"""
    h = layer_norm(x, w.ln_1.weight, w.ln_1.bias, cfg.layer_norm_eps)  # [n_rows, n_embd]
    x = x + batch_attention(h, w.attn, cfg.n_head, cache, layer, rows)  # [n_rows, n_embd]
    return x + mlp(layer_norm(x, w.ln_2.weight, w.ln_2.bias, cfg.layer_norm_eps), w.mlp)  # [n_rows, n_embd]


def embed_rows(tokens: np.ndarray, positions: np.ndarray, wte: np.ndarray, wpe: np.ndarray) -> np.ndarray:
    """`minfer.embed.embed` with each token at its own position. tokens, positions: [n_rows] -> [n_rows, n_embd]"""
    return wte[tokens] + wpe[positions]  # [n_rows, n_embd]


def decode_batch(model: Model, tokens: np.ndarray, cache: BatchKVCache, rows: np.ndarray) -> np.ndarray:
    """One decode step for several sequences: tokens[i] goes into slot rows[i] at that slot's
    length. tokens, rows: [n_rows] -> logits [n_rows, n_vocab]"""
    w, c = model.weights, model.config
    x = embed_rows(tokens, cache.lengths[rows], w.wte, w.wpe)  # [n_rows, n_embd]
    for layer, bw in enumerate(w.h):
        x = batch_block(x, bw, c, cache, layer, rows)  # [n_rows, n_embd]
    cache.lengths[rows] += 1
    return lm_head(layer_norm(x, w.ln_f.weight, w.ln_f.bias, c.layer_norm_eps), w.wte)  # [n_rows, n_vocab]


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
