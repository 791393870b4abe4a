"""Prefill and decode speed of the NumPy backend, and what the KV cache buys.

    python benchmarks/generate.py [--model DIR] [--prompt-tokens 128] [--new-tokens 64] [--repeats 3]

Prints a table and one JSON line. Three ways to produce the same tokens, measured side by side in
one run (this machine is shared and noisy: compare the ratios, not the absolute figures):
  prefill   the prompt in one pass (matrix-matrix products)
  decode    one token at a time against the KV cache (matrix-vector products)
  no cache  every new token re-runs the whole sequence (what decode would cost without a cache)
"""

from __future__ import annotations

import argparse
import json
from time import perf_counter

import numpy as np

import minfer


def best_of(repeats: int, fn) -> float:
    """The fastest of several runs: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeats):
        t = perf_counter()
        fn()
        times.append(perf_counter() - t)
    return min(times)


def run(model: minfer.Model, n_prompt: int, n_new: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.config.n_vocab, n_prompt)  # [n_prompt]
    new = rng.integers(0, model.config.n_vocab, n_new)  # [n_new] teacher-forced decode inputs

    def prefill():
        model.prefill(ids, model.new_cache(n_prompt + n_new))

    def prefill_and_decode():
        cache = model.new_cache(n_prompt + n_new)
        model.prefill(ids, cache)
        for t in new:
            model.decode(int(t), cache)

    def no_cache():  # a fresh cache each step: all keys and values recomputed, LM head on the last row only
        for i in range(1, n_new + 1):
            model.prefill(np.concatenate([ids, new[:i]]), model.new_cache(n_prompt + i))

    t_prefill = best_of(repeats, prefill)
    t_decode = best_of(repeats, prefill_and_decode) - t_prefill
    t_nocache = best_of(max(1, repeats // 2), no_cache)
    return {
        "model": model.name,
        "n_params": model.n_params(),
        "prompt_tokens": n_prompt,
        "new_tokens": n_new,
        "prefill_tokens_per_s": n_prompt / t_prefill,
        "decode_tokens_per_s": n_new / t_decode,
        "no_cache_tokens_per_s": n_new / t_nocache,
        "kv_cache_speedup": t_nocache / t_decode,
        "weights_mb": model.weights.nbytes() / 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    model = minfer.load_model(a.model)
    n_prompt = min(a.prompt_tokens, model.config.n_ctx - a.new_tokens)
    r = run(model, n_prompt, a.new_tokens, a.repeats)
    print(f"model {r['model']}  ({r['n_params']:,} parameters, {r['weights_mb']:.1f} MB float32)")
    print(f"{'phase':<10} {'tokens':>7} {'tok/s':>10}")
    print(f"{'prefill':<10} {n_prompt:>7} {r['prefill_tokens_per_s']:>10.0f}")
    print(f"{'decode':<10} {a.new_tokens:>7} {r['decode_tokens_per_s']:>10.0f}")
    print(f"{'no cache':<10} {a.new_tokens:>7} {r['no_cache_tokens_per_s']:>10.0f}")
    print(f"KV cache speedup over recomputing: {r['kv_cache_speedup']:.1f}x")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
