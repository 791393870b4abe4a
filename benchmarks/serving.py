"""Serving under load: the engine (minfer.serving.Engine) and `minfer serve` on the classroom model.

    python benchmarks/serving.py [--quick] [--parts abcde] [--threads 1] [--json-out FILE]

Five parts, each a table; all of them in one JSON file (default benchmarks/results/serving-DATE.json):

(a) the throughput-latency curve, over HTTP: `minfer serve` (Numba backend, max_batch 16) in its
    own process, driven by `minfer loadtest`'s client (minfer.serving.loadtest) with 1, 2, 4, 8
    and 16 requests always in flight (a closed loop), streamed. Per level: requests/s, output
    tokens/s, TTFT and TPOT p50/p99. As the batch grows, throughput rises while each request's
    TPOT grows a little (a bigger step) and TTFT more (a prompt waits for a place in the batch).
(b) batching, on the same 16-or-more requests:
    - over HTTP, on the same server: 16 requests all in flight against the same 16 one at a time
      (concurrency 1), whole answers (not streamed: only throughput is compared). Each request
      samples with its own seed, and the engine's tokens do not depend on the company a request
      keeps, so both runs generate exactly the same tokens. Goal: >= 4x the output tokens/s.
    - in-process, the same model object, the same requests queued at once (prompts of 16-64
      tokens, outputs of 8-128, no end-of-text stop so every request produces exactly its
      length): continuous batching (an Engine, max_batch 16), static batching
      (`minfer.generate_batch` on groups of 16 in arrival order: a group starts together and
      the next waits until its longest member is done; generate_batch takes one max_new_tokens,
      so every row runs to the group's longest and is cut to its own length: the slots a static
      batcher cannot hand to a waiting request), and one request at a time (an Engine with
      max_batch 1). Tokens/s counts each request's own tokens only; the three are checked to
      produce the same tokens (same seed, the engine's per-request generator = generate's).
      Rounds rotate the order; the best round of each is kept.
(c) KV memory actually used, in-process: an Engine (max_batch 16, its default pool of 16 full
    contexts) serves requests whose prompt and output lengths are uniform up to half the context
    each. After every step the allocated slots (blocks held by a sequence x block size; free
    blocks holding a cached prefix are not allocated) and the slots holding a token (each
    sequence's cached positions, per distinct block) are sampled; the waste is 1 - (slot-seconds
    holding a token) / (slot-seconds allocated), weighted by each step's time. Next to it, a
    contiguous cache on the same schedule, each running sequence reserving n_ctx positions. A
    sequence wastes on average about (block size - 1) / 2 slots of its last block, so paging's
    waste is about that over the mean length; the table shows block sizes 8, 16 and 32.
(d) prefix caching and TTFT, in-process: requests that share a 200-token prefix (then 8 tokens
    of their own), sent one after another to an Engine with prefix caching on and one with it
    off (alternating); TTFT = time from add_request to the first token (one step here). With
    caching, a repeat computes only the positions after the 12 full shared blocks (192 tokens).
    Goal: >= 3x.
(e) leaks, over HTTP: 500 short streamed requests, 16 in flight, 50 of them (chosen at random)
    cut by the client after their first chunk (the server aborts them). Afterwards the engine
    holds no block (used 0; the rest cached or free) and the server's resident memory, sampled
    every 100 requests, is flat.

Threads: the server, the client and the engine share this 2-core machine, so every process gets
--threads Numba/BLAS threads (default 1: one core for the engine's step, one for the HTTP side;
with 2, Numba's parallel regions wait on a core the event loop holds). Timings on a shared
machine are noisy: compare within a table, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODEL = "classroom"
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_threads(n: int) -> None:
    """Thread counts for this process (before numpy and numba are imported) and the server's."""
    for var in THREAD_VARS:
        os.environ[var] = str(n)


# ---------------------------------------------------------------- the server in its own process


