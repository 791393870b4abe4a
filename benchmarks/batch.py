"""Decode throughput and arithmetic intensity as the batch grows.

    python benchmarks/batch.py [--model DIR | --gpt2-124m] [--batch 1,4,8,16] [--backends numpy,numba]
                               [--context 64] [--steps 16]

For each batch size B and backend: B prompts of `--context` tokens are prefilled into one batched
KV cache, then `--steps` decode steps are timed (best of `--repeats`; the backends take turns
within each repeat, so both see the same machine). Prints a table, each backend's tokens/s
against the first's, and one JSON line. The NumPy backend runs the reference block loop with
BLAS; the Numba backend one compiled step for the whole batch (`minfer.fast.decode_step`).

FLOPs and bytes are counted by `minfer.perf.counts.decode_cost`, summed over the timed steps (the
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
from time import perf_counter, sleep

import numpy as np

import minfer
from minfer.batch import BatchKVCache, decode_batch, prefill_slot
from minfer.config import Config
from minfer.cost import Cost
from minfer.model import Model
from minfer.perf.counts import Arch, decode_cost
from minfer.weights import random_weights

SETTLE_S = 0.2  # seconds between a run's prefill (or the other backend's run) and its timed steps


def step_counts(model: Model, batch: int, context: int, steps: int) -> Cost:
    """FLOPs and bytes of `steps` decode steps for `batch` sequences after `context` cached
    positions each (minfer.perf.counts: the same count as the profiler's)."""
    arch = Arch.from_model(model)
    return sum((decode_cost(arch, n_past=context + i, n_batch=batch) for i in range(steps)), Cost())


def run_steps(model: Model, batch: int, context: int, steps: int, seed: int) -> float:
    """Seconds for `steps` batched decode steps after prefilling `batch` random prompts."""
    rng = np.random.default_rng(seed)
    cache = BatchKVCache.empty(model, batch, context + steps)
    for b in range(batch):
        prefill_slot(model, rng.integers(0, model.config.n_vocab, context), cache, b)
    rows = np.arange(batch)
    tokens = rng.integers(0, model.config.n_vocab, batch)  # [batch]
    sleep(SETTLE_S)  # BLAS workers spin ~100 ms after a call: let the last run's go idle
    t = perf_counter()
    for _ in range(steps):
        tokens = decode_batch(model, tokens, cache, rows).argmax(axis=-1)  # [batch]
    return perf_counter() - t


def measure(models: dict[str, Model], batch: int, context: int, steps: int, repeats: int) -> list[dict]:
    """One row per backend for this batch size; repeats interleave the backends."""
    run_steps(next(iter(models.values())), 1, 4, 2, 0)  # warm up (Numba's first call compiles)
    best = dict.fromkeys(models, float("inf"))
    for i in range(repeats):
        for name, model in models.items():
            best[name] = min(best[name], run_steps(model, batch, context, steps, seed=i))
    cost = step_counts(next(iter(models.values())), batch, context, steps)  # all the timed steps
    return [
        {
            "backend": name,
            "batch": batch,
            "decode_tokens_per_s": batch * steps / t,
            "step_ms": 1e3 * t / steps,
            "flop_per_byte": cost.flop_per_byte,
            "gflop_per_s": cost.flops / t / 1e9,
            "gb_per_s": cost.bytes / t / 1e9,
            "kv_share": (cost.kv_read + cost.kv_write) / cost.bytes,
        }
        for name, t in best.items()
    ]


def main() -> None:
    p = argparse.ArgumentParser(description="Decode tokens/s and FLOP/byte by batch size.")
    p.add_argument("--model", default=None, help="a model name or directory (default: the default model)")
    p.add_argument("--gpt2-124m", action="store_true", help="GPT-2 124M's shape with random weights")
    p.add_argument("--batch", default="1,4,8,16", help="batch sizes, comma-separated")
    p.add_argument("--backends", default="numpy,numba", help="backends to compare, the first is the baseline")
    p.add_argument("--context", type=int, default=64, help="prompt tokens per sequence before the timed steps")
    p.add_argument("--steps", type=int, default=16, help="decode steps timed")
    p.add_argument("--repeats", type=int, default=3, help="runs per backend and batch size; the best is kept")
    a = p.parse_args()
    backends = a.backends.split(",")
    if a.gpt2_124m:
        cfg = Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257)
        weights = random_weights(cfg, seed=0)
        models = {b: Model(cfg, weights, backend=b, name="gpt2-124M-shape (random)") for b in backends}
    else:
        models = {b: minfer.load_model(a.model, backend=b) for b in backends}
    rows = [r for b in a.batch.split(",") for r in measure(models, int(b), a.context, a.steps, a.repeats)]
    base = {r["batch"]: r["decode_tokens_per_s"] for r in rows if r["backend"] == backends[0]}
    for r in rows:
        r["vs_" + backends[0]] = r["decode_tokens_per_s"] / base[r["batch"]]
    model = next(iter(models.values()))
    print(f"model {model.name}: {model.n_params():,} parameters, context {a.context} tokens, {a.steps} steps")
    print(
        f"tok/s: the whole batch's (B tokens a step), best of {a.repeats}; FLOP/byte, GFLOP/s and GB/s from the "
        "counted FLOPs and bytes (minfer.perf.counts) over the measured time; KV %: the KV cache's share of the bytes"
    )
    print(
        f"{'batch':>5} {'backend':>8} {'tok/s':>9} {'vs ' + backends[0]:>9} {'ms/step':>8} "
        f"{'FLOP/byte':>10} {'GFLOP/s':>8} {'GB/s':>6} {'KV %':>5}"
    )
    for r in rows:
        print(
            f"{r['batch']:>5} {r['backend']:>8} {r['decode_tokens_per_s']:>9.0f} {r['vs_' + backends[0]]:>8.2f}x "
            f"{r['step_ms']:>8.2f} {r['flop_per_byte']:>10.2f} {r['gflop_per_s']:>8.1f} {r['gb_per_s']:>6.1f} "
            f"{r['kv_share']:>5.0%}"
        )
    print(json.dumps({"model": model.name, "context": a.context, "rows": rows}))


if __name__ == "__main__":
    main()
