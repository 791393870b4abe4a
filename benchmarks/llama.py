"""Decode speed of the Llama family: the NumPy reference against the Numba backend, float32 and int8.

    python benchmarks/llama.py [--batch 1,4] [--context 64] [--steps 16] [--repeats 3]

The model has the classroom-llama's shape (6 layers x 384, 8 query heads sharing 2 KV heads,
SwiGLU 1,024 wide, 4,096 tokens, tied embeddings: 10.9M parameters, 43.6 MB in float32, 10.9 MB
in int8) with random weights (`minfer.weights.random_llama_weights`; speed does not depend on
what the weights say). For each batch size, each variant (numpy, numba, numba-int8) prefills
`--context` random tokens per sequence, then `--steps` batched decode steps are timed
(benchmarks/batch.py's `run_steps`; best of `--repeats`, the variants taking turns within each
repeat so all see the same machine).

Bytes are counted by `minfer.perf.counts` for each variant's own storage (1 byte per int8
weight), summed over the timed steps; GB/s is bytes / time, and "% BW" its share of the read
bandwidth measured in the same run (`minfer.perf.calibrate.measure_bandwidth_gbs`, the best of a
measurement before and one after the timings). The float32 weights are larger than this
machine's 32 MB L3 cache, so their decode streams them from DRAM; the int8 ones fit in it, so
their "% BW" can pass 100%: the bound there is the cache's bandwidth, not DRAM's.

The machine is shared (a training job may be running on it): read the ratios, not the figures.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from batch import run_steps, step_counts  # benchmarks/batch.py, beside this script

from minfer.config import LlamaConfig
from minfer.model import Model
from minfer.perf.calibrate import QUICK, measure_bandwidth_gbs
from minfer.weights import random_llama_weights

CLASSROOM_LLAMA = LlamaConfig(
    n_layer=6, n_head=8, n_kv_head=2, n_embd=384, n_ctx=512, n_vocab=4096, n_hidden=1024, tie_word_embeddings=True
)
VARIANTS = {"numpy": ("numpy", None), "numba": ("numba", None), "numba-int8": ("numba", "int8")}


def bandwidth_gbs() -> float:
    """DRAM read bandwidth now, GB/s (calibrate's quick measurement: 256 MiB, best of 3)."""
    return measure_bandwidth_gbs(QUICK[1], QUICK[3])


def measure(models: dict[str, Model], n_batch: int, context: int, steps: int, repeats: int) -> list[dict]:
    """One row per variant for this batch size; repeats interleave the variants."""
    best = dict.fromkeys(models, float("inf"))
    for i in range(repeats):
        for name, model in models.items():
            best[name] = min(best[name], run_steps(model, n_batch, context, steps, seed=i))
    rows = []
    for name, seconds in best.items():
        cost = step_counts(models[name], n_batch, context, steps)  # this variant's bytes
        rows.append(
            {
                "variant": name,
                "batch": n_batch,
                "decode_tokens_per_s": n_batch * steps / seconds,
                "step_ms": 1e3 * seconds / steps,
                "mb_per_step": cost.bytes / steps / 1e6,
                "gb_per_s": cost.bytes / seconds / 1e9,
            }
        )
    return rows


def print_table(rows: list[dict], bandwidth: float) -> None:
    head = f"{'tok/s':>8} {'vs numpy':>9} {'ms/step':>8} {'MB/step':>8} {'GB/s':>6} {'% BW':>6}"
    print(f"{'batch':>5} {'variant':>11} {head}")
    for r in rows:
        print(
            f"{r['batch']:>5} {r['variant']:>11} {r['decode_tokens_per_s']:>8.0f} {r['vs_numpy']:>8.2f}x "
            f"{r['step_ms']:>8.2f} {r['mb_per_step']:>8.1f} {r['gb_per_s']:>6.1f} {r['gb_per_s'] / bandwidth:>6.0%}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description="Llama-family decode tok/s: numpy vs numba, float32 and int8.")
    p.add_argument("--batch", default="1,4", help="batch sizes, comma-separated")
    p.add_argument("--context", type=int, default=64, help="prompt tokens per sequence before the timed steps")
    p.add_argument("--steps", type=int, default=16, help="decode steps timed")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant and batch size; the best is kept")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON to this file")
    a = p.parse_args()
    weights = random_llama_weights(CLASSROOM_LLAMA, seed=0)
    models = {
        name: Model(CLASSROOM_LLAMA, weights, backend=b, quantize=q, name="classroom-llama shape (random)")
        for name, (b, q) in VARIANTS.items()
    }
    for model in models.values():
        run_steps(model, 2, 4, 2, 0)  # warm up: Numba's first call compiles (or loads from its cache)
    before = bandwidth_gbs()
    rows = [r for b in a.batch.split(",") for r in measure(models, int(b), a.context, a.steps, a.repeats)]
    after = bandwidth_gbs()
    bandwidth = max(before, after)
    base = {r["batch"]: r["decode_tokens_per_s"] for r in rows if r["variant"] == "numpy"}
    for r in rows:
        r["vs_numpy"] = r["decode_tokens_per_s"] / base[r["batch"]]
        r["share_of_bandwidth"] = r["gb_per_s"] / bandwidth
    model = models["numpy"]
    print(
        f"model {model.name}: {model.n_params():,} parameters, context {a.context} tokens, {a.steps} steps, "
        f"best of {a.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"read bandwidth measured before and after: {before:.1f}, {after:.1f} GB/s (% BW uses the best)")
    print_table(rows, bandwidth)
    result = {"model": model.name, "context": a.context, "steps": a.steps, "bandwidth_gbs": bandwidth, "rows": rows}
    print(json.dumps(result))
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
