"""Exercise 05: counting one decode step (lesson 08, FLOPs vs bytes).

Write the two counts below (plain Python arithmetic), then grade them:

    minfer exercises check 05

One decode step of GPT-2 in float32: one new token, after n_past tokens already in the KV
cache, so attention runs over n_past + 1 keys. Count the main terms only:

- FLOPs: a multiply-add is 2 FLOPs. Count the matrix products: per layer, the four weight
  matrices of a block,
      attn.c_attn [n_embd, 3 n_embd]    attn.c_proj [n_embd, n_embd]
      mlp.c_fc    [n_embd, 4 n_embd]    mlp.c_proj  [4 n_embd, n_embd]
  and attention itself (per layer, q.k and weights @ v over n_past + 1 keys, all heads
  together n_embd numbers wide); and once, the LM head [n_embd, n_vocab] that turns the
  last hidden state into logits.
- Bytes: what has to come from memory. Every weight matrix above read once (4 bytes a
  number), the LM head included, plus the KV cache read by attention: the keys and the values
  of n_past + 1 positions in every layer.

Leave out biases, layer norms, GELU, softmax, embeddings and activations: they are a few per
cent at most. The checks accept anything within 2% of minfer's full count
(`minfer.perf.counts.decode_cost`) on several GPT-2 shapes, from the first token to long contexts.
"""


def decode_step_flops(n_layer: int, n_embd: int, n_vocab: int, n_past: int) -> int:
    """FLOPs of one GPT-2 decode step after n_past cached tokens (main terms)."""
    raise NotImplementedError("write me: decode_step_flops")


def decode_step_bytes(n_layer: int, n_embd: int, n_vocab: int, n_past: int) -> int:
    """Bytes one float32 GPT-2 decode step reads: the weight matrices and the KV cache."""
    raise NotImplementedError("write me: decode_step_bytes")
