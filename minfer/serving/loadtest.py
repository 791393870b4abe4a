"""`minfer loadtest`: drive an OpenAI-compatible completions server and measure what a user waits.

Requests arrive either as a Poisson process at R requests/s (an open loop: arrivals do not wait
for the server, as independent users do) or from C clients that each send their next request as
soon as the last one finishes (a closed loop: always C in flight). Every request streams (unless
--no-stream, which measures only end-to-end latency and throughput), so:

- TTFT, the time to first token: from sending the request to the first chunk that carries text;
- TPOT, the time per output token after the first: (end-to-end - TTFT) / (output tokens - 1);
- end-to-end latency: from sending to the last byte of the stream.

The summary gives their p50/p90/p99, the throughputs (requests/s, output tokens/s, prompt +
output tokens/s over the wall time of the run) and the goodput: requests/s that finished and met
every latency objective given (--slo-ttft, --slo-tpot), the rate a server can sustain for users
it actually satisfies.

Prompts have exact token lengths when the model's tokenizer is on this machine (a bundled model
or a local directory): they are strings of whole-word tokens (" the", " shall", ...), each of
which the tokenizer encodes back to exactly that token, so N words are N tokens and a shared
prefix of N tokens is the same N token ids in every prompt. Without a tokenizer, random English
words stand in (about one token each) and the server's usage reports the real counts.

A request asks for `max_tokens` = its drawn output length with no stop strings; it may still end
early when the model samples end-of-text. Rows report the output tokens the server counted
(`usage.completion_tokens`), never the length asked for.

The pure parts (arrivals, lengths, prompts, percentiles, the summary) are separate functions for
the tests; the client is asyncio + httpx reading the server-sent events.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from minfer.errors import InvalidInputError
from minfer.tokenizer import Tokenizer

PERCENTILES = (50, 90, 99)
WORD_TOKEN = re.compile(rb" [a-z]{2,}")  # a space and letters: one pre-tokenizer piece per word
# stand-in words when no tokenizer is at hand (about one token each in any English BPE)
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there one all we their can has more will would who been if them out into so some than its "
    "time only new could our two may first then do any like my now over such these man also made most after"
).split()


# ---------------------------------------------------------------- the plan: what to send and when


@dataclass(frozen=True)
class LoadConfig:
    """What `minfer loadtest` was asked to do (the JSON report's "config")."""

    url: str = "http://127.0.0.1:8000"  # the server's base address
    model: str | None = None  # the model field sent; None: the server's first /v1/models entry
    rate: float | None = None  # Poisson arrivals per second (open loop); None: closed loop
    concurrency: int = 1  # requests in flight at once (closed loop; ignored with a rate)
    requests: int = 32  # how many requests in all
    prompt_len: tuple[int, int] = (64, 64)  # prompt tokens, drawn uniformly in [lo, hi]
    output_len: tuple[int, int] = (32, 32)  # max_tokens, drawn uniformly in [lo, hi]
    shared_prefix: int = 0  # the first N prompt tokens are the same in every request
    seed: int = 0  # arrivals, lengths and prompts (and each request's sampling seed, seed + i)
    temperature: float = 1.0  # sampling temperature sent (greedy text of a small model repeats)
    token_ids: bool = False  # send prompts as lists of token ids instead of text
    stream: bool = True  # False: one JSON answer per request (throughput only: no TTFT or TPOT)
    slo_ttft: float | None = None  # seconds; a request meets the objective at or below it
    slo_tpot: float | None = None  # seconds per output token after the first
    timeout: float = 600.0  # seconds one request may take before it counts as failed
    api_key: str | None = field(default=None, repr=False)  # sent as a bearer token; never in the report


@dataclass(frozen=True)
class RequestSpec:
    """One request of the plan."""

    index: int
    prompt: str | list[int]  # text, or token ids with --token-ids
    prompt_tokens: int | None  # the exact length when built from the tokenizer; else None
    max_tokens: int
    arrival_s: float | None  # seconds after the start (open loop); None: when a client is free


def parse_length(text: str | int, what: str) -> tuple[int, int]:
    """A length option: "64" -> (64, 64), "32-128" -> (32, 128); at least 1 token.

    >>> parse_length("32-128", "--prompt-len")
    (32, 128)
    """
    found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if found is None:
        raise InvalidInputError(f"{what} takes a number of tokens or a range A-B, like 64 or 32-128; got {text!r}")
    lo = int(found.group(1))
    hi = int(found.group(2) or lo)
    if not 1 <= lo <= hi:
        raise InvalidInputError(f"{what} needs 1 <= A <= B tokens, got {text!r}")
    return lo, hi


def draw_lengths(bounds: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """[n] lengths uniform over the integers lo..hi inclusive."""
    lo, hi = bounds
    return rng.integers(lo, hi + 1, size=n)  # [n]


def arrival_times(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """[n] seconds after the start at which requests arrive in a Poisson process of `rate` per
    second: the first at 0, then gaps drawn from an exponential distribution of mean 1 / rate
    (the arrivals of many independent users, each rarely sending). rate = inf sends all at 0."""
    if math.isinf(rate):
        return np.zeros(n)  # [n]
    gaps = rng.exponential(1.0 / rate, size=n - 1)  # [n - 1]
    return np.concatenate([[0.0], np.cumsum(gaps)])  # [n]


def word_pool(tokenizer: Tokenizer, limit: int = 50_000) -> list[tuple[str, int]]:
    """(text, token id) of the vocabulary's whole-word tokens (" the", " shall") that the tokenizer
    encodes back to that one token: any string of them encodes to exactly those ids, since its
    pre-tokenizer splits text before each space."""
    pool = []
    for token_id in range(min(tokenizer.n_vocab, limit)):
        piece = tokenizer.token_bytes(token_id)
        if piece is not None and WORD_TOKEN.fullmatch(piece):
            text = piece.decode("ascii")
            if tokenizer.encode(text) == [token_id]:
                pool.append((text, token_id))
    if not pool:
        raise InvalidInputError(
            f"the tokenizer {tokenizer.name!r} has no whole-word tokens like ' the' to build prompts from; "
            "run without the model's tokenizer (a model name that is not on this machine) to use plain words"
        )
    return pool


def token_prompts(
    tokenizer: Tokenizer, lengths: np.ndarray, shared_prefix: int, rng: np.random.Generator
) -> list[tuple[str, list[int]]]:
    """(text, the ids the server will prefill) per length: whole-word tokens after the BOS token when
    the tokenizer adds one (counted in the length), the first `shared_prefix` the same in all."""
    pool = word_pool(tokenizer)
    bos = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    prefix = [pool[i] for i in rng.integers(0, len(pool), max(shared_prefix - len(bos), 0))]
    prompts = []
    for n in lengths:
        own = [pool[i] for i in rng.integers(0, len(pool), int(n) - len(bos) - len(prefix))]
        words = prefix + own
        prompts.append(("".join(w for w, _ in words), bos + [t for _, t in words]))
    return prompts


def word_prompts(lengths: np.ndarray, shared_prefix: int, rng: np.random.Generator) -> list[str]:
    """Plain English words, about one token each, when no tokenizer is at hand."""
    prefix = list(rng.choice(WORDS, shared_prefix))
    return [" ".join(prefix + list(rng.choice(WORDS, int(n) - shared_prefix))) for n in lengths]


def plan_requests(config: LoadConfig, tokenizer: Tokenizer | None) -> list[RequestSpec]:
    """Every request's prompt, length and arrival time, all drawn from one generator seeded with
    `config.seed`: the same config plans the same requests."""
    rng = np.random.default_rng(config.seed)
    n = config.requests
    prompt_lens = draw_lengths(config.prompt_len, n, rng)  # [n]
    output_lens = draw_lengths(config.output_len, n, rng)  # [n]
    arrivals = arrival_times(n, config.rate, rng) if config.rate is not None else [None] * n
    if tokenizer is not None:
        built = token_prompts(tokenizer, prompt_lens, config.shared_prefix, rng)
        prompts: list = [ids if config.token_ids else text for text, ids in built]
        known = [len(ids) for _, ids in built]
    else:
        if config.token_ids:
            raise InvalidInputError("--token-ids needs the model's tokenizer on this machine; send text prompts")
        prompts, known = word_prompts(prompt_lens, config.shared_prefix, rng), [None] * n
    return [
        RequestSpec(i, prompts[i], known[i], int(output_lens[i]), None if arrivals[i] is None else float(arrivals[i]))
        for i in range(n)
    ]


def payload(config: LoadConfig, spec: RequestSpec) -> dict:
    """The JSON body of one POST /v1/completions. No stop strings, so only max_tokens or the
    model's end-of-text end it; each request its own seed, so a rerun samples the same tokens."""
    body = {
        "prompt": spec.prompt,
        "max_tokens": spec.max_tokens,
        "temperature": config.temperature,
        "seed": config.seed + spec.index,
        "stop": None,
        "stream": config.stream,
    }
    if config.stream:
        body["stream_options"] = {"include_usage": True}
    if config.model is not None:
        body["model"] = config.model
    return body


def base_url(url: str) -> str:
    """The server's address without a trailing / or /v1: the openai client's base_url form
    (http://host:8000/v1) and the bare one (http://host:8000) name the same server.

    >>> base_url("http://127.0.0.1:8000/v1/")
    'http://127.0.0.1:8000'
    """
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def auth_headers(api_key: str | None) -> dict:
    """'Authorization: Bearer KEY' when there is a key (as `minfer serve --api-key` checks)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


# ---------------------------------------------------------------- one request's numbers


@dataclass
class RequestResult:
    """What one request measured (a row of the JSON report). Times in seconds."""

    index: int
    start_s: float  # when it was sent, after the run's start
    max_tokens: int
    ok: bool = False
    ttft_s: float | None = None
    e2e_s: float | None = None
    prompt_tokens: int | None = None  # from the server's usage (else the planned length)
    output_tokens: int | None = None  # from the server's usage (else the text chunks counted)
    finish_reason: str | None = None
    error: str | None = None

    @property
    def tpot_s(self) -> float | None:
        return tpot(self.e2e_s, self.ttft_s, self.output_tokens) if self.ok else None

    def to_dict(self) -> dict:
        return asdict(self) | {"tpot_s": self.tpot_s}


def tpot(e2e: float | None, ttft: float | None, output_tokens: int | None) -> float | None:
    """Time per output token after the first: (e2e - ttft) / (output_tokens - 1); None when fewer
    than two tokens came (no gap between tokens to measure).

    >>> tpot(1.0, 0.2, 5)   # 4 gaps in 0.8 s
    0.2
    """
    if e2e is None or ttft is None or output_tokens is None or output_tokens < 2:
        return None
    return (e2e - ttft) / (output_tokens - 1)


def meets_slo(result: RequestResult, slo_ttft: float | None, slo_tpot: float | None) -> bool:
    """Finished, and within every objective given. A request of one token has no TPOT and so
    cannot miss that objective."""
    if not result.ok:
        return False
    if slo_ttft is not None and (result.ttft_s is None or result.ttft_s > slo_ttft):
        return False
    t = result.tpot_s
    return slo_tpot is None or t is None or t <= slo_tpot


# ---------------------------------------------------------------- the summary


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), numpy.percentile's linear interpolation between the two
    nearest ranks.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not len(values):
        raise InvalidInputError("a percentile of no values is undefined")
    return float(np.percentile(values, q))


def distribution(values: Sequence[float]) -> dict | None:
    """mean, p50, p90, p99 of the values (seconds), or None without any."""
    if not values:
        return None
    return {"mean": sum(values) / len(values)} | {f"p{q}": percentile(values, q) for q in PERCENTILES}


def summarize(
    results: Sequence[RequestResult], duration_s: float, slo_ttft: float | None = None, slo_tpot: float | None = None
) -> dict:
    """The run's counts, latency distributions, throughputs and goodput (per second of `duration_s`,
    the wall time from the first request sent to the last one finished)."""
    done = [r for r in results if r.ok]
    prompt = sum(r.prompt_tokens or 0 for r in done)
    output = sum(r.output_tokens or 0 for r in done)
    good = [r for r in done if meets_slo(r, slo_ttft, slo_tpot)]
    errors = [r.error for r in results if not r.ok]
    return {
        "requests": len(results),
        "completed": len(done),
        "failed": len(results) - len(done),
        "first_error": errors[0] if errors else None,
        "duration_s": duration_s,
        "prompt_tokens": prompt,
        "output_tokens": output,
        "request_throughput": len(done) / duration_s,
        "output_token_throughput": output / duration_s,
        "total_token_throughput": (prompt + output) / duration_s,
        "slo_ttft_s": slo_ttft,
        "slo_tpot_s": slo_tpot,
        "good_requests": len(good),
        "goodput": len(good) / duration_s,
        "ttft_s": distribution([r.ttft_s for r in done if r.ttft_s is not None]),
        "tpot_s": distribution([t for r in done if (t := r.tpot_s) is not None]),
        "e2e_s": distribution([r.e2e_s for r in done if r.e2e_s is not None]),
        "finish_reasons": {
            k: sum(r.finish_reason == k for r in done) for k in sorted({r.finish_reason or "" for r in done})
        },
    }


# ---------------------------------------------------------------- the client


def sse_data(line: str) -> dict | str | None:
    """One line of a server-sent event stream: the JSON of a `data:` line, "[DONE]" at the end,
    None for anything else (blank lines between events, comments, other fields)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    return data if data == "[DONE]" else json.loads(data)


def error_text(status: int, body: bytes) -> str:
    """An HTTP error as one line: the OpenAI-style error message when the body has one."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", "replace")[:200]
    return f"HTTP {status}: {message}"


@dataclass
class StreamReader:
    """Folds a completion stream's chunks into a RequestResult, timing the first text chunk."""

    result: RequestResult
    sent: float  # perf_counter() when the request was sent
    chunks: int = 0  # chunks that carried text
    first_choice: float | None = None  # when the first chunk with a choice came, text or not
    usage: dict = field(default_factory=dict)
    error: str | None = None  # an error event: the server failed after the stream had begun

    def add(self, chunk: dict, now: float) -> None:
        if chunk.get("error"):
            self.error = f"error event: {chunk['error'].get('message', chunk['error'])}"
        for choice in chunk.get("choices") or []:
            self.first_choice = self.first_choice or now
            if choice.get("text"):
                self.chunks += 1
                if self.result.ttft_s is None:
                    self.result.ttft_s = now - self.sent
            if choice.get("finish_reason"):
                self.result.finish_reason = choice["finish_reason"]
        self.usage = chunk.get("usage") or self.usage

    def finish(self, now: float, planned_prompt: int | None) -> RequestResult:
        r = self.result
        if self.error is not None:
            r.error = self.error
            return r
        r.ok, r.e2e_s = True, now - self.sent
        if r.ttft_s is None and self.first_choice is not None:  # no text at all (end-of-text at once)
            r.ttft_s = self.first_choice - self.sent
        r.prompt_tokens = self.usage.get("prompt_tokens", planned_prompt)
        r.output_tokens = self.usage.get("completion_tokens", self.chunks)
        return r


async def send_one(client, url: str, config: LoadConfig, spec: RequestSpec, t0: float) -> RequestResult:
    """POST one streamed completion and time it; a failure is a row with ok False and the error."""
    sent = time.perf_counter()
    reader = StreamReader(RequestResult(spec.index, sent - t0, spec.max_tokens), sent)
    try:
        if not config.stream:
            response = await client.post(f"{url}/v1/completions", json=payload(config, spec))
            if response.status_code != 200:
                reader.result.error = error_text(response.status_code, response.content)
                return reader.result
            answer = response.json()
            reader.usage = answer.get("usage") or {}
            reader.result.finish_reason = (answer.get("choices") or [{}])[0].get("finish_reason")
            return reader.finish(time.perf_counter(), spec.prompt_tokens)
        async with client.stream("POST", f"{url}/v1/completions", json=payload(config, spec)) as response:
            if response.status_code != 200:
                reader.result.error = error_text(response.status_code, await response.aread())
                return reader.result
            async for line in response.aiter_lines():
                data = sse_data(line)
                if data == "[DONE]":
                    break
                if isinstance(data, dict):
                    reader.add(data, time.perf_counter())
        return reader.finish(time.perf_counter(), spec.prompt_tokens)
    except Exception as e:  # any transport or protocol failure is this request's, not the run's
        reader.result.error = f"{type(e).__name__}: {e}"
        return reader.result


async def closed_loop(send: Callable[[RequestSpec], Awaitable], specs: list[RequestSpec], concurrency: int) -> None:
    """`concurrency` clients, each sending its next request as soon as its last one finished."""
    queue = list(reversed(specs))

    async def client() -> None:
        while queue:
            await send(queue.pop())

    await asyncio.gather(*(client() for _ in range(min(concurrency, len(specs)))))


async def open_loop(send: Callable[[RequestSpec], Awaitable], specs: list[RequestSpec]) -> None:
    """Each request sent at its arrival time, whether or not earlier ones have finished."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for spec in specs:
        await asyncio.sleep(max(0.0, start + (spec.arrival_s or 0.0) - loop.time()))
        tasks.append(asyncio.create_task(send(spec)))
    await asyncio.gather(*tasks)


async def run_async(config: LoadConfig, specs: list[RequestSpec], on_done=None) -> tuple[list[RequestResult], float]:
    """Send the plan; return the results in plan order and the wall time of the run."""
    import httpx

    results: list[RequestResult] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)  # never queue in the client
    headers = auth_headers(config.api_key)
    async with httpx.AsyncClient(timeout=config.timeout, limits=limits, headers=headers) as client:
        t0 = time.perf_counter()

        async def send(spec: RequestSpec) -> None:
            results.append(await send_one(client, base_url(config.url), config, spec, t0))
            if on_done is not None:
                on_done(results[-1])

        if config.rate is not None:
            await open_loop(send, specs)
        else:
            await closed_loop(send, specs, config.concurrency)
        duration = time.perf_counter() - t0
    return sorted(results, key=lambda r: r.index), duration


def server_model(url: str, timeout: float = 10.0, api_key: str | None = None) -> str | None:
    """The first model id the server lists at GET /v1/models, or None if it lists none."""
    import httpx

    try:
        response = httpx.get(f"{base_url(url)}/v1/models", timeout=timeout, headers=auth_headers(api_key))
    except httpx.ConnectError:
        raise InvalidInputError(f"no server answers at {url}; start one with `minfer serve` or pass --url") from None
    except httpx.HTTPError:
        return None
    if response.status_code == 401:  # every request would fail the same way: say so once
        raise InvalidInputError(
            f"the server at {url} {'refused the API key given' if api_key else 'needs an API key'}: "
            "pass --api-key KEY or set MINFER_API_KEY"
        )
    try:
        response.raise_for_status()
        return response.json()["data"][0]["id"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None


def local_tokenizer(name: str | None) -> Tokenizer | None:
    """The model's tokenizer when it is on this machine (a bundled model or a local directory);
    None for a Hub name (never downloaded just to count tokens) or a directory without one."""
    from minfer.checkpoints.loading import BUNDLED, bundled_model_dir, is_local_name
    from minfer.checkpoints.tokenizer_files import load_tokenizer
    from minfer.errors import MinferError

    if name is None:
        return None
    try:
        if name == "default" or name in BUNDLED:
            return load_tokenizer(bundled_model_dir(name))
        return load_tokenizer(name) if is_local_name(name) else None
    except MinferError:
        return None


@dataclass
class LoadReport:
    """A finished run: what was asked, the summary and every request's row."""

    config: LoadConfig
    summary: dict
    results: list[RequestResult]
    tokenizer: str | None  # the model whose tokenizer built the prompts, or None (plain words)

    def to_dict(self) -> dict:
        return {
            "config": asdict(self.config) | {"tokenizer": self.tokenizer, "api_key": self.config.api_key is not None},
            "summary": self.summary,
            "requests": [r.to_dict() for r in self.results],
        }


def run_loadtest(config: LoadConfig, on_done=None) -> LoadReport:
    """Plan the requests, send them, and summarize. `on_done(result)` is called as each finishes
    (the progress bar)."""
    if config.model is None:
        config = LoadConfig(**(asdict(config) | {"model": server_model(config.url, api_key=config.api_key)}))
    tokenizer = local_tokenizer(config.model)
    specs = plan_requests(config, tokenizer)
    results, duration = asyncio.run(run_async(config, specs, on_done))
    summary = summarize(results, duration, config.slo_ttft, config.slo_tpot)
    return LoadReport(config, summary, results, None if tokenizer is None else config.model)


# ---------------------------------------------------------------- the report


def report_lines(report: LoadReport) -> list[str]:
    """The summary as text: the load, counts, throughputs, goodput and a latency table in ms."""
    c, s = report.config, report.summary
    load = f"Poisson arrivals at {c.rate:g} req/s" if c.rate is not None else f"concurrency {c.concurrency}"
    lines = [
        f"{s['requests']} requests to {c.url} (model {c.model or '?'}), {load}",
        f"prompts {length_text(c.prompt_len)} tokens (shared prefix {c.shared_prefix}, "
        f"{'tokens of ' + report.tokenizer if report.tokenizer else 'plain words, lengths approximate'}), "
        f"max_tokens {length_text(c.output_len)}, temperature {c.temperature:g}, seed {c.seed}",
        f"completed {s['completed']}, failed {s['failed']} in {s['duration_s']:.2f} s"
        + (f"; first error: {s['first_error']}" if s["first_error"] else ""),
        f"request throughput      {s['request_throughput']:9.2f} req/s",
        f"output token throughput {s['output_token_throughput']:9.1f} tok/s ({s['output_tokens']} tokens)",
        f"total token throughput  {s['total_token_throughput']:9.1f} tok/s (+ {s['prompt_tokens']} prompt tokens)",
        f"goodput                 {s['goodput']:9.2f} req/s ({s['good_requests']} of {s['requests']} {slo_text(c)})",
        f"{'ms':<6}{'mean':>10}" + "".join(f"{'p' + str(q):>10}" for q in PERCENTILES),
    ]
    for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"), ("E2E", "e2e_s")):
        d = s[key]
        cells = ["—"] * 4 if d is None else [f"{1e3 * d[k]:.1f}" for k in ("mean", *(f"p{q}" for q in PERCENTILES))]
        lines.append(f"{name:<6}" + "".join(f"{cell:>10}" for cell in cells))
    return lines


def length_text(bounds: tuple[int, int]) -> str:
    return str(bounds[0]) if bounds[0] == bounds[1] else f"{bounds[0]}-{bounds[1]}"


def slo_text(config: LoadConfig) -> str:
    parts = [f"TTFT <= {config.slo_ttft:g} s"] if config.slo_ttft is not None else []
    parts += [f"TPOT <= {config.slo_tpot:g} s"] if config.slo_tpot is not None else []
    return "finished within " + " and ".join(parts) if parts else "finished; no latency objective given"


# ---------------------------------------------------------------- the command line


def add_loadtest_arguments(parser) -> None:
    """The `minfer loadtest` options (an argparse parser)."""
    parser.add_argument(
        "--url", default=LoadConfig.url, help=f"the server, with or without /v1 (default {LoadConfig.url})"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="sent as 'Authorization: Bearer KEY', for `minfer serve --api-key` (default: $MINFER_API_KEY)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="the model field sent, and whose tokenizer builds the prompts "
        "(default: the first model the server lists at /v1/models)",
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="R",
        help="Poisson arrivals, R requests/s on average (inf: all at once)",
    )
    load.add_argument(
        "--concurrency", type=int, default=None, metavar="C", help="C requests always in flight (default 1)"
    )
    parser.add_argument("--requests", type=int, default=LoadConfig.requests, metavar="N", help="requests in all")
    parser.add_argument("--prompt-len", default="64", metavar="N|A-B", help="prompt tokens, fixed or uniform in A-B")
    parser.add_argument("--output-len", default="32", metavar="N|A-B", help="max_tokens, fixed or uniform in A-B")
    parser.add_argument(
        "--shared-prefix", type=int, default=0, metavar="N", help="the first N prompt tokens shared (prefix caching)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="arrivals, lengths, prompts and sampling")
    parser.add_argument("--temperature", type=float, default=LoadConfig.temperature, metavar="T")
    parser.add_argument("--token-ids", action="store_true", help="send prompts as token ids rather than text")
    parser.add_argument(
        "--no-stream", dest="stream", action="store_false", help="whole answers, not streamed (no TTFT or TPOT)"
    )
    parser.add_argument("--slo-ttft", type=float, default=None, metavar="SECONDS", help="goodput's TTFT objective")
    parser.add_argument("--slo-tpot", type=float, default=None, metavar="SECONDS", help="goodput's TPOT objective")
    parser.add_argument("--timeout", type=float, default=LoadConfig.timeout, metavar="SECONDS", help="per request")
    parser.add_argument("--json", action="store_true", help="print config, summary and every request as one JSON")
    parser.add_argument("--plot", default=None, metavar="FILE", help="latency histograms and CDFs (.png or .svg)")


def config_from_args(args) -> LoadConfig:
    """A LoadConfig from parsed options, each checked with a message that names the option."""
    positive = {"--requests": args.requests, "--timeout": args.timeout}
    positive |= {"--rate": args.rate, "--concurrency": args.concurrency}
    positive |= {"--slo-ttft": args.slo_ttft, "--slo-tpot": args.slo_tpot}
    for option, value in positive.items():
        if value is not None and not value > 0:  # (also refuses NaN)
            raise InvalidInputError(f"{option} must be above 0, got {value}")
    prompt_len = parse_length(args.prompt_len, "--prompt-len")
    if not 0 <= args.shared_prefix <= prompt_len[0]:
        raise InvalidInputError(
            f"--shared-prefix {args.shared_prefix} must be between 0 and the shortest prompt ({prompt_len[0]} tokens)"
        )
    if not args.temperature >= 0:
        raise InvalidInputError(f"--temperature must be at least 0, got {args.temperature}")
    if args.plot and not args.plot.lower().endswith((".png", ".svg")):
        raise InvalidInputError(f"--plot must end in .png or .svg, got {args.plot!r}")
    return LoadConfig(
        url=base_url(args.url),
        api_key=args.api_key or os.environ.get("MINFER_API_KEY") or None,
        model=args.model,
        rate=args.rate,
        concurrency=args.concurrency or 1,
        requests=args.requests,
        prompt_len=prompt_len,
        output_len=parse_length(args.output_len, "--output-len"),
        shared_prefix=args.shared_prefix,
        seed=args.seed,
        temperature=args.temperature,
        token_ids=args.token_ids,
        stream=args.stream,
        slo_ttft=args.slo_ttft,
        slo_tpot=args.slo_tpot,
        timeout=args.timeout,
    )


def run_loadtest_command(args) -> None:
    """`minfer loadtest`: a progress bar on stderr while it runs, then the report (or JSON)."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    config = config_from_args(args)
    console = Console(stderr=True)
    columns = (TextColumn("loadtest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("requests", total=config.requests)
        report = run_loadtest(config, on_done=lambda _: bar.advance(task))
    if args.plot:
        write_plot(report, args.plot)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print("\n".join(report_lines(report)))
        if args.plot:
            print(f"wrote {args.plot}")
    sys.stdout.flush()
    if not report.summary["completed"]:
        raise InvalidInputError(f"all {config.requests} requests failed; the first: {report.summary['first_error']}")


def write_plot(report: LoadReport, path: str) -> None:
    """The latency figure of a run to `path` (minfer.plots.serving.latency_distributions)."""
    from minfer.plots.common import save_figure
    from minfer.plots.serving import latency_distributions

    done = [r for r in report.results if r.ok]
    samples = {
        "TTFT": [r.ttft_s for r in done if r.ttft_s is not None],
        "TPOT": [t for r in done if (t := r.tpot_s) is not None],
        "end-to-end": [r.e2e_s for r in done if r.e2e_s is not None],
    }
    slo = {"TTFT": report.config.slo_ttft, "TPOT": report.config.slo_tpot}
    try:
        save_figure(latency_distributions(samples, slo), path)
    except OSError as e:
        raise InvalidInputError(f"cannot write the plot {path}: {e.strerror or e}") from None
