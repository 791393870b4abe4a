"""The Llama family's block (Llama 3.x, Qwen2/2.5, Qwen3, SmolLM2, Mistral): lesson 13.

Read it beside GPT-2's `block.py`, `attention.py` and `mlp.py`; the data flow is the same
(pre-norm, attention, residual, MLP, residual) and four things differ:
- RMSNorm instead of LayerNorm (`layers.rms_norm`): no mean, no shift;
- no position table: queries and keys are rotated by their position inside attention (`rope`);
- grouped-query attention: k and v have n_kv_head < n_head heads, so the KV cache is smaller;
- a gated MLP (SwiGLU): silu(x W_gate) * (x W_up), then W_down; no biases by default.
Qwen2 adds q/k/v biases; Qwen3 an RMSNorm on each head's q and k before the rotation.
"""

from __future__ import annotations

import numpy as np

from minfer.attention import causal_attention, merge_heads, split_heads
from minfer.config import LlamaConfig
from minfer.kvcache import BatchSlots, KVCache
from minfer.layers import linear, rms_norm, silu
from minfer.rope import apply_rope, inverse_frequencies, rope_tables
from minfer.weights import LlamaAttentionWeights, LlamaBlockWeights, LlamaMLPWeights, LlamaWeights


def swiglu_mlp(x: np.ndarray, w: LlamaMLPWeights) -> np.ndarray:
    """The gated MLP: one projection, through SiLU, scales another elementwise.
    x: [n_rows, n_embd] -> [n_rows, n_embd]"""
    gate = silu(linear(x, w.gate_proj.weight, w.gate_proj.bias))  # [n_rows, n_hidden]
    up = linear(x, w.up_proj.weight, w.up_proj.bias)  # [n_rows, n_hidden]
    return linear(gate * up, w.down_proj.weight, w.down_proj.bias)  # [n_rows, n_embd]


def grouped_attention(
    x: np.ndarray,
    w: LlamaAttentionWeights,
    cfg: LlamaConfig,
    rope: tuple[np.ndarray, np.ndarray],
    cache: KVCache | BatchSlots | None,
    layer: int,
    positions: np.ndarray,
) -> np.ndarray:
    """Causal self-attention with RoPE and grouped KV heads. x: [n_rows, n_embd] -> [n_rows, n_embd]

    `rope` is (cos, sin) of the rows' positions, [..., n_q, d_head]; `cache`, `layer` and
    `positions` ([n_seq], or [n_batch, n_q] for a batch) are as in GPT-2's `self_attention`.
    The cache stores keys already rotated: a key's rotation depends on its own position only.
    """
    lead = positions.shape  # (n_seq,) or (n_batch, n_q)
    q = linear(x, w.q_proj.weight, w.q_proj.bias).reshape(*lead, -1)  # [..., n_q, n_head * d_head]
    k = linear(x, w.k_proj.weight, w.k_proj.bias).reshape(*lead, -1)  # [..., n_q, n_kv_head * d_head]
    v = linear(x, w.v_proj.weight, w.v_proj.bias).reshape(*lead, -1)  # [..., n_q, n_kv_head * d_head]
    q, k, v = split_heads(q, cfg.n_head), split_heads(k, cfg.n_kv_head), split_heads(v, cfg.n_kv_head)
    if w.q_norm is not None and w.k_norm is not None:  # Qwen3: each head's q and k normalised
        q, k = rms_norm(q, w.q_norm, cfg.norm_eps), rms_norm(k, w.k_norm, cfg.norm_eps)  # shapes kept
    q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # [..., n_head | n_kv_head, n_q, d_head]
    if cache is not None:
        k, v = cache.update(layer, k, v, positions)  # [..., n_kv_head, n_keys, d_head]
    out = merge_heads(causal_attention(q, k, v, positions))  # [..., n_q, n_head * d_head]
    return linear(out.reshape(len(x), -1), w.o_proj.weight, w.o_proj.bias)  # [n_rows, n_embd]


def llama_block(
    x: np.ndarray,
    w: LlamaBlockWeights,
    cfg: LlamaConfig,
    rope: tuple[np.ndarray, np.ndarray],
    cache: KVCache | BatchSlots | None,
    layer: int,
    positions: np.ndarray,
) -> np.ndarray:
    """x: [n_rows, n_embd] -> [n_rows, n_embd]: GPT-2's block with RMSNorm, RoPE attention and SwiGLU."""
    h = rms_norm(x, w.input_layernorm, cfg.norm_eps)  # [n_rows, n_embd]
    x = x + grouped_attention(h, w.self_attn, cfg, rope, cache, layer, positions)  # [n_rows, n_embd]
    return x + swiglu_mlp(rms_norm(x, w.post_attention_layernorm, cfg.norm_eps), w.mlp)  # [n_rows, n_embd]


def llama_hidden_states(
    ids: np.ndarray,
    w: LlamaWeights,
    cfg: LlamaConfig,
    cache: KVCache | BatchSlots | None = None,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """Embed `ids`, run the blocks, return the final-norm hidden states. ids: [n_rows] -> [n_rows, n_embd]

    The family's one block loop, with `cache` and `positions` exactly as in GPT-2's
    `minfer.model.hidden_states`. The rotation tables are made once here for every layer.
    """
    # one sequence's cache (a KVCache, or a paged sequence's view) moves its own length; a batch's is its caller's
    own = cache if positions is None and not isinstance(cache, BatchSlots) else None
    if positions is None:
        start = 0 if own is None else own.length
        positions = np.arange(start, start + len(ids))  # [n_seq]
    inv_freq = inverse_frequencies(cfg.d_head, cfg.rope_theta, cfg.rope_scaling)  # [d_head // 2]
    rope = rope_tables(positions, inv_freq)  # (cos, sin), [..., n_q, d_head] each
    x = w.embed_tokens[ids]  # [n_rows, n_embd]
    for layer, bw in enumerate(w.layers):
        x = llama_block(x, bw, cfg, rope, cache, layer, positions)  # [n_rows, n_embd]
    if own is not None:
        own.advance(len(ids))
    return rms_norm(x, w.norm, cfg.norm_eps)  # [n_rows, n_embd]
