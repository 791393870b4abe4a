"""Exercise 05, reference solution: counting one decode step."""


def decode_step_flops(n_layer: int, n_embd: int, n_vocab: int, n_past: int) -> int:
    """FLOPs of one GPT-2 decode step after n_past cached tokens (main terms)."""
    d, n_k = n_embd, n_past + 1
    matmuls = 2 * (d * 3 * d + d * d + d * 4 * d + 4 * d * d)  # one row through the 4 matrices: 24 d^2
    attention = 2 * d * n_k + 2 * d * n_k  # q.k and weights @ v over n_k keys, all heads
    lm_head = 2 * d * n_vocab
    return n_layer * (matmuls + attention) + lm_head


def decode_step_bytes(n_layer: int, n_embd: int, n_vocab: int, n_past: int) -> int:
    """Bytes one float32 GPT-2 decode step reads: the weight matrices and the KV cache."""
    d, n_k, size = n_embd, n_past + 1, 4
    weights = n_layer * 12 * d * d + n_vocab * d  # the 4 matrices per layer (3 + 1 + 4 + 4 d^2), LM head
    kv_cache = n_layer * 2 * n_k * d  # a key and a value of n_embd numbers per layer and position
    return (weights + kv_cache) * size
