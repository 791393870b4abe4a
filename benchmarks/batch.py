"""Decode throughput and arithmetic intensity as the batch grows.

    python benchmarks/batch.py [--model DIR | --gpt2-124m] [--batch 1,2,4,8,16] [--context 64] [--steps 16]

For each batch size B: B prompts of `--context` tokens are prefilled into one batched KV cache,
then `--steps` decode steps are timed (best of `--repeats`). Prints a table and one JSON line.

FLOPs and bytes are counted by `minfer.counts.decode_cost`, summed over the timed steps (the
cache grows by one position per step). Its big terms, for B sequences attending over T keys
(float32, 4 bytes a number; the library also counts biases, norms and activations):
  FLOPs  = 2 B (n_layer 12 n_embd^2 + n_embd n_vocab)        weight matmuls and the LM head
         + 4 B n_layer T n_embd                              scores and weights @ values over T keys
  bytes  = 4 (n_layer 12 n_embd^2 + n_vocab n_embd)          every weight matrix read once per step
         + 4 * 2 B n_layer T n_embd                          every cached key and value read
Batching multiplies the weight FLOPs by B but not the weight bytes: FLOP/byte grows with B until
the KV-cache reads (which also grow with B) dominate; the "KV %" column is their share of the bytes.
"""

from __future__ import annotations

import argparse
import json
from time import perf_counter

import numpy as np

import minfer
from minfer.batch import BatchKVCache, decode_batch, prefill_slot
from minfer.config import Config
from minfer.cost import Cost
from minfer.counts import Arch, decode_cost
from minfer.model import Model
from minfer.weights import random_weights


def step_counts(model: Model, batch: int, context: int, steps: int) -> Cost:
    """FLOPs and bytes of `steps` decode steps for `batch` sequences after `context` cached
    positions each (minfer.counts: the same count as the profiler's)."""
    arch = Arch.from_model(model)
    return sum((decode_cost(arch, n_past=context + i, n_batch=batch) for i in range(steps)), Cost())


def measure(model: Model, batch: int, context: int, steps: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    best = float("inf")
    for _ in range(repeats):
        cache = BatchKVCache.empty(model, batch, context + steps)
        for b in range(batch):
            prefill_slot(model, rng.integers(0, model.config.n_vocab, context), cache, b)
        rows = np.arange(batch)
        tokens = rng.integers(0, model.config.n_vocab, batch)  # [batch]
        t = perf_counter()
        for _ in range(steps):
            tokens = decode_batch(model, tokens, cache, rows).argmax(axis=-1)  # [batch]
        best = min(best, perf_counter() - t)
    cost = step_counts(model, batch, context, steps)  # all the timed steps
    return {
        "batch": batch,
        "decode_tokens_per_s": batch * steps / best,
        "step_ms": 1e3 * best / steps,
        "flop_per_byte": cost.flop_per_byte,
        "gflop_per_s": cost.flops / best / 1e9,
        "gb_per_s": cost.bytes / best / 1e9,
        "kv_share": (cost.kv_read + cost.kv_write) / cost.bytes,
    }


def main() -> None:
    p = argparse.ArgumentParser(description="Decode tokens/s and FLOP/byte by batch size.")
    p.add_argument("--model", default=None, help="a model directory (default: the default model)")
    p.add_argument("--gpt2-124m", action="store_true", help="GPT-2 124M's shape with random weights")
    p.add_argument("--batch", default="1,2,4,8,16")
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if a.gpt2_124m:
        cfg = Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257)
        model = Model(cfg, random_weights(cfg, seed=0), name="gpt2-124M-shape (random)")
    else:
        model = minfer.load_model(a.model)
    rows = [measure(model, int(b), a.context, a.steps, a.repeats) for b in a.batch.split(",")]
    print(f"model {model.name}: {model.n_params():,} parameters, context {a.context} tokens")
    print(f"{'batch':>5} {'tok/s':>9} {'ms/step':>8} {'FLOP/byte':>10} {'GFLOP/s':>8} {'GB/s':>6} {'KV %':>5}")
    for r in rows:
        print(
            f"{r['batch']:>5} {r['decode_tokens_per_s']:>9.0f} {r['step_ms']:>8.2f} "
            f"{r['flop_per_byte']:>10.2f} {r['gflop_per_s']:>8.1f} {r['gb_per_s']:>6.1f} {r['kv_share']:>5.0%}"
        )
    print(json.dumps({"model": model.name, "context": a.context, "rows": rows}))


if __name__ == "__main__":
    main()