@contextlib.contextmanager
def running_server(max_batch: int = 16, max_waiting: int = 512):
    """`minfer serve` (classroom, Numba) on a free port of 127.0.0.1 -> (url, pid); stopped after."""
    import httpx

    command = [sys.executable, "-m", "minfer.cli", "serve", "--model", MODEL, "--backend", "numba", "--port", "0"]
    command += ["--max-batch", str(max_batch), "--max-waiting", str(max_waiting)]
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
        try:
            url, deadline = None, time.monotonic() + 300  # the first run compiles the kernels
            while url is None and process.poll() is None and time.monotonic() < deadline:
                found = re.search(r" on (http://127\.0\.0\.1:\d+)", Path(log.name).read_text())
                url = found.group(1) if found else time.sleep(0.2)
            if url is None:
                raise SystemExit(f"minfer serve did not start:\n{Path(log.name).read_text()}")
            while httpx.get(f"{url}/health", timeout=5).status_code != 200:
                time.sleep(0.2)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=60)


def engine_state(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}/v1/engine", timeout=10).json()


def wait_idle(url: str, timeout: float = 60) -> dict:
    """The server's engine state once nothing runs or waits (aborts are freed at the next step)."""
    deadline = time.monotonic() + timeout
    while True:
        state = engine_state(url)
        if (state["running"] == state["waiting"] == 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def load(url: str, **options):
    """One `minfer loadtest` run (its LoadReport) against the server."""
    from minfer.serving.loadtest import LoadConfig, run_loadtest

    return run_loadtest(LoadConfig(url=url, model=MODEL, **options))


# ---------------------------------------------------------------- (a) throughput against latency


def part_a(url: str, quick: bool) -> list[dict]:
    rows = []
    for c in (1, 2, 4, 8, 16):
        n = max(4, 2 * c) if quick else max(16, 4 * c)
        report = load(url, concurrency=c, requests=n, prompt_len=(32, 128), output_len=(32, 64), seed=c)
        s = report.summary
        rows.append(
            {
                "concurrency": c,
                "requests": n,
                "failed": s["failed"],
                "request_throughput": s["request_throughput"],
                "output_token_throughput": s["output_token_throughput"],
                **{f"ttft_{q}_s": s["ttft_s"][q] for q in ("p50", "p99")},
                **{f"tpot_{q}_s": s["tpot_s"][q] for q in ("p50", "p99")},
                "e2e_p50_s": s["e2e_s"]["p50"],
            }
        )
    return rows


def print_a(rows: list[dict]) -> None:
    print("\n(a) throughput and latency as load grows: minfer serve, Numba, max_batch 16, streamed")
    print("    prompts 32-128 tokens, max_tokens 32-64, C requests always in flight")
    print(
        f"{'C':>4} {'reqs':>5} {'req/s':>7} {'out tok/s':>10} {'TTFT p50':>9} {'TTFT p99':>9} "
        f"{'TPOT p50':>9} {'TPOT p99':>9} {'E2E p50':>9}  (ms)"
    )
    for r in rows:
        print(
            f"{r['concurrency']:>4} {r['requests']:>5} {r['request_throughput']:>7.2f} "
            f"{r['output_token_throughput']:>10.1f} {1e3 * r['ttft_p50_s']:>9.1f} {1e3 * r['ttft_p99_s']:>9.1f} "
            f"{1e3 * r['tpot_p50_s']:>9.2f} {1e3 * r['tpot_p99_s']:>9.2f} {1e3 * r['e2e_p50_s']:>9.0f}"
            + (f"  ({r['failed']} failed)" if r["failed"] else "")
        )


# ---------------------------------------------------------------- (b) batching


def part_b_http(url: str, rounds: int) -> dict:
    """16 requests all at once against the same 16 one at a time, on the same server."""
    options = dict(requests=16, prompt_len=(32, 128), output_len=(64, 64), seed=1, stream=False)
    best = {16: 0.0, 1: 0.0}
    tokens = {}
    for i in range(rounds):
        for c in (16, 1) if i % 2 == 0 else (1, 16):
            s = load(url, concurrency=c, **options).summary
            best[c] = max(best[c], s["output_token_throughput"])
            tokens[c] = s["output_tokens"]
    return {
        "requests": 16,
        "output_tokens": tokens,
        "concurrent_tok_s": best[16],
        "serial_tok_s": best[1],
        "ratio": best[16] / best[1],
    }


def batching_requests(model, n: int, quick: bool, seed: int = 2) -> list[tuple[list[int], int]]:
    """(prompt ids, output length) for part (b): prompts 16-64 whole-word tokens, outputs 8-128."""
    import numpy as np

    from minfer.serving.loadtest import token_prompts

    rng = np.random.default_rng(seed)
    prompt_lens = rng.integers(16, 65, n)  # [n]
    out_lens = rng.integers(4, 33, n) if quick else rng.integers(8, 129, n)  # [n]
    prompts = token_prompts(model.tokenizer, prompt_lens, 0, rng)
    return [(ids, int(k)) for (_, ids), k in zip(prompts, out_lens)]


def run_engine(model, requests, params, max_batch: int) -> tuple[float, list[list[int]]]:
    """Seconds to serve every request (all queued at once) and each one's tokens."""
    from minfer.serving import Engine

    engine = Engine(model, max_batch=max_batch)
    t = time.perf_counter()
    ids = [engine.add_request(p, k, params, stop_tokens=[]) for p, k in requests]
    done = {}
    while engine.has_work():
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out.generation.tokens
    return time.perf_counter() - t, [done[i] for i in ids]


def run_static(model, requests, params, batch: int) -> tuple[float, list[list[int]]]:
    """Static batching: generate_batch on groups of `batch` in order, each to its longest member."""
    from minfer import generate_batch

    t = time.perf_counter()
    tokens = []
    for start in range(0, len(requests), batch):
        group = requests[start : start + batch]
        gens = generate_batch(model, [p for p, _ in group], max(k for _, k in group), params=params, stop_tokens=[])
        tokens += [g.tokens[:k] for g, (_, k) in zip(gens, group)]  # the rest: work no request asked for
    return time.perf_counter() - t, tokens


def part_b_inprocess(model, n: int, rounds: int, quick: bool) -> dict:
    from minfer import SamplingParams

    requests = batching_requests(model, n, quick)
    params = SamplingParams(temperature=1.0, seed=0)
    systems = {
        "continuous (Engine, max_batch 16)": lambda: run_engine(model, requests, params, 16),
        "static (generate_batch, groups of 16)": lambda: run_static(model, requests, params, 16),
        "one at a time (Engine, max_batch 1)": lambda: run_engine(model, requests, params, 1),
    }
    run_engine(model, requests[:2], params, 2)  # warm up: load the compiled kernels
    run_static(model, requests[:2], params, 2)
    best, outputs = dict.fromkeys(systems, float("inf")), {}
    for i in range(rounds):
        names = list(systems)
        for name in names[i % 3 :] + names[: i % 3]:  # rotate the order each round
            seconds, outputs[name] = systems[name]()
            best[name] = min(best[name], seconds)
    useful = sum(k for _, k in requests)
    computed_static = sum(max(k for _, k in requests[s : s + 16]) * len(requests[s : s + 16]) for s in range(0, n, 16))
    same = all(out == outputs[names[0]] for out in outputs.values())
    rows = [{"system": name, "seconds": t, "tok_s": useful / t} for name, t in best.items()]
    return {
        "requests": n,
        "useful_tokens": useful,
        "static_tokens_computed": computed_static,
        "same_tokens": same,
        "rows": rows,
    }


def print_b(http: dict, local: dict) -> None:
    print("\n(b) batching")
    print(f"    over HTTP, the same server (max_batch 16), {http['requests']} requests of 64 tokens, not streamed:")
    print(
        f"    16 in flight {http['concurrent_tok_s']:.1f} tok/s, one at a time {http['serial_tok_s']:.1f} tok/s: "
        f"{http['ratio']:.2f}x (goal >= 4x); output tokens {http['output_tokens']}"
    )
    print(
        f"    in-process, {local['requests']} requests queued at once, {local['useful_tokens']} output tokens "
        f"(static batching computes {local['static_tokens_computed']}); the same tokens in all three: "
        f"{'yes' if local['same_tokens'] else 'NO'}"
    )
    base = local["rows"][-1]["tok_s"]
    print(f"    {'system':<40} {'seconds':>8} {'tok/s':>8} {'x one at a time':>16}")
    for r in local["rows"]:
        print(f"    {r['system']:<40} {r['seconds']:>8.2f} {r['tok_s']:>8.1f} {r['tok_s'] / base:>15.2f}x")


# ---------------------------------------------------------------- (c) KV memory


def held_slots(engine) -> int:
    """Slots holding a token's keys and values: each running sequence's cached positions, counted
    once per physical block (a shared prefix block is held once)."""
    filled: dict[int, int] = {}
    bs = engine.block_size
    for r in engine.running:
        for i, block in enumerate(r.table):
            filled[block] = max(filled.get(block, 0), min(bs, max(0, r.n_cached - i * bs)))
    return sum(filled.values())


def kv_waste(model, requests, params, block_size: int) -> dict:
    """Serve the requests on an Engine, sampling after every step, weighted by the step's seconds:
    slots allocated (used blocks x block size), slots holding a token, sequences running."""
    from minfer.serving import Engine

    engine = Engine(model, max_batch=16, block_size=block_size)
    n_ctx = model.config.n_ctx
    for p, k in requests:
        engine.add_request(p, k, params, stop_tokens=[])
    seconds = allocated = held = running = 0.0  # seconds, then slot-seconds and sequence-seconds
    steps = 0
    while engine.has_work():
        engine.step()
        s = engine.stats()
        if s.kv_blocks_used == 0:
            continue
        w = s.last_step.seconds
        seconds += w
        allocated += w * s.kv_blocks_used * block_size
        held += w * held_slots(engine)
        running += w * len(engine.running)
        steps += 1
    expected = running * (block_size - 1) / 2  # a last block is (B-1)/2 slots short on average
    return {
        "block_size": block_size,
        "kv_blocks": engine.blocks.n_blocks,
        "steps": steps,
        "paged_waste": 1 - held / allocated,
        "expected_paged_waste": expected / (held + expected),
        "contiguous_waste": 1 - held / (running * n_ctx),
        "mean_running": running / seconds,
        "mean_slots_held": held / seconds,
        "mean_slots_allocated": allocated / seconds,
        "mean_slots_contiguous": running * n_ctx / seconds,
    }


def part_c(model, n: int) -> dict:
    import numpy as np

    from minfer import SamplingParams
    from minfer.serving.loadtest import token_prompts

    half = model.config.n_ctx // 2
    rng = np.random.default_rng(3)
    prompt_lens, out_lens = rng.integers(1, half + 1, n), rng.integers(1, half + 1, n)  # [n], [n]
    prompts = token_prompts(model.tokenizer, prompt_lens, 0, rng)
    requests = [(ids, int(k)) for (_, ids), k in zip(prompts, out_lens)]
    params = SamplingParams(temperature=1.0, seed=0)
    rows = [kv_waste(model, requests, params, bs) for bs in (8, 16, 32)]
    return {"requests": n, "n_ctx": model.config.n_ctx, "max_len_each": half, "rows": rows}


def print_c(c: dict) -> None:
    print(
        f"\n(c) KV slots allocated but holding no token, time-averaged; {c['requests']} requests, prompt and "
        f"output each uniform in 1-{c['max_len_each']} (n_ctx {c['n_ctx']}), max_batch 16"
    )
    print(
        f"    {'block size':>10} {'paged waste':>12} {'(B-1)/2 model':>14} {'contiguous':>11} {'running':>8} "
        f"{'held':>6} {'paged':>6} {'contig.':>8}  (time-averaged sequences and slots)"
    )
    for r in c["rows"]:
        print(
            f"    {r['block_size']:>10} {r['paged_waste']:>12.1%} {r['expected_paged_waste']:>14.1%} "
            f"{r['contiguous_waste']:>11.1%} {r['mean_running']:>8.1f} {r['mean_slots_held']:>6.0f} "
            f"{r['mean_slots_allocated']:>6.0f} {r['mean_slots_contiguous']:>8.0f}"
        )
    print("    (B-1)/2 model: every running sequence's last block (B-1)/2 slots short; contiguous: n_ctx each")


# ---------------------------------------------------------------- (d) prefix caching


def first_token_seconds(engine, prompt, params) -> float:
    """TTFT of one request alone in the engine: add_request to its first token."""
    rid = engine.add_request(prompt, 1, params)
    ttft = None
    while engine.has_work():
        for out in engine.step():
            if out.request_id == rid and out.token_ids and ttft is None:
                ttft = out.generation.token_seconds[0]
    return ttft


def part_d(model, repeats: int) -> dict:
    import numpy as np

    from minfer import SamplingParams
    from minfer.serving import Engine
    from minfer.serving.loadtest import token_prompts

    rng = np.random.default_rng(4)
    prompts = [ids for _, ids in token_prompts(model.tokenizer, np.full(repeats + 1, 208), 200, rng)]
    params = SamplingParams(temperature=0.0)
    engines = {True: Engine(model, prefix_caching=True), False: Engine(model, prefix_caching=False)}
    warm = Engine(model, prefix_caching=False)  # the kernels loaded before anything is timed
    first_token_seconds(warm, prompts[0][:50], params)
    ttft = {True: [], False: []}
    for i, prompt in enumerate(prompts):
        for on in (True, False) if i % 2 == 0 else (False, True):
            ttft[on].append(first_token_seconds(engines[on], prompt, params))
    stats = engines[True].stats()
    cold, warm_on, off = ttft[True][0], statistics.median(ttft[True][1:]), statistics.median(ttft[False][1:])
    return {
        "prompt_tokens": 208,
        "shared_tokens": 200,
        "repeats": repeats,
        "ttft_first_on_s": cold,
        "ttft_repeat_on_s": warm_on,
        "ttft_off_s": off,
        "speedup_vs_off": off / warm_on,
        "speedup_vs_first": cold / warm_on,
        "hit_tokens": stats.prefix_cache_hits,
        "query_tokens": stats.prefix_cache_queries,
        "samples": {"on": ttft[True], "off": ttft[False]},
    }


def print_d(d: dict) -> None:
    print(
        f"\n(d) prefix caching: TTFT of {d['repeats']} requests sharing a {d['shared_tokens']}-token prefix "
        f"({d['prompt_tokens']} tokens each), one after another (medians)"
    )
    print(f"    caching off            {1e3 * d['ttft_off_s']:8.2f} ms")
    print(f"    caching on, first      {1e3 * d['ttft_first_on_s']:8.2f} ms")
    print(
        f"    caching on, repeats    {1e3 * d['ttft_repeat_on_s']:8.2f} ms   "
        f"{d['speedup_vs_off']:.1f}x faster than off (goal >= 3x), {d['speedup_vs_first']:.1f}x than the first"
    )
    print(f"    prefix cache: {d['hit_tokens']} of {d['query_tokens']} looked-up tokens found")


# ---------------------------------------------------------------- (e) leaks


async def one_request(client, url: str, spec, abort: bool) -> int:
    """Stream one completion; with `abort`, close the connection after the first text chunk.
    -> the output tokens the server reported (0 for an aborted request)."""
    from minfer.serving.loadtest import LoadConfig, payload, sse_data

    body = payload(LoadConfig(model=MODEL, seed=5), spec)
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        async for line in response.aiter_lines():
            data = sse_data(line)
            if abort and isinstance(data, dict) and data.get("choices"):
                return 0  # leaving the block closes the connection: the server aborts the request
            if isinstance(data, dict) and data.get("usage"):
                return data["usage"]["completion_tokens"]
    return 0


async def leak_run(url: str, pid: int, specs, aborted: set[int], concurrency: int) -> dict:
    import httpx

    rss, completed, tokens = [], 0, 0
    queue = list(reversed(specs))
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=None)) as client:

        async def worker():
            nonlocal completed, tokens
            while queue:
                spec = queue.pop()
                got = await one_request(client, url, spec, spec.index in aborted)
                tokens += got  # (not `tokens += await ...`: that reads tokens before the await)
                completed += 1
                if completed % 100 == 0:
                    rss.append((completed, rss_mb(pid)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"rss_mb": rss, "completed_tokens": tokens}


def part_e(url: str, pid: int, n: int = 500, n_abort: int = 50) -> dict:
    import numpy as np

    from minfer.serving.loadtest import LoadConfig, local_tokenizer, plan_requests

    config = LoadConfig(requests=n, prompt_len=(8, 64), output_len=(4, 24), seed=5)
    specs = plan_requests(config, local_tokenizer(MODEL))
    aborted = set(np.random.default_rng(5).choice(n, n_abort, replace=False).tolist())
    before = engine_state(url)
    rss_start = rss_mb(pid)
    result = asyncio.run(leak_run(url, pid, specs, aborted, concurrency=16))
    after = wait_idle(url)
    generated = after["generated_tokens"] - before["generated_tokens"]
    return {
        "requests": n,
        "aborted": n_abort,
        "rss_start_mb": rss_start,
        "rss_mb": result["rss_mb"],
        "rss_growth_after_first_100_mb": result["rss_mb"][-1][1] - result["rss_mb"][0][1],
        "kv_blocks_used": after["kv_blocks_used"],
        "kv_blocks_cached": after["kv_blocks_cached"],
        "kv_blocks_free": after["kv_blocks_free"],
        "kv_blocks_total": after["kv_blocks_total"],
        "running": after["running"],
        "waiting": after["waiting"],
        "tokens_generated": generated,
        "tokens_of_completed": result["completed_tokens"],
        "tokens_of_aborted": generated - result["completed_tokens"],
        "max_tokens_of_aborted": sum(s.max_tokens for s in specs if s.index in aborted),
    }


def print_e(e: dict) -> None:
    print(
        f"\n(e) {e['requests']} streamed requests, 16 in flight, {e['aborted']} cut by the client after the first chunk"
    )
    print(
        f"    afterwards: running {e['running']}, waiting {e['waiting']}, KV blocks used {e['kv_blocks_used']}, "
        f"cached {e['kv_blocks_cached']}, free {e['kv_blocks_free']} of {e['kv_blocks_total']}"
    )
    print(
        f"    tokens generated {e['tokens_generated']}: {e['tokens_of_completed']} for the completed requests, "
        f"{e['tokens_of_aborted']} for the aborted ones (at most {e['max_tokens_of_aborted']} had they run on)"
    )
    samples = ", ".join(f"{n}: {mb:.1f}" for n, mb in e["rss_mb"])
    print(
        f"    server RSS MiB: before {e['rss_start_mb']:.1f}; after n requests {samples}; "
        f"growth after the first 100: {e['rss_growth_after_first_100_mb']:+.1f} MiB"
    )


# ---------------------------------------------------------------- main


def goals(out: dict) -> list[tuple[str, str, bool]]:
    """(goal, what was measured, met) for each part that ran."""
    rows = []
    if "b_http" in out:
        b = out["b_http"]
        rows.append(("(b) 16 in flight >= 4x one at a time", f"{b['ratio']:.2f}x", b["ratio"] >= 4))
    if "c" in out:
        r = next(r for r in out["c"]["rows"] if r["block_size"] == 16)
        measured = f"{r['paged_waste']:.1%} (contiguous {r['contiguous_waste']:.1%})"
        rows.append(("(c) paged KV waste < 5% (block size 16)", measured, r["paged_waste"] < 0.05))
    if "d" in out:
        d = out["d"]
        rows.append(("(d) prefix caching: TTFT >= 3x faster", f"{d['speedup_vs_off']:.1f}x", d["speedup_vs_off"] >= 3))
    if "e" in out:
        e = out["e"]
        rows.append(("(e) no KV block used after the run", f"used {e['kv_blocks_used']}", e["kv_blocks_used"] == 0))
        growth = e["rss_growth_after_first_100_mb"]
        rows.append(("(e) server memory flat (< 5 MiB growth)", f"{growth:+.1f} MiB", growth < 5))
    return rows


def print_goals(rows: list[tuple[str, str, bool]]) -> None:
    print("\ngoals")
    for goal, measured, met in rows:
        print(f"    {goal:<44} {measured:<30} {'met' if met else 'MISSED'}")


def git_describe() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "-dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    )


def main() -> None:
    p = argparse.ArgumentParser(description="The serving engine and minfer serve under load (five parts).")
    p.add_argument("--quick", action="store_true", help="fewer and shorter requests: a smoke test of a minute or two")
    p.add_argument("--parts", default="abcde", help="which parts to run, e.g. ab or cd (default abcde)")
    p.add_argument("--threads", type=int, default=1, help="Numba and BLAS threads of every process (default 1)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of (b) (default 3, 1 with --quick)")
    p.add_argument("--json-out", type=Path, default=None, help="default benchmarks/results/serving-DATE.json")
    a = p.parse_args()
    set_threads(a.threads)
    import minfer

    rounds = a.rounds or (1 if a.quick else 3)
    started = datetime.now(UTC)
    out: dict = {
        "command": " ".join(["python", *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "minfer": git_describe(),
        "threads": a.threads,
        "cpus": os.cpu_count(),
        "model": MODEL,
        "backend": "numba",
        "quick": a.quick,
    }
    print(f"{out['command']} — {out['date']}, minfer {out['minfer']}, {a.threads} thread(s) per process")
    if set(a.parts) & set("abe"):
        with running_server() as (url, pid):
            load(url, concurrency=2, requests=2, prompt_len=(8, 8), output_len=(4, 4))  # warm up the kernels
            if "a" in a.parts:
                out["a"] = part_a(url, a.quick)
                print_a(out["a"])
            if "b" in a.parts:
                out["b_http"] = part_b_http(url, rounds)
            if "e" in a.parts:
                out["e"] = part_e(url, pid, 200 if a.quick else 500, 20 if a.quick else 50)
    if set(a.parts) & set("bcd"):
        model = minfer.load_model(MODEL, backend="numba")
        if "b" in a.parts:
            out["b_inprocess"] = part_b_inprocess(model, 32, rounds, a.quick)
            print_b(out["b_http"], out["b_inprocess"])
        if "c" in a.parts:
            out["c"] = part_c(model, 16 if a.quick else 48)
            print_c(out["c"])
        if "d" in a.parts:
            out["d"] = part_d(model, 5 if a.quick else 11)
            print_d(out["d"])
    if "e" in out:
        print_e(out["e"])
    out["goals"] = [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals(out)]
    print_goals(goals(out))
    out["seconds"] = (datetime.now(UTC) - started).total_seconds()
    path = a.json_out or HERE / "results" / f"serving-{started.date().isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\n{out['seconds']:.0f} s in all; wrote {path}")


if __name__ == "__main__":
    main()
