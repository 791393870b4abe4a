"""The thread policy, measured per phase: BLAS on one thread inside the Numba backend, or not.

    python benchmarks/thread_policy.py [--model DIR | --gpt2-124m] [--prompt 256] [--steps 16] [--rounds 5]

The Numba backend's prefill runs BLAS matmuls between parallel Numba kernels; its decode runs
only Numba. With both thread pools on the machine's cores, OpenBLAS's workers spin for ~100 ms
after each call and take cores from Numba's threads. `minfer.fast.blas_on_one_thread` (the
policy) keeps BLAS on one thread there. Here each round runs, with the policy and then without
it (patched out): a prefill of `--prompt` tokens, then `--steps` decode steps straight after it,
then a batch of 8 prompts prefilled and `--steps` batched steps straight after. Medians over the
rounds; the "off / on" column is how much slower each phase is without the policy.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
from time import perf_counter

import numpy as np

import minfer
from minfer.batch import BatchKVCache, decode_batch, prefill_slot
from minfer.config import Config
from minfer.fast import backend
from minfer.model import Model
from minfer.weights import random_weights


def phases(model: Model, n_prompt: int, steps: int, seed: int) -> dict[str, float]:
    """Seconds of each phase, each started straight after the BLAS work before it."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, model.config.n_vocab, n_prompt)  # [n_prompt]
    cache = model.new_cache(n_prompt + steps)
    t0 = perf_counter()
    model.prefill(ids, cache)
    t1 = perf_counter()
    for _ in range(steps):
        model.decode(5, cache)
    t2 = perf_counter()
    batch = BatchKVCache.empty(model, 8, 64 + steps)
    for b in range(8):
        prefill_slot(model, rng.integers(0, model.config.n_vocab, 64), batch, b)
    t3 = perf_counter()
    tokens, rows = rng.integers(0, model.config.n_vocab, 8), np.arange(8)  # [8], [8]
    for _ in range(steps):
        tokens = decode_batch(model, tokens, batch, rows).argmax(axis=-1)  # [8]
    t4 = perf_counter()
    return {"prefill": t1 - t0, "decode": (t2 - t1) / steps, "batch 8 decode": (t4 - t3) / steps}


def main() -> None:
    p = argparse.ArgumentParser(description="Numba backend phases with and without the BLAS thread policy.")
    p.add_argument("--model", default=None, help="a model directory (default: the default model)")
    p.add_argument("--gpt2-124m", action="store_true", help="GPT-2 124M's shape with random weights")
    p.add_argument("--prompt", type=int, default=None, help="prompt tokens (default: 256, or what n_ctx allows)")
    p.add_argument("--steps", type=int, default=16, help="decode steps timed after each prefill")
    p.add_argument("--rounds", type=int, default=5, help="rounds, each with the policy on then off; medians")
    a = p.parse_args()
    if a.gpt2_124m:
        cfg = Config(n_layer=12, n_head=12, n_embd=768, n_ctx=1024, n_vocab=50257)
        model = Model(cfg, random_weights(cfg, seed=0), backend="numba", name="gpt2-124M-shape (random)")
    else:
        model = minfer.load_model(a.model, backend="numba")
    room = min(model.config.n_ctx, 64 + a.steps) - a.steps  # the batch's prompts are 64 tokens
    if a.prompt is None:
        a.prompt = min(256, model.config.n_ctx - a.steps)
    if a.prompt + a.steps > model.config.n_ctx or room < 64:
        p.error(f"--prompt {a.prompt} + --steps {a.steps} must fit in n_ctx={model.config.n_ctx} (and 64 + steps too)")
    policy = backend.blas_on_one_thread
    phases(model, 8, 2, 0)  # warm up: compile or load every kernel
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for i in range(a.rounds):
        for setting in ("on", "off"):
            backend.blas_on_one_thread = policy if setting == "on" else contextlib.nullcontext
            try:
                runs[setting].append(phases(model, a.prompt, a.steps, seed=i))
            finally:
                backend.blas_on_one_thread = policy
    med = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in runs.items()}
    print(f"model {model.name}, backend numba: prompt {a.prompt} tokens, {a.steps} steps, median of {a.rounds}")
    print(f"{'phase':<16} {'policy on ms':>13} {'policy off ms':>14} {'off / on':>9}")
    for k in med["on"]:
        on, off = 1e3 * med["on"][k], 1e3 * med["off"][k]
        print(f"{k:<16} {on:>13.2f} {off:>14.2f} {off / on:>8.2f}x")
    print(json.dumps({"model": model.name, "prompt": a.prompt, "steps": a.steps, "median_s": med}))


if __name__ == "__main__":
    main()
