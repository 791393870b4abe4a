"""`minfer bench`: prefill and decode speed of minfer's backends, side by side in one run.

Each round runs every variant once (numpy, numba, numba with int8 weights), so a slow minute
on this shared machine hits them all alike; the table shows medians over rounds, the ratio to
the first variant of the same model, and the share of this machine's ceilings (`minfer
calibrate`). By default both classroom models run (GPT-2 and classroom-llama, the same corpus
and tokenizer), so the two architectures compare in one run. For the
comparison with transformers and llama.cpp, see benchmarks/peers.py.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from minfer.checkpoints.loading import load_model
from minfer.errors import InvalidInputError
from minfer.perf.counts import Arch, decode_cost, prefill_cost

VARIANTS = {"numpy": ("numpy", None), "numba": ("numba", None), "numba-int8": ("numba", "int8")}
DEFAULT_MODELS = ("classroom", "classroom-llama")


def time_variant(model, ids: list[int], n_new: int) -> dict:
    """One prefill of `ids` and n_new decode steps after it: seconds of each."""
    cache = model.new_cache(len(ids) + n_new)
    t = time.perf_counter()
    token = int(model.prefill(ids, cache).argmax())
    prefill = time.perf_counter() - t
    time.sleep(0.2)  # let BLAS threads stop spinning: they would steal cores from decode's kernels
    t = time.perf_counter()
    for _ in range(n_new):
        token = int(model.decode(token, cache).argmax())
    return {"prefill_s": prefill, "decode_s": (time.perf_counter() - t) / n_new}


def bench(
    model_paths=DEFAULT_MODELS,
    variants=("numpy", "numba", "numba-int8"),
    prompt_tokens: int = 128,
    new_tokens: int = 32,
    rounds: int = 3,
    ceilings=None,
) -> list[dict]:
    """Median prefill tok/s, TTFT, decode tok/s and TPOT per model and variant, with their
    shares of the ceilings when given. `model_paths` is one model (a name or path, None for the
    default) or a list of them. Every (model, variant) is loaded once and warmed up (JIT
    compilation not timed), then each round runs them all once."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InvalidInputError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    paths = [model_paths] if model_paths is None or isinstance(model_paths, str) else list(model_paths)
    models = {(p, v): load_model(p, backend=VARIANTS[v][0], quantize=VARIANTS[v][1]) for p in paths for v in variants}
    n_ctx = min(m.config.n_ctx for m in models.values())
    if prompt_tokens + new_tokens > n_ctx:
        raise InvalidInputError(f"--prompt-tokens {prompt_tokens} + --new-tokens {new_tokens} exceed n_ctx={n_ctx}")
    ids = np.random.default_rng(0).integers(0, 100, prompt_tokens).tolist()
    samples: dict = {key: [] for key in models}
    for m in models.values():
        time_variant(m, ids[:8], 2)  # warm-up: compile or load the kernels
    for _ in range(rounds):
        for key, m in models.items():
            samples[key].append(time_variant(m, ids, new_tokens))
    return [summarize(v, models[p, v], samples[p, v], prompt_tokens, new_tokens, ceilings) for p, v in models]


def summarize(variant: str, model, runs: list[dict], n_prompt: int, n_new: int, ceilings) -> dict:
    prefill = statistics.median(r["prefill_s"] for r in runs)
    tpot = statistics.median(r["decode_s"] for r in runs)
    arch = Arch.from_model(model)
    step = decode_cost(arch, n_prompt + n_new // 2)  # a step in the middle of the run
    row = {
        "model": model.name,
        "variant": variant,
        "weights": model.weight_dtype,
        "prefill_tokens_per_s": n_prompt / prefill,
        "ttft_ms": 1e3 * prefill,
        "decode_tokens_per_s": 1 / tpot,
        "tpot_ms": 1e3 * tpot,
        "decode_gbs": step.bytes / tpot / 1e9,
        "prefill_gflops": prefill_cost(arch, n_prompt).flops / prefill / 1e9,
    }
    if ceilings is not None:
        row["decode_share_of_bandwidth"] = row["decode_gbs"] / ceilings.bandwidth_gbs
        row["prefill_share_of_peak"] = row["prefill_gflops"] / ceilings.peak_gflops
    return row


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table; decode ratios to each model's first variant."""
    firsts: dict = {}
    for r in rows:
        firsts.setdefault(r["model"], r)
    width = max(len("model"), *(len(r["model"]) for r in rows))
    lines = [
        f"{'model':<{width}} {'variant':<11} {'weights':<8} {'prefill tok/s':>13} {'TTFT ms':>8} {'decode tok/s':>12} "
        f"{'TPOT ms':>8} {'x ' + rows[0]['variant']:>12} {'GB/s':>6} {'% BW':>5} {'% peak':>6}"
    ]
    for r in rows:
        base = firsts[r["model"]]
        share = lambda k: f"{100 * r[k]:.0f}%" if k in r else "-"  # noqa: E731
        lines.append(
            f"{r['model']:<{width}} {r['variant']:<11} {r['weights']:<8} {r['prefill_tokens_per_s']:>13,.0f} "
            f"{r['ttft_ms']:>8.1f} {r['decode_tokens_per_s']:>12,.1f} {r['tpot_ms']:>8.2f} "
            f"{r['decode_tokens_per_s'] / base['decode_tokens_per_s']:>11.2f}x {r['decode_gbs']:>6.1f} "
            f"{share('decode_share_of_bandwidth'):>5} {share('prefill_share_of_peak'):>6}"
        )
    return "\n".join(lines)
