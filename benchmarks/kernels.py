"""The Numba kernels (minfer.fast.kernels) against NumPy at GPT-2 124M's shapes, next to this machine's
memory bandwidth measured in the same run.

    python benchmarks/kernels.py [--repeats 9] [--skip-compile] [--json-out FILE]

1. bandwidth: minfer.perf.calibrate.measure_bandwidth_gbs(256 MiB, 3), at the start and at the end;
2. matrix products (decode's weight reads): NumPy `x @ w + b` and the kernels at 1, 4, 8 and 16 rows,
   int8 at 1 row, and the LM head (`x @ wte.T` against lm_head, float32 and int8 rows). GB/s counts the
   weight bytes (int8: 1 byte a weight plus the float32 scales; biases included) once per call,
   as a matrix product reads them once whatever the number of rows;
3. attention: decode at several cache lengths (and the kernel's one-thread and all-thread paths,
   which set its PARALLEL_MIN_WORK), prefill at 256 and 1024 tokens, against the reference;
4. per-call overhead at toy sizes: what calling each kernel from Python costs beside NumPy;
5. a Numba kernel right after a multi-threaded BLAS call (OpenBLAS's threads still spinning);
6. compile time: every kernel compiled cold (in a fresh Numba cache directory) and then loaded
   from that cache by a new process (warm start), each in a subprocess.

Each matrix has enough copies to fill 128 MB, cycled call after call, so every call reads its
weights from DRAM as a real decode step does (a 7 MB matrix called twice in a row would be
served from the 32 MB L3 cache). This machine is shared and noisy: the variants are timed
interleaved, round after round, and the medians reported; a pause before each timed block lets
the other thread pool go idle (section 5 shows why). Prints tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from time import perf_counter, sleep

import numpy as np

from minfer.attention import causal_attention
from minfer.fast import kernels as K
from minfer.fast.kernels.attention import _decode_attention_parallel, _decode_attention_serial
from minfer.perf.calibrate import measure_bandwidth_gbs

N_EMBD, N_VOCAB, N_HEAD = 768, 50257, 12
MATRICES = {"c_attn": (768, 2304), "c_fc": (768, 3072), "mlp c_proj": (3072, 768)}
COPY_BYTES = 128e6  # weight copies per matrix: 4x the L3 cache
ROWS = (1, 4, 8, 16)  # rows of x: decode, and small decode batches
PAUSE = 0.15  # seconds before each timed block: OpenBLAS's idle threads spin ~0.1 s after a call

NO_SCALE = np.zeros(0, np.float32)  # float32 weights: no per-row scale


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def interleaved(
    variants: dict[str, Callable[[int], object]],
    rounds: int,
    calls: int = 5,
    pause: float = PAUSE,
    per_call: bool = True,
) -> dict[str, tuple[float, float]]:
    """(median, best) seconds per call of each variant, over rounds.

    Round after round, each variant in turn: a pause (so no other thread pool is still spinning,
    see `after_blas`), one untimed call (wakes this pool's threads), then `calls` timed calls. A
    round's figure is the median of its calls (per_call) or, for calls too short to time one by
    one, their mean. Each call gets a fresh counter n, so a variant can cycle weight copies."""
    for run in variants.values():
        run(0)  # compile, start the thread pools
    times: dict[str, list[float]] = {name: [] for name in variants}
    n = 0
    for _ in range(rounds):
        for name, run in variants.items():
            sleep(pause)
            run(n)
            block = []
            start = perf_counter()
            for c in range(1, calls + 1):
                run(n + c)
                if per_call:
                    block.append(perf_counter() - start)
                    start = perf_counter()
            times[name].append(statistics.median(block) if per_call else (perf_counter() - start) / calls)
            n += calls + 1
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def copies(make: Callable[[int], np.ndarray], nbytes: int) -> list[np.ndarray]:
    return [make(seed) for seed in range(max(1, int(COPY_BYTES // nbytes) + 1))]


def matrix_rows(rounds: int) -> list[dict]:
    """Decode's weight matrices: NumPy vs the kernels, float32 and int8."""
    rows = []
    for name, (n_in, n_out) in MATRICES.items():
        ws = copies(lambda s: randn(n_in, n_out, seed=s), 4 * n_in * n_out)
        qs = copies(lambda s: K.quantize_int8(ws[s % len(ws)], 0), n_in * n_out)
        b = randn(n_out)
        x = {r: randn(r, n_in) for r in ROWS}
        out = {r: np.empty((r, n_out), np.float32) for r in ROWS}
        f32, i8 = 4 * (n_in * n_out + n_out), n_in * n_out + 8 * n_out
        variants, nbytes = {}, {}
        for r in ROWS:
            variants[f"numpy x @ w + b, {r} row"] = lambda n, r=r: x[r] @ ws[n % len(ws)] + b
            variants[f"linear, {r} row"] = lambda n, r=r: K.linear(x[r], ws[n % len(ws)], b, out[r])
            nbytes[f"numpy x @ w + b, {r} row"] = nbytes[f"linear, {r} row"] = f32
        variants["linear_int8, 1 row"] = lambda n: K.linear_int8(x[1], *qs[n % len(qs)], b, out[1])
        nbytes["linear_int8, 1 row"] = i8
        for variant, (sec, best) in interleaved(variants, rounds).items():
            rows.append(
                {
                    "op": f"{name} {n_in}x{n_out}",
                    "variant": variant,
                    "us": 1e6 * sec,
                    "best_us": 1e6 * best,
                    "bytes": nbytes[variant],
                    "gbs": nbytes[variant] / sec / 1e9,
                    "best_gbs": nbytes[variant] / best / 1e9,
                }
            )
    return rows + lm_head_rows(rounds)


def lm_head_rows(rounds: int) -> list[dict]:
    wte = randn(N_VOCAB, N_EMBD)  # 154 MB: larger than the cache by itself
    wte_q, scale = K.quantize_int8(wte, 1)
    x = {r: randn(r, N_EMBD) for r in (1, 4)}
    out = {r: np.empty((r, N_VOCAB), np.float32) for r in (1, 4)}
    f32, i8 = 4 * wte.size, wte.size + 4 * N_VOCAB
    variants = {
        "numpy x @ wte.T, 1 row": (lambda n: x[1] @ wte.T, f32),
        "lm_head, 1 row": (lambda n: K.lm_head(x[1], wte, NO_SCALE, out[1]), f32),
        "numpy x @ wte.T, 4 row": (lambda n: x[4] @ wte.T, f32),
        "lm_head, 4 row": (lambda n: K.lm_head(x[4], wte, NO_SCALE, out[4]), f32),
        "lm_head int8, 1 row": (lambda n: K.lm_head(x[1], wte_q, scale, out[1]), i8),
    }
    times = interleaved({k: v[0] for k, v in variants.items()}, max(5, rounds // 2), calls=3)
    return [
        {
            "op": f"lm_head {N_VOCAB}x{N_EMBD}",
            "variant": k,
            "us": 1e6 * t,
            "best_us": 1e6 * best,
            "bytes": variants[k][1],
            "gbs": variants[k][1] / t / 1e9,
            "best_gbs": variants[k][1] / best / 1e9,
        }
        for k, (t, best) in times.items()
    ]


def attention_rows(rounds: int) -> list[dict]:
    """Decode attention at several cache lengths; prefill attention against the reference."""
    rows = []
    max_seq, n_layer = 1024, 12
    # every layer's cache, cycled as a decode step does: 72 MB at 1024 positions, past the L3 cache
    k, v = randn(n_layer, N_HEAD, max_seq, 64, seed=1), randn(n_layer, N_HEAD, max_seq, 64, seed=2)
    q, out, scores = randn(N_HEAD, 64), np.empty((N_HEAD, 64), np.float32), np.empty((N_HEAD, max_seq), np.float32)
    for length in (1, 8, 32, 64, 256, 1024):
        times = interleaved(
            {
                "numpy reference": lambda n: K.decode_attention_numpy(q, k[n % n_layer], v[n % n_layer], length),
                "decode_attention": lambda n: K.decode_attention(
                    q, k[n % n_layer], v[n % n_layer], length, out, scores
                ),
                "1 thread": lambda n: _decode_attention_serial(q, k[n % n_layer], v[n % n_layer], length, out, scores),
                "all threads": lambda n: _decode_attention_parallel(
                    q, k[n % n_layer], v[n % n_layer], length, out, scores
                ),
            },
            rounds,
            calls=12,
        )
        nbytes = 2 * N_HEAD * length * 64 * 4  # the keys and values read
        rows += [
            {
                "op": f"decode attention, 12x64, length {length}",
                "variant": name,
                "us": 1e6 * t,
                "best_us": 1e6 * best,
                "bytes": nbytes,
                "gbs": nbytes / t / 1e9,
                "best_gbs": nbytes / best / 1e9,
            }
            for name, (t, best) in times.items()
        ]
    for n in (256, 1024):
        q, k, v = randn(N_HEAD, n, 64), randn(N_HEAD, n, 64, seed=1), randn(N_HEAD, n, 64, seed=2)
        out = np.empty_like(q)
        variants = {"numpy causal_attention": lambda i: causal_attention(q, k, v)}
        for block in (32, 64, 128):
            variants[f"prefill_attention block {block}"] = lambda i, block=block: K.prefill_attention(
                q, k, v, out, block
            )
        flops = N_HEAD * n * (n + 1) / 2 * 4 * 64  # the causal half: q.k and p v, 2 d_head each
        times = interleaved(variants, max(3, rounds // 4), calls=2)
        rows += [
            {
                "op": f"prefill attention, 12x64, {n} tokens",
                "variant": name,
                "us": 1e6 * t,
                "best_us": 1e6 * best,
                "gflops": flops / t / 1e9,
            }
            for name, (t, best) in times.items()
        ]
    return rows


def overhead_rows(rounds: int) -> list[dict]:
    """Per-call cost at toy sizes (8 numbers a row): the Python-to-kernel call, nearly no work."""
    x, w, b = randn(1, 8), randn(8, 8), randn(8)
    o = np.empty((1, 8), np.float32)
    q, kc, oq, sc = randn(1, 8), randn(1, 4, 8), np.empty((1, 8), np.float32), np.empty((1, 4), np.float32)
    wq, s = K.quantize_int8(w, 0)
    ids, wte = np.array([3]), randn(16, 8)
    q3, o3 = randn(1, 1, 8), np.empty((1, 1, 8), np.float32)
    pairs = {  # name: (kernel call, NumPy twin call)
        "layer_norm": (
            lambda n: K.layer_norm(x, w[0], b, 1e-5, o),
            lambda n: K.TWINS["layer_norm"].reference(x, w[0], b),
        ),
        "gelu": (lambda n: K.gelu(x, o), lambda n: K.TWINS["gelu"].reference(x)),
        "add": (lambda n: K.add(x, x, o), lambda n: x + x),
        "embed": (
            lambda n: K.embed(ids, wte, NO_SCALE, wte, np.arange(len(ids)), o),
            lambda n: K.TWINS["embed"].reference(ids, wte, NO_SCALE, wte, np.arange(len(ids))),
        ),
        "linear": (lambda n: K.linear(x, w, b, o), lambda n: x @ w + b),
        "linear_int8": (lambda n: K.linear_int8(x, wq, s, b, o), lambda n: K.linear_int8_numpy(x, wq, s, b)),
        "lm_head": (lambda n: K.lm_head(x, w, NO_SCALE, o), lambda n: x @ w.T),
        "decode_attention": (
            lambda n: K.decode_attention(q, kc, kc, 4, oq, sc),
            lambda n: K.decode_attention_numpy(q, kc, kc, 4),
        ),
        "prefill_attention": (
            lambda n: K.prefill_attention(q3, q3, q3, o3, 64),
            lambda n: causal_attention(q3, q3, q3),
        ),
    }
    variants = {}
    for name, (kernel, numpy) in pairs.items():
        variants[f"{name}|kernel"], variants[f"{name}|numpy"] = kernel, numpy
    times = interleaved(variants, rounds, calls=200, pause=0.02, per_call=False)
    return [
        {
            "op": f"{name} (toy size)",
            "variant": "kernel" if which == "kernel" else "numpy twin",
            "us": 1e6 * t,
            "best_us": 1e6 * best,
        }
        for key, (t, best) in times.items()
        for name, which in [key.split("|")]
    ]


def prefill_elementwise_rows(rounds: int) -> list[dict]:
    """layer_norm and gelu at a 256-token prefill's sizes, where NumPy's vector loops may win."""
    x, w, b = randn(256, 768), randn(768), randn(768)
    h, out, out_h = randn(256, 3072), np.empty((256, 768), np.float32), np.empty((256, 3072), np.float32)
    times = interleaved(
        {
            "layer_norm 256x768|kernel": lambda n: K.layer_norm(x, w, b, 1e-5, out),
            "layer_norm 256x768|numpy": lambda n: K.TWINS["layer_norm"].reference(x, w, b),
            "gelu 256x3072|kernel": lambda n: K.gelu(h, out_h),
            "gelu 256x3072|numpy": lambda n: K.TWINS["gelu"].reference(h),
        },
        rounds,
    )
    return [
        {"op": key.split("|")[0], "variant": key.split("|")[1], "us": 1e6 * t, "best_us": 1e6 * best}
        for key, (t, best) in times.items()
    ]


def after_blas(repeats: int) -> dict:
    """What a Numba parallel kernel costs right after a multi-threaded BLAS call. OpenBLAS's
    threads spin for a while after a call instead of sleeping; with 2 cores, Numba's 2 threads
    then share them with 2 spinners, and each kernel call waits for scheduler time slices."""
    n_in, n_out = MATRICES["c_attn"]
    ws = copies(lambda s: randn(n_in, n_out, seed=s), 4 * n_in * n_out)
    x, x16, b, out = randn(1, n_in), randn(16, n_in), randn(n_out), np.empty((1, n_out), np.float32)
    K.linear(x, ws[0], b, out)
    result = {}
    for label, before in [("after a pause", lambda: None), ("right after x16 @ w (BLAS)", lambda: x16 @ ws[1])]:
        first, next10 = [], []
        for r in range(repeats):
            sleep(PAUSE)
            before()
            t0 = perf_counter()
            K.linear(x, ws[(r + 2) % len(ws)], b, out)
            t1 = perf_counter()
            for c in range(10):
                K.linear(x, ws[(r + 3 + c) % len(ws)], b, out)
            first.append(t1 - t0)
            next10.append(perf_counter() - t1)
        result[label] = {
            "first_call_us": 1e6 * statistics.median(first),
            "next_10_calls_us": 1e6 * statistics.median(next10),
        }
    return result


COMPILE_SCRIPT = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    from minfer.fast import kernels as K
    t_import = time.perf_counter() - t0
    f = lambda *s: np.ones(s, np.float32)
    calls = {
        "layer_norm": lambda: K.layer_norm(f(1, 8), f(8), f(8), 1e-5, f(1, 8)),
        "gelu": lambda: K.gelu(f(1, 8), f(1, 8)),
        "add": lambda: K.add(f(1, 8), f(1, 8), f(1, 8)),
        "embed": lambda: K.embed(np.zeros(1, np.int64), f(4, 8), f(0), f(4, 8), np.zeros(1, np.int64), f(1, 8)),
        "linear": lambda: K.linear(f(1, 8), f(8, 8), f(8), f(1, 8)),
        "linear_int8": lambda: K.linear_int8(f(1, 8), np.ones((8, 8), np.int8), f(8), f(8), f(1, 8)),
        "lm_head": lambda: K.lm_head(f(1, 8), f(8, 8), f(0), f(1, 8)),
        "lm_head int8": lambda: K.lm_head(f(1, 8), np.ones((8, 8), np.int8), f(8), f(1, 8)),
        "decode_attention": lambda: K.decode_attention(f(1, 8), f(1, 4, 8), f(1, 4, 8), 4, f(1, 8), f(1, 4)),
        "prefill_attention": lambda: K.prefill_attention(f(1, 2, 8), f(1, 2, 8), f(1, 2, 8), f(1, 2, 8), 64),
    }
    first = {}
    for name, call in calls.items():
        t = time.perf_counter()
        call()
        first[name] = time.perf_counter() - t
    print(json.dumps({"import_s": t_import, "first_call_s": first, "total_s": time.perf_counter() - t0}))
""")


def compile_times() -> dict:
    """Cold: every kernel compiled into an empty cache directory; warm: a new process loading them."""
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for start in ("cold", "warm"):
            done = subprocess.run(
                [sys.executable, "-c", COMPILE_SCRIPT], env=env, check=True, capture_output=True, text=True
            )
            result[start] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def print_table(title: str, rows: list[dict], bandwidth: float | None = None) -> None:
    print(f"\n{title}")
    print(f"  {'op':<38} {'variant':<32} {'median us':>10} {'best us':>9}  {'median':>7} {'best':>6}")
    for r in rows:
        extra = ""
        if "gbs" in r:
            extra = f"{r['gbs']:7.1f} {r['best_gbs']:6.1f} GB/s"
            if bandwidth:
                extra += f" {100 * r['gbs'] / bandwidth:4.0f}% {100 * r['best_gbs'] / bandwidth:4.0f}% of bw"
        elif "gflops" in r:
            extra = f"{r['gflops']:7.1f} GFLOP/s"
        print(f"  {r['op']:<38} {r['variant']:<32} {r['us']:10.1f} {r['best_us']:9.1f}  {extra}")


def main() -> None:
    p = argparse.ArgumentParser(description="minfer.fast.kernels against NumPy at GPT-2 124M's shapes.")
    p.add_argument("--repeats", type=int, default=9, help="interleaved rounds; medians reported")
    p.add_argument("--skip-compile", action="store_true", help="skip the cold/warm compile timing")
    p.add_argument("--json-out", help="also write the JSON to this file")
    a = p.parse_args()

    bw_start = measure_bandwidth_gbs(256 << 20, 3)
    print(f"bandwidth (stream_sum, 256 MiB, best of 3): {bw_start:.1f} GB/s")
    matrices = matrix_rows(a.repeats)
    attention = attention_rows(a.repeats)
    elementwise = prefill_elementwise_rows(a.repeats)
    overhead = overhead_rows(a.repeats)
    blas = after_blas(max(5, a.repeats // 2))
    bw_end = measure_bandwidth_gbs(256 << 20, 3)
    bandwidth = max(bw_start, bw_end)
    print(f"bandwidth at the end: {bw_end:.1f} GB/s; the tables use the larger, {bandwidth:.1f} GB/s")
    print_table(
        "Matrix products (weights from DRAM; GB/s = weight bytes / time, median and best round)", matrices, bandwidth
    )
    print_table("Attention (GB/s: keys and values read; GFLOP/s: the causal half)", attention, bandwidth)
    print_table("Elementwise at prefill size", elementwise)
    print_table("Per-call cost at toy sizes", overhead)
    print("\nlinear (c_attn, 1 row), Numba's threads sharing the cores with OpenBLAS's:")
    for label, r in blas.items():
        print(f"  {label:<28} first call {r['first_call_us']:8.1f} us, the next 10 {r['next_10_calls_us']:8.1f} us")
    compiled = None if a.skip_compile else compile_times()
    if compiled:
        for start, r in compiled.items():
            print(
                f"\n{start} start: import {r['import_s']:.2f} s, first calls {sum(r['first_call_s'].values()):.2f} s "
                f"({', '.join(f'{k} {v:.2f}' for k, v in r['first_call_s'].items())})"
            )
    result = {
        "bandwidth_gbs": {"start": bw_start, "end": bw_end},
        "matrices": matrices,
        "attention": attention,
        "elementwise": elementwise,
        "overhead": overhead,
        "after_blas": blas,
        "compile": compiled,
    }
    line = json.dumps(result)
    print(line)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
