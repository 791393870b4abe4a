"""The engine: continuous batching over a paged KV cache (lesson 15).

`minfer.generate_batch` is *static* batching: a batch starts together and runs until its
longest member is done, while finished sequences leave holes and new requests wait outside.
A serving engine instead re-forms the batch at every step (Orca's iteration-level scheduling;
vLLM, nano-vllm): requests join and leave at any step. Each `Engine.step`:

1. schedules (`_schedule`): every running sequence that is decoding gets one token; if its
   last block is full and no block is free, the newest running sequence is *preempted* (its
   blocks freed, its tokens kept, recomputed later). What is left of the step's token budget
   goes to prefill: first the prompts already being prefilled, then waiting requests in
   arrival order, in chunks, so a long prompt never stalls the decodes for a whole pass;
2. runs the model: one batched decode call for all decoding sequences (one matrix-matrix
   product per weight, attention per sequence through its own block table), and one call per
   prefill chunk;
3. samples each sequence that has new logits with its own seeded generator and the same
   stopping rule as `minfer.generate`, so a request's tokens equal `generate` on it alone,
   whatever the company it keeps, its arrival step or a preemption.

A sequence's state is `ids` (prompt and generated tokens) and `n_cached`, how many of them
have keys and values in the cache. The tokens after n_cached are fed to the model next: a
whole prompt, a chunk of it, one token (decode), or after a preemption everything again.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from minfer.checks import whole_number
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.fast.backend import blas_on_one_thread
from minfer.generation import (
    Generation,
    Stopping,
    check_max_new_tokens,
    new_stopping,
    prompt_ids,
    stop_string_list,
    stop_token_set,
)
from minfer.model import DEFAULT_CACHE_BYTES, Model, kv_bytes_per_position
from minfer.sampling import SamplingParams, sample
from minfer.serving.blocks import BlockManager
from minfer.serving.paged import BLOCK_SIZE, PagedKVCache, PagedSequence

MAX_BATCH = 16  # sequences decoding together
MAX_STEP_TOKENS = 256  # tokens one step feeds the model: the decodes' one each, then prefill chunks


@dataclass
class TokenLogprob:
    """The log-probability of a sampled token under the model's raw distribution (log-softmax
    of its logits, before temperature or filters, as OpenAI and vLLM report it) and the
    `top` most likely tokens with theirs."""

    token: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class RequestOutput:
    """What one step produced for one request."""

    request_id: int
    token_ids: list[int]  # new this step (a stop token included, as in Generation.tokens)
    text: str  # text released this step (never part of a stop string)
    logprobs: list[TokenLogprob]  # new this step, when the request asked for them
    finished: bool
    finish_reason: str | None  # minfer's ("stop", "stop_string", "length", "context") or "abort"
    generation: Generation  # the request's whole result so far


@dataclass
class StepStats:
    """One engine step: its batch, its prefill tokens, its time, and its counted FLOPs and bytes."""

    batch_size: int = 0  # sequences decoded together
    prefill_tokens: int = 0  # prompt tokens fed in chunks
    preempted: int = 0  # sequences preempted by this step
    seconds: float = 0.0
    flops: int = 0  # minfer.perf.counts' count of the step's model calls
    bytes: int = 0


@dataclass
class EngineStats:
    """The engine now (what `minfer serve`'s /metrics and playground show)."""

    running: int
    waiting: int
    kv_blocks_used: int  # held by a sequence
    kv_blocks_cached: int  # free, but holding a cached prefix
    kv_blocks_free: int  # free and empty
    kv_blocks_total: int
    kv_slots_empty: int  # positions in used blocks holding no token (the tails of the last blocks)
    block_size: int
    prefix_cache_queries: int  # prompt tokens looked up (full blocks only)
    prefix_cache_hits: int  # of those, tokens found already computed
    prompt_tokens: int  # prompt tokens of every request admitted
    generated_tokens: int
    preemptions: int
    steps: int
    last_step: StepStats
    blocks: list[str]  # each block's state: "used", "cached" or "free"

    def block_map(self) -> list[str]:
        return self.blocks


@dataclass
class Request:
    """One request's state inside the engine."""

    id: int
    ids: list[int]  # prompt, then generated tokens
    params: SamplingParams
    rng: np.random.Generator  # its own, seeded: the same draws as generate() alone
    stopping: Stopping
    generation: Generation
    logprobs: int | None  # top-N logprobs to report, or None
    arrival: float
    table: list[int] = field(default_factory=list)  # physical block of each logical block
    hashes: list[int] = field(default_factory=list)  # name of each registered full block
    n_cached: int = 0  # ids with keys and values in the cache
    admitted: bool = False  # its prompt tokens are counted once, however often it is preempted
    last_token_time: float = 0.0

    @property
    def n_todo(self) -> int:
        """Tokens to feed before the next logits: 1 when decoding, more while prefilling."""
        return len(self.ids) - self.n_cached


class Engine:
    """Continuous batching over a paged KV cache, for one model (either family, either backend).

    Example:
        >>> engine = Engine(model, max_batch=8)
        >>> rid = engine.add_request("And the king said", max_new_tokens=20)
        >>> while engine.has_work():
        ...     for out in engine.step():
        ...         print(out.text, end="")  # out.request_id says whose

    `add_request` and `abort` may be called from any thread; `step` from one thread at a time.
    """

    def __init__(
        self,
        model: Model,
        max_batch: int = MAX_BATCH,
        kv_blocks: int | None = None,
        block_size: int = BLOCK_SIZE,
        max_step_tokens: int = MAX_STEP_TOKENS,
        prefix_caching: bool = True,
    ):
        if not isinstance(model, Model):
            raise InvalidInputError(f"Engine takes a loaded model (minfer.load_model), not {type(model).__name__}")
        c = model.config
        self.model = model
        self.max_batch = whole_number(max_batch, "max_batch")
        self.block_size = whole_number(block_size, "block_size")
        self.max_step_tokens = whole_number(max_step_tokens, "max_step_tokens")
        if self.max_step_tokens <= self.max_batch:
            raise InvalidInputError(
                f"max_step_tokens={max_step_tokens} must exceed max_batch={max_batch}: "
                "a step's decodes take one token each and prefill needs what is left"
            )
        if self.block_size > c.n_ctx:
            raise InvalidInputError(
                f"block_size={block_size} is larger than the context window n_ctx={c.n_ctx}: "
                f"a block would never fill; use at most {c.n_ctx} (16 is usual)"
            )
        blocks_per_seq = math.ceil(c.n_ctx / self.block_size)
        if kv_blocks is None:  # every sequence at full context, within the default cache memory
            fit = DEFAULT_CACHE_BYTES // (kv_bytes_per_position(c) * self.block_size)
            kv_blocks = max(blocks_per_seq, min(self.max_batch * blocks_per_seq, fit))
        self.cache = PagedKVCache.empty(c, kv_blocks, self.block_size)
        self.blocks = BlockManager(kv_blocks, self.block_size, prefix_caching)
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # in admission order: the last is the first preempted
        self._inbox: list[Request] = []  # added by any thread, taken in by step()
        self._aborts: set[int] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.prompt_tokens = self.generated_tokens = self.preemptions = self.steps = 0
        self.last_step = StepStats()

    # -- requests -------------------------------------------------------------------------

    def add_request(
        self,
        prompt: str | Sequence[int],
        max_new_tokens: int = 64,
        params: SamplingParams | None = None,
        stop_tokens: Sequence[int] | None = None,
        stop_strings: Sequence[str] | str = (),
        logprobs: int | None = None,
    ) -> int:
        """Queue a request; returns its id. Checked here, at once: a request that could never
        run (too long for the context or the cache) is an error now, not a hang later."""
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise InvalidInputError(f"params must be a SamplingParams, not {type(params).__name__}")
        max_new_tokens = check_max_new_tokens(max_new_tokens)
        if logprobs is not None:
            logprobs = whole_number(logprobs, "logprobs", minimum=0)
        model, n_ctx = self.model, self.model.config.n_ctx
        stopping = new_stopping(
            model, stop_token_set(model, stop_tokens), max_new_tokens, stop_string_list(model, stop_strings)
        )
        ids = prompt_ids(model, prompt)
        if len(ids) > n_ctx:
            raise ContextOverflowError(
                f"the prompt has {len(ids)} tokens, more than the context window n_ctx={n_ctx}; shorten it"
            )
        model._check_ids(ids)  # token ids from a caller: non-empty and in the vocabulary, as generate() checks
        needed = math.ceil(min(n_ctx, len(ids) + max_new_tokens) / self.block_size)
        if needed > self.blocks.n_blocks:
            raise InvalidInputError(
                f"this request needs up to {needed} KV blocks and the cache has {self.blocks.n_blocks}: "
                "ask for fewer tokens or start the engine with more kv_blocks"
            )
        now = perf_counter()
        with self._lock:
            rid = next(self._ids)
            rng = np.random.default_rng(params.seed)
            self._inbox.append(Request(rid, ids, params, rng, stopping, Generation(list(ids)), logprobs, now))
        return rid

    def abort(self, request_id: int) -> None:
        """Stop a request (the client went away): its blocks are freed at the next step."""
        with self._lock:
            self._aborts.add(request_id)

    def has_work(self) -> bool:
        """Whether any request is waiting or running."""
        with self._lock:
            return bool(self.waiting or self.running or self._inbox or self._aborts)

    # -- one step -------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Schedule, run the model once for every scheduled sequence, sample. -> this step's outputs"""
        start = perf_counter()
        outputs = self._take_inbox()
        decodes, chunks, preempted = self._schedule()
        with blas_on_one_thread():  # the thread policy (minfer.fast.backend): no BLAS workers left spinning
            logits = self._run(decodes, chunks)  # (request, logits [n_vocab]) for each with new logits
        outputs += [self._sample(r, lg) for r, lg in logits]
        for r in [r for r in self.running if r.generation.finish_reason]:
            self._finish(r)
        self.steps += 1
        self.last_step = self._step_stats(decodes, chunks, preempted, perf_counter() - start)
        return outputs

    def _take_inbox(self) -> list[RequestOutput]:
        """New requests join the queue; aborted ones leave, freeing their blocks."""
        with self._lock:
            self.waiting.extend(self._inbox)
            self._inbox, aborts, self._aborts = [], self._aborts, set()
        outputs = []
        for r in [r for r in (*self.waiting, *self.running) if r.id in aborts]:
            r.generation.finish_reason = "abort"
            self._finish(r)
            r.generation.text = r.stopping.stopper.text if r.stopping.stopper is not None else None
            outputs.append(RequestOutput(r.id, [], "", [], True, "abort", r.generation))
        return outputs

    def _schedule(self) -> tuple[list[Request], list[tuple[Request, int]], int]:
        """Choose this step's work. -> (decoding requests, prefill chunks (request, n_tokens), preemptions)

        1. Decodes first, oldest first, one token each: one that needs a block when none is
           free preempts the newest running request (itself, if it is the newest).
        2. Then prompts part-way through prefill, oldest first: the next chunk that fits the
           budget and the free blocks; one that cannot take a single position preempts the
           newest request still prefilling (perhaps itself), never a decode already planned.
        3. What is left of the budget goes to waiting requests, in arrival order, each needing
           the blocks of its whole first chunk (or everyone behind it waits too)."""
        decodes, chunks, preempted = [], [], 0
        for r in list(self.running):
            if r not in self.running or r.n_todo != 1:  # preempted meanwhile, or still prefilling
                continue
            while not self._reserve(r, r.n_cached + 1):  # its next position needs a block, none free
                self._preempt(self.running[-1])
                preempted += 1
                if r not in self.running:  # it was the newest itself
                    break
            else:
                decodes.append(r)
        budget = self.max_step_tokens - len(decodes)
        for r in [r for r in self.running if r.n_todo > 1]:
            if budget == 0:
                break
            while r in self.running and self._room(r) == 0:  # not one more position fits
                self._preempt([p for p in self.running if p.n_todo > 1][-1])  # the newest prefill
                preempted += 1
            if r in self.running:
                n = min(r.n_todo, budget, self._room(r))
                self._reserve(r, r.n_cached + n)
                chunks.append((r, n))
                budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.max_batch:
            r = self.waiting[0]
            self._reuse_prefix(r)
            n = min(r.n_todo, budget)
            if not self._reserve(r, r.n_cached + n):  # all of its first chunk, or wait
                self._release(r)  # (and hold no shared prefix blocks while waiting)
                break
            self.waiting.popleft()
            self.running.append(r)
            if not r.admitted:
                self.prompt_tokens += len(r.ids)
                r.admitted = True
            chunks.append((r, n))
            budget -= n
        return decodes, chunks, preempted

    def _room(self, r: Request) -> int:
        """Positions r can take now: the rest of its blocks and every free block."""
        return (len(r.table) + self.blocks.n_free) * self.block_size - r.n_cached

    def _reserve(self, r: Request, n_positions: int) -> bool:
        """Give r blocks for its first n_positions, if enough are free (all or none)."""
        missing = math.ceil(n_positions / self.block_size) - len(r.table)
        if missing > self.blocks.n_free:
            return False
        r.table += [self.blocks.allocate() for _ in range(missing)]
        return True

    def _reuse_prefix(self, r: Request) -> None:
        """Prefix caching: share the already-computed full blocks that start r's tokens (all
        but its last token: the model must still compute at least one position's logits)."""
        parent = None
        for i in range((len(r.ids) - 1) // self.block_size):
            tokens = r.ids[i * self.block_size : (i + 1) * self.block_size]
            block = self.blocks.lookup(parent, tokens)
            if block is None:
                break
            parent = self.blocks.register(block, parent, tokens)
            r.table.append(block)
            r.hashes.append(parent)
            r.n_cached += self.block_size

    def _preempt(self, r: Request) -> None:
        """Free r's blocks and send it back to the front of the queue; its tokens are kept and
        their keys and values recomputed when it is admitted again."""
        self._release(r)
        self.running.remove(r)
        self.waiting.appendleft(r)
        self.preemptions += 1

    def _release(self, r: Request) -> None:
        for block in reversed(r.table):  # the tail first: the prefix's head stays cached longest
            self.blocks.release(block)
        r.table, r.hashes, r.n_cached = [], [], 0

    def _finish(self, r: Request) -> None:
        self._release(r)
        if r in self.running:
            self.running.remove(r)
        elif r in self.waiting:
            self.waiting.remove(r)

    def _run(self, decodes: list[Request], chunks: list[tuple[Request, int]]) -> list[tuple[Request, np.ndarray]]:
        """One batched decode call for every decoding request, one call per prefill chunk."""
        out = []
        runner = self.model.runner
        if decodes:
            width = max(len(r.table) for r in decodes)
            tables = np.array([r.table + [0] * (width - len(r.table)) for r in decodes], np.int32)  # [n_rows, width]
            tokens = np.array([r.ids[r.n_cached] for r in decodes])  # [n_rows] each one's last token,
            positions = np.array([r.n_cached for r in decodes])  # [n_rows] at its next position
            logits = runner.decode_paged(tokens, positions, self.cache, tables)  # [n_rows, n_vocab]
            for r, row in zip(decodes, logits):
                r.n_cached += 1
                out.append((r, row))
        for r, n in chunks:
            t = perf_counter()
            seq = PagedSequence(self.cache, np.array(r.table, np.int64), r.n_cached)
            row = runner.prefill_paged(np.array(r.ids[r.n_cached : r.n_cached + n]), seq)  # [n_vocab]
            r.n_cached += n
            g = r.generation
            if not g.tokens:  # the prompt's prefill time, summed over its chunks
                g.prefill_seconds = (0 if r.n_cached == n else g.prefill_seconds) + perf_counter() - t
            if r.n_todo == 0:
                out.append((r, row))
        for r in (*decodes, *(r for r, _ in chunks)):
            self._register_full_blocks(r)
        return out

    def _register_full_blocks(self, r: Request) -> None:
        """Name every block r has filled since the last step, for later requests to share."""
        size = self.block_size
        for i in range(len(r.hashes), r.n_cached // size):
            parent = r.hashes[-1] if r.hashes else None
            r.hashes.append(self.blocks.register(r.table[i], parent, r.ids[i * size : (i + 1) * size]))

    def _sample(self, r: Request, logits: np.ndarray) -> RequestOutput:
        """Draw r's next token with its own generator and apply generate's stopping rule."""
        token = sample(logits, r.params, history=r.ids, rng=r.rng)
        now = perf_counter()
        g = r.generation
        g.token_seconds.append(now - (r.last_token_time if g.tokens else r.arrival))
        r.last_token_time = now
        piece = r.stopping.add(g, token, len(r.ids))
        r.ids.append(token)
        self.generated_tokens += 1
        logprobs = [token_logprob(logits, token, r.logprobs)] if r.logprobs is not None else []
        if g.finish_reason:
            piece += r.stopping.finish(g)
        return RequestOutput(r.id, [token], piece, logprobs, bool(g.finish_reason), g.finish_reason or None, g)

    # -- what it is doing -------------------------------------------------------------------

    def _step_stats(self, decodes, chunks, preempted: int, seconds: float) -> StepStats:
        """The step's shape, time and counts: one decode call over the batch (counted at the rows'
        mean length), then one call per chunk, each reading every weight."""
        calls = [(1, int(np.mean([r.n_cached - 1 for r in decodes])), len(decodes))] if decodes else []
        calls += [(n, r.n_cached - n, 1) for r, n in chunks]  # (n_new, n_past, n_batch)
        costs = [self._count(*call) for call in calls]
        flops, nbytes = sum(c.flops for c in costs), sum(c.bytes for c in costs)
        return StepStats(len(decodes), sum(n for _, n in chunks), preempted, seconds, flops, nbytes)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one engine per model: the cache dies with it)
    def _count(self, n_new: int, n_past: int, n_batch: int):
        """minfer.perf.counts' FLOPs and bytes of one model call (remembered: steps repeat shapes)."""
        from minfer.perf.counts import Arch, step_costs, total

        return total(step_costs(Arch.from_model(self.model), n_new, n_past, n_batch))

    def stats(self) -> EngineStats:
        """Counts and the block map, now."""
        b = self.blocks
        block_map = b.block_map()
        return EngineStats(
            running=len(self.running),
            waiting=len(self.waiting) + len(self._inbox),
            kv_blocks_used=block_map.count("used"),
            kv_blocks_cached=block_map.count("cached"),
            kv_blocks_free=block_map.count("free"),
            kv_blocks_total=b.n_blocks,
            kv_slots_empty=sum(len(r.table) * self.block_size - r.n_cached for r in self.running),
            block_size=self.block_size,
            prefix_cache_queries=b.queries,
            prefix_cache_hits=b.hits,
            prompt_tokens=self.prompt_tokens,
            generated_tokens=self.generated_tokens,
            preemptions=self.preemptions,
            steps=self.steps,
            last_step=self.last_step,
            blocks=block_map,
        )


def token_logprob(logits: np.ndarray, token: int, n_top: int) -> TokenLogprob:
    """log-softmax of the raw logits: the token's, and the n_top most likely tokens'."""
    z = logits.astype(np.float64)  # [n_vocab]
    logp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))  # [n_vocab]
    top = np.argsort(-logp, kind="stable")[:n_top]  # [n_top]
    return TokenLogprob(int(token), float(logp[token]), [(int(t), float(logp[t])) for t in top])


class LLM:
    """Offline batch jobs through the engine: every prompt in, every Generation out, in order.

    Example:
        >>> llm = LLM(model, max_batch=16)
        >>> gens = llm.generate(["And the king said", "In the beginning"], 32)
    """

    def __init__(self, model: Model, **engine_options):
        self.engine = Engine(model, **engine_options)

    def generate(
        self,
        prompts: Sequence[str | Sequence[int]],
        max_new_tokens: int = 64,
        params: SamplingParams | None = None,
        stop_tokens: Sequence[int] | None = None,
        stop_strings: Sequence[str] | str = (),
    ) -> list[Generation]:
        """Run every prompt to its end; one Generation per prompt, in the order given."""
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise InvalidInputError(f"LLM.generate takes a list of prompts, not a {type(prompts).__name__}")
        ids = [self.engine.add_request(p, max_new_tokens, params, stop_tokens, stop_strings) for p in prompts]
        results: dict[int, Generation] = {}
        while len(results) < len(ids):
            for out in self.engine.step():
                if out.finished:
                    results[out.request_id] = out.generation
        return [results[i] for i in ids]
