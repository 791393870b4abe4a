"""The Numba backend for the Llama family: the same model as `minfer.llama`, decode compiled whole
(lessons 10 and 13).

Read it beside GPT-2's `minfer.fast.backend`: the design is the same (one `@njit` step per token
for every layer, stacked weights, scratch owned by the call, prefill a Python loop over BLAS
matmuls, int8 weights with a scale per output column) and so are its tools, imported from there:
`linear_any` and the streaming matvec kernels, `lm_head`, the thread policy
(`blas_on_one_thread`, `compiled_calls`). What the family changes:

- RMSNorm (`K.rms_norm`) instead of layer norm, and no position table: the embedding kernel is
  given one row of zeros as its position row;
- q, k and v are one stacked [n_embd, (n_head + 2 n_kv_head) d_head] matrix, and gate and up one
  [n_embd, 2 n_hidden] matrix, so each is streamed in one pass, and `K.swiglu` applies
  silu(gate) * up without writing silu(gate) back; absent biases are zeros (n_out adds, nothing
  next to n_in x n_out weights);
- Qwen3's per-head q/k RMSNorm is `K.rms_norm` on [n_rows * n_heads, d_head] views;
- RoPE: the step computes cos and sin of each row's position once (`K.rope_table`, see
  minfer.fast.kernels.rope for why not a table of every position) and rotates q and k by them
  (`K.rope`); the cache holds keys already rotated, as the reference's does;
- attention is `K.paged_decode_attention` (GPT-2's too), which reads each KV head once for its
  whole group of query heads, through the rows' block tables; the cache has n_kv_head heads.

Every kernel has a NumPy twin (minfer.fast.kernels.TWINS); the backend as a whole is tested
against transformers by tests/test_fidelity.py, like the reference.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from minfer.config import LlamaConfig
from minfer.errors import InvalidInputError
from minfer.fast import kernels as K
from minfer.fast.backend import (
    QUANTIZE,
    CompiledBackend,
    compiled_calls,
    compiled_code_dir,
    drop_stale_compiled_code,
    linear_any,
    start_threads,
)
from minfer.kvcache import KVCache
from minfer.rope import inverse_frequencies
from minfer.weights import LinearWeights, LlamaWeights

if TYPE_CHECKING:  # minfer.serving imports the compiled backend
    from minfer.serving.paged import PagedSequence

# Per-layer weights stacked on a leading n_layer axis, as GPT-2's StackedWeights. A matrix's
# `*_scale` is [n_layer, n_out] for int8 weights, or [n_layer, 0] for float32.
LlamaStackedWeights = namedtuple(
    "LlamaStackedWeights",
    [
        "embed",  # [n_vocab, n_embd] float32 or int8 (then embed_scale: [n_vocab], one per row)
        "embed_scale",
        "no_positions",  # [1, n_embd] zeros: embed's position row (RoPE rotates q and k instead)
        "attn_norm",  # [n_layer, n_embd] input_layernorm
        "qkv_w",
        "qkv_scale",
        "qkv_b",  # [n_layer, n_embd, (n_head + 2 n_kv_head) d_head]: q, k, v side by side
        "q_norm",
        "k_norm",  # [n_layer, d_head] Qwen3's per-head gains, or [n_layer, 0]
        "o_w",
        "o_scale",
        "o_b",  # [n_layer, n_head d_head, n_embd]
        "mlp_norm",  # [n_layer, n_embd] post_attention_layernorm
        "gate_up_w",
        "gate_up_scale",
        "gate_up_b",  # [n_layer, n_embd, 2 n_hidden]: gate, then up
        "down_w",
        "down_scale",
        "down_b",  # [n_layer, n_hidden, n_embd]
        "norm",  # [n_embd] the final RMSNorm
        "head",  # [n_vocab, n_embd] float32 or int8: the LM head, the same arrays as embed when tied
        "head_scale",
        "inv_freq",  # [d_head // 2] float64: RoPE's angle per position of each pair
    ],
)

# Buffers for one decode step of n_rows sequences, allocated by each call, never kept on the model.
LlamaRunState = namedtuple(
    "LlamaRunState",
    [
        "x",  # [n_rows, n_embd] the residual stream
        "h",  # [n_rows, n_embd] a normed copy, then each sublayer's output
        "qkv",  # [n_rows, (n_head + 2 n_kv_head) d_head]
        "q",  # [n_rows, n_head, d_head]
        "k",  # [n_rows, n_kv_head, d_head] the new keys, normed and rotated before the cache
        "v",  # [n_rows, n_kv_head, d_head]
        "att",  # [n_rows, n_head d_head] attention output, heads side by side
        "gate_up",  # [n_rows, 2 n_hidden]
        "mlp",  # [n_rows, n_hidden] silu(gate) * up
        "rope",  # [2, n_rows, d_head] cos and sin of each row's position
        "scores",  # [n_rows, n_head, n_keys] attention scratch (the longest row's keys)
        "logits",  # [n_rows, n_vocab]
    ],
)


def stack_llama_weights(c: LlamaConfig, w: LlamaWeights, quantize: str | None = None) -> LlamaStackedWeights:
    """Copy the per-layer weights into stacked arrays, q/k/v and gate/up side by side (int8 with
    per-column scales if asked: a column's scale is the same stacked or apart)."""
    n_layer = len(w.layers)

    def stack(arrays) -> np.ndarray:  # [n_layer, ...]
        return np.ascontiguousarray(np.stack(list(arrays)), dtype=np.float32)

    def bias(lw: LinearWeights) -> np.ndarray:  # [n_out], zeros for a layer without one
        return np.zeros(lw.weight.shape[1], np.float32) if lw.bias is None else lw.bias

    def matrix(get) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # (weights, scales, biases)
        parts = [get(b) for b in w.layers]  # per layer: the LinearWeights to put side by side
        weight = stack(np.concatenate([p.weight for p in ps], axis=1) for ps in parts)  # [n_layer, n_in, n_out]
        biases = stack(np.concatenate([bias(p) for p in ps]) for ps in parts)  # [n_layer, n_out]
        if quantize is None:
            return weight, np.zeros((n_layer, 0), np.float32), biases
        q, scale = K.quantize_int8(weight, axis=1)  # one scale per output column of each layer
        return q, scale.reshape(n_layer, -1), biases

    def rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # embedding or head, a scale per row
        if quantize is None:
            return np.ascontiguousarray(table, np.float32), np.zeros(0, np.float32)
        return K.quantize_int8(np.asarray(table, np.float32), axis=1)

    def qk_norm(get) -> np.ndarray:  # [n_layer, d_head], or [n_layer, 0] without Qwen3's norms
        return stack(get(b.self_attn) for b in w.layers) if c.qk_norm else np.zeros((n_layer, 0), np.float32)

    embed = rows(w.embed_tokens)  # ([n_vocab, n_embd], [n_vocab] or [0])
    head = embed if w.lm_head is w.embed_tokens else rows(w.lm_head)  # the same, or the untied head's
    stacked = LlamaStackedWeights(  # in the order of the fields above
        *embed,
        np.zeros((1, c.n_embd), np.float32),
        stack(b.input_layernorm for b in w.layers),
        *matrix(lambda b: (b.self_attn.q_proj, b.self_attn.k_proj, b.self_attn.v_proj)),
        qk_norm(lambda attn: attn.q_norm),
        qk_norm(lambda attn: attn.k_norm),
        *matrix(lambda b: (b.self_attn.o_proj,)),
        stack(b.post_attention_layernorm for b in w.layers),
        *matrix(lambda b: (b.mlp.gate_proj, b.mlp.up_proj)),
        *matrix(lambda b: (b.mlp.down_proj,)),
        np.ascontiguousarray(w.norm, np.float32),
        *head,
        inverse_frequencies(c.d_head, c.rope_theta, c.rope_scaling),
    )
    return LlamaStackedWeights(*(read_only(array) for array in stacked))


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of a. Every stacked array is one, whether it was copied (stacked) or is
    the loaded array itself (a memory-mapped embedding stays mapped): Numba types read-only and
    writable arrays apart, so a mix would compile the decode step once per combination."""
    view = a.view()
    view.setflags(write=False)
    return view


def new_llama_run_state(c: LlamaConfig, max_seq: int, n_rows: int = 1) -> LlamaRunState:
    """Scratch for one decode step of `n_rows` sequences attending over up to `max_seq` positions.
    Every buffer is written before it is read, so it need not be zeroed."""
    empty = lambda *shape: np.empty(shape, np.float32)  # noqa: E731
    return LlamaRunState(
        empty(n_rows, c.n_embd),
        empty(n_rows, c.n_embd),
        empty(n_rows, (c.n_head + 2 * c.n_kv_head) * c.d_head),
        empty(n_rows, c.n_head, c.d_head),
        empty(n_rows, c.n_kv_head, c.d_head),
        empty(n_rows, c.n_kv_head, c.d_head),
        empty(n_rows, c.n_head * c.d_head),
        empty(n_rows, 2 * c.n_hidden),
        empty(n_rows, c.n_hidden),
        empty(2, n_rows, c.d_head),
        empty(n_rows, c.n_head, max_seq),
        empty(n_rows, c.n_vocab),
    )


@njit(cache=True)
def split_qkv(qkv, q, k, v):  # qkv: [n_rows, (n_head + 2 n_kv_head) d_head] -> q: [n_rows, n_head, d_head], k, v
    """Cut each row of the stacked projection into its query, key and value heads."""
    n_head, d_head, n_kv_head = q.shape[1], q.shape[2], k.shape[1]
    k0, v0 = n_head * d_head, (n_head + n_kv_head) * d_head  # where the keys and the values start
    for r in range(q.shape[0]):
        for h in range(n_head):
            for i in range(d_head):
                q[r, h, i] = qkv[r, h * d_head + i]
        for h in range(n_kv_head):
            for i in range(d_head):
                k[r, h, i] = qkv[r, k0 + h * d_head + i]
                v[r, h, i] = qkv[r, v0 + h * d_head + i]


@njit(cache=True)
def head_norms(q, k, q_norm, k_norm, eps):  # q: [n_rows, n_head, d_head], k: [n_rows, n_kv_head, d_head]
    """Qwen3's RMSNorm of each head's q and k, in place (nothing when the gains are empty)."""
    if q_norm.shape[0] == 0:
        return
    n_rows, n_head, d_head = q.shape
    q2, k2 = q.reshape(n_rows * n_head, d_head), k.reshape(n_rows * k.shape[1], d_head)  # views
    K.rms_norm(q2, q_norm, eps, q2)
    K.rms_norm(k2, k_norm, eps, k2)


@njit(cache=True)
def store_kv(k, v, k_cache, v_cache, tables, positions):  # k, v: [n_rows, n_kv_head, d_head]
    """Write row r's keys and values at positions[r] through its block table: block
    tables[r, positions[r] // block_size], offset positions[r] % block_size.
    k_cache, v_cache: [n_blocks, n_kv_head, block_size, d_head], one layer's pool."""
    block_size = k_cache.shape[2]
    for r in range(k.shape[0]):
        b, at = tables[r, positions[r] // block_size], positions[r] % block_size
        for h in range(k.shape[1]):
            for i in range(k.shape[2]):
                k_cache[b, h, at, i] = k[r, h, i]
                v_cache[b, h, at, i] = v[r, h, i]


@njit(cache=True)
def llama_decode_step(tokens, positions, tables, w, k_cache, v_cache, s, eps):
    """One token per row through every layer: row r is token tokens[r] at position positions[r]
    of the sequence whose block table is tables[r]. k_cache, v_cache: [n_layer, n_blocks,
    n_kv_head, block_size, d_head], a pool of blocks written and read through the tables, as
    GPT-2's decode_step (a contiguous cache: one block of max_seq positions per sequence). The
    logits land in s.logits [n_rows, n_vocab]. The weights are read once per step for all rows."""
    n_rows, n_head, d_head = s.q.shape
    K.embed(tokens, w.embed, w.embed_scale, w.no_positions, np.zeros_like(tokens), s.x)
    K.rope_table(positions, w.inv_freq, s.rope)  # once for every layer
    att = s.att.reshape(n_rows, n_head, d_head)  # [n_rows, n_head, d_head], a view
    for layer in range(w.attn_norm.shape[0]):
        K.rms_norm(s.x, w.attn_norm[layer], eps, s.h)
        linear_any(s.h, w.qkv_w[layer], w.qkv_scale[layer], w.qkv_b[layer], s.qkv)
        split_qkv(s.qkv, s.q, s.k, s.v)
        head_norms(s.q, s.k, w.q_norm[layer], w.k_norm[layer], eps)
        K.rope(s.q, s.rope, s.q)
        K.rope(s.k, s.rope, s.k)
        store_kv(s.k, s.v, k_cache[layer], v_cache[layer], tables, positions)
        K.paged_decode_attention(s.q, k_cache[layer], v_cache[layer], tables, positions + 1, att, s.scores)
        linear_any(s.att, w.o_w[layer], w.o_scale[layer], w.o_b[layer], s.h)
        K.add(s.x, s.h, s.x)
        K.rms_norm(s.x, w.mlp_norm[layer], eps, s.h)
        linear_any(s.h, w.gate_up_w[layer], w.gate_up_scale[layer], w.gate_up_b[layer], s.gate_up)
        K.swiglu(s.gate_up, s.mlp)
        linear_any(s.mlp, w.down_w[layer], w.down_scale[layer], w.down_b[layer], s.h)
        K.add(s.x, s.h, s.x)
    K.rms_norm(s.x, w.norm, eps, s.h)
    K.lm_head(s.h, w.head, w.head_scale, s.logits)


drop_stale_compiled_code(compiled_code_dir(), "llama", also=("backend.py",))  # it calls backend's linear_any


class LlamaFastModel(CompiledBackend):
    """The Llama family's Numba backend: its weights stacked (maybe int8) and read-only once
    built, and `llama_decode_step` compiled for one or several rows; the Backend protocol around
    them (checks, decode, batched and paged decode, prefill) is CompiledBackend's, shared with GPT-2's."""

    head = "head"  # the LM head's table in LlamaStackedWeights (the embedding's, when tied)

    def __init__(self, config: LlamaConfig, weights: LlamaWeights, quantize: str | None = None):
        if quantize not in QUANTIZE:
            raise InvalidInputError(f"quantize={quantize!r} is not supported; choose None or 'int8'")
        self.config: LlamaConfig = config
        self.quantize = quantize
        self.w = stack_llama_weights(config, weights, quantize)
        start_threads()

    def step(self, tokens, positions, tables, k_cache, v_cache) -> np.ndarray:
        """Run `llama_decode_step` on checked arguments. -> logits [n_rows, n_vocab]"""
        c = self.config
        state = new_llama_run_state(c, int(positions.max()) + 1, len(tokens))
        with compiled_calls():
            llama_decode_step(tokens, positions, tables, self.w, k_cache, v_cache, state, np.float32(c.norm_eps))
        return state.logits

    def prefill_layers(self, ids: np.ndarray, cache: KVCache | PagedSequence, all_logits: bool) -> np.ndarray:
        """The prefill block loop, minfer.llama's in this backend's kernels (a Python loop: its
        time is in BLAS's matmuls)."""
        c, w = self.config, self.w
        positions = np.arange(cache.length, cache.length + len(ids))  # [n_seq]
        x = np.empty((len(ids), c.n_embd), np.float32)  # [n_seq, n_embd]
        K.embed(ids, w.embed, w.embed_scale, w.no_positions, np.zeros_like(positions), x)
        rope = np.empty((2, len(ids), c.d_head), np.float32)  # [2, n_seq, d_head], for every layer
        K.rope_table(positions, w.inv_freq, rope)
        for layer in range(c.n_layer):
            h = rms_norm(x, w.attn_norm[layer], c.norm_eps)  # [n_seq, n_embd]
            x = x + self.attention(self.matmul(h, layer, "qkv"), rope, cache, layer)  # [n_seq, n_embd]
            gate_up = self.matmul(rms_norm(x, w.mlp_norm[layer], c.norm_eps), layer, "gate_up")  # [n_seq, 2 n_hidden]
            act = np.empty((len(ids), c.n_hidden), np.float32)  # [n_seq, n_hidden]
            K.swiglu(gate_up, act)
            x = x + self.matmul(act, layer, "down")  # [n_seq, n_embd]
        cache.advance(len(ids))
        x = rms_norm(x if all_logits else x[-1:], w.norm, c.norm_eps)  # [n_rows, n_embd]
        logits = self.lm_head(x)  # [n_rows, n_vocab]
        return logits if all_logits else logits[0]

    def attention(self, qkv: np.ndarray, rope: np.ndarray, cache: KVCache | PagedSequence, layer: int) -> np.ndarray:
        """Split heads, norm (Qwen3) and rotate q and k, write k and v into the cache, attend
        causally. qkv: [n_seq, (n_head + 2 n_kv_head) d_head], rope: [2, n_seq, d_head] -> [n_seq, n_embd]

        prefill_attention wants as many KV heads as query heads, so each KV head is repeated for
        its group: a copy of n_keys x d_head floats per query head, small beside the attention's
        n_seq x n_keys x d_head multiply-adds, each of which reads it from cache."""
        c, n_seq, eps = self.config, len(qkv), np.float32(self.config.norm_eps)
        q = np.empty((n_seq, c.n_head, c.d_head), np.float32)  # [n_seq, n_head, d_head]
        k, v = (np.empty((n_seq, c.n_kv_head, c.d_head), np.float32) for _ in range(2))  # [n_seq, n_kv_head, d_head]
        split_qkv(np.ascontiguousarray(qkv), q, k, v)
        head_norms(q, k, self.w.q_norm[layer], self.w.k_norm[layer], eps)
        K.rope(q, rope, q)
        K.rope(k, rope, k)
        keys, values = cache.update(layer, k.transpose(1, 0, 2), v.transpose(1, 0, 2))  # [n_kv_head, n_keys, d_head]
        group = c.n_head // c.n_kv_head
        keys, values = np.repeat(keys, group, axis=0), np.repeat(values, group, axis=0)  # [n_head, n_keys, d_head]
        out = np.empty((c.n_head, n_seq, c.d_head), np.float32)  # [n_head, n_seq, d_head]
        K.prefill_attention(np.ascontiguousarray(q.transpose(1, 0, 2)), keys, values, out, 64)
        return self.matmul(out.transpose(1, 0, 2).reshape(n_seq, -1), layer, "o")  # [n_seq, n_embd]


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """The Numba RMSNorm with a fresh output (prefill's arrays change size with the prompt)."""
    out = np.empty_like(x)  # [n_rows, n_embd]
    K.rms_norm(np.ascontiguousarray(x), weight, np.float32(eps), out)
    return out
