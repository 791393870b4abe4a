"""The Numba backend: the same GPT-2 as `minfer.model`, with decode compiled whole (lesson 10).

(`minfer.fast` re-exports what is public here: `from minfer import fast; fast.FastModel`.)

Why a second path? Decode is memory-bound: a token should cost about the time it takes to read
the weights once. The NumPy reference spends more than that on Python: dozens of small NumPy
calls per layer, each with microseconds of dispatch and a fresh output array. Here:

- `decode_step` is one `@njit` function for a whole token, all layers (llama2.c's `forward`): no
  Python between ops, no allocation, every buffer in a preallocated `RunState`;
- its matrix-vector products are Numba kernels (`minfer.fast.kernels`) that stream each weight once;
  with `quantize="int8"` they read 1-byte weights and a scale per output column, and
  dequantize on the fly: a quarter of the bytes, so (memory-bound) up to 4x faster;
- prefill stays a Python loop over layers, since its time is in matrix-matrix products: BLAS
  (NumPy `@`) does those best, and the Python overhead is paid once per prompt, not per token.

Every kernel has a NumPy twin it is tested against; the whole backend is tested against the
NumPy model (and through it against transformers) by the same fidelity tests.
"""

from __future__ import annotations

import hashlib
import threading
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from numba import njit

from minfer.checks import token_id_array
from minfer.config import Config
from minfer.errors import InvalidInputError
from minfer.fast import kernels as K
from minfer.kvcache import KVCache, check_cache, in_use
from minfer.weights import GPT2Weights

if TYPE_CHECKING:  # minfer.serving imports this module (its engine runs the compiled backend)
    from minfer.serving.paged import PagedKVCache, PagedSequence

QUANTIZE = (None, "int8")
FEW_ROWS = 8  # up to this many rows, the streaming kernels beat BLAS (benchmarks/kernels.py)


def drop_stale_compiled_code(cache_path: Path, module: str = "backend", also: tuple[str, ...] = ()) -> None:
    """Numba's cache=True keys a compiled function on its own file only: after a change to a
    kernel in minfer/fast/kernels/, a cached `decode_step` would still run the old kernel's code.
    So: stamp the kernels' source (and that of the `also` files of minfer/fast/ that `module`
    calls into), and when it changes, delete `module`'s cached compilations in `cache_path`
    (they are rebuilt on the next call). minfer.fast.llama calls it for its own step too."""
    here = Path(__file__).parent
    sources = sorted((here / "kernels").glob("*.py")) + [here / name for name in also]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = cache_path / f"{module}.kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for compiled in cache_path.glob(f"{module}.*.nb[ic]"):
            compiled.unlink(missing_ok=True)
        cache_path.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # nowhere writable: Numba then compiles on every start
        pass


def compiled_code_dir() -> Path:
    """Where Numba keeps this module's compiled functions: `__pycache__` beside it, or in a
    read-only install $MINFER_HOME/numba (see minfer.fast.kernels.use_writable_numba_cache). Read
    from Numba's cache object (not public API: if a Numba release renames it, the default place)."""
    path = getattr(getattr(decode_step, "_cache", None), "_cache_path", None)
    return Path(path) if path else Path(__file__).parent / "__pycache__"


def is_compiled(family: str = "gpt2") -> bool:
    """Whether Numba's cache holds a compiled decode step for a model family ("gpt2" or "llama";
    if not, the first call compiles for tens of seconds)."""
    step = "llama.llama_decode_step" if family == "llama" else "backend.decode_step"
    return any(compiled_code_dir().glob(f"{step}-*.nbi"))


# Per-layer weights stacked on a leading n_layer axis, so one compiled function can walk the
# layers. A matrix's `*_scale` is [n_layer, n_out] for int8 weights, or [n_layer, 0] for float32.
StackedWeights = namedtuple(
    "StackedWeights",
    [
        "wte",  # [n_vocab, n_embd] float32 or int8 (then wte_scale: [n_vocab], one per row)
        "wte_scale",
        "wpe",  # [n_ctx, n_embd]
        "ln_1_w",
        "ln_1_b",  # [n_layer, n_embd]
        "attn_w",
        "attn_scale",
        "attn_b",  # [n_layer, n_embd, 3 n_embd], ..., [n_layer, 3 n_embd]
        "proj_w",
        "proj_scale",
        "proj_b",  # [n_layer, n_embd, n_embd]
        "ln_2_w",
        "ln_2_b",
        "fc_w",
        "fc_scale",
        "fc_b",  # [n_layer, n_embd, 4 n_embd]
        "out_w",
        "out_scale",
        "out_b",  # [n_layer, 4 n_embd, n_embd]: the MLP's c_proj
        "ln_f_w",
        "ln_f_b",  # [n_embd]
    ],
)

# Buffers for one decode step of n_rows sequences, allocated by each call (a few microseconds),
# never kept on the model: two threads decoding on one model each have their own.
RunState = namedtuple(
    "RunState",
    [
        "x",  # [n_rows, n_embd] the residual stream
        "h",  # [n_rows, n_embd] a normed copy, then each sublayer's output
        "qkv",  # [n_rows, 3 n_embd]
        "att",  # [n_rows, n_embd] attention output, heads side by side
        "fc",  # [n_rows, 4 n_embd]
        "q",  # [n_rows, n_head, d_head] the queries
        "scores",  # [n_rows, n_head, n_keys] attention scratch (the longest row's keys)
        "logits",  # [n_rows, n_vocab]
    ],
)


def stack_weights(w: GPT2Weights, quantize: str | None = None) -> StackedWeights:
    """Copy the per-block weights into stacked arrays (int8 with per-column scales if asked)."""

    def stack(get):  # [n_layer, ...]
        return np.ascontiguousarray(np.stack([get(b) for b in w.h]), dtype=np.float32)

    def matrix(get) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # (weights, scales, biases)
        weight, bias = stack(lambda b: get(b).weight), stack(lambda b: get(b).bias)
        if quantize is None:
            return weight, np.zeros((len(w.h), 0), np.float32), bias
        q, scale = K.quantize_int8(weight, axis=1)  # one scale per output column of each layer
        return q, scale.reshape(len(w.h), -1), bias

    if quantize is None:
        wte, wte_scale = np.ascontiguousarray(w.wte, np.float32), np.zeros(0, np.float32)
    else:
        wte, wte_scale = K.quantize_int8(np.asarray(w.wte, np.float32), axis=1)  # one scale per row
    return StackedWeights(
        wte,
        wte_scale.reshape(-1),
        np.ascontiguousarray(w.wpe, np.float32),
        stack(lambda b: b.ln_1.weight),
        stack(lambda b: b.ln_1.bias),
        *matrix(lambda b: b.attn.c_attn),
        *matrix(lambda b: b.attn.c_proj),
        stack(lambda b: b.ln_2.weight),
        stack(lambda b: b.ln_2.bias),
        *matrix(lambda b: b.mlp.c_fc),
        *matrix(lambda b: b.mlp.c_proj),
        np.ascontiguousarray(w.ln_f.weight, np.float32),
        np.ascontiguousarray(w.ln_f.bias, np.float32),
    )


def new_run_state(c: Config, max_seq: int, n_rows: int = 1) -> RunState:
    """Scratch for one decode step of `n_rows` sequences attending over up to `max_seq` positions.
    Every buffer is written before it is read, so it need not be zeroed."""
    d = c.n_embd
    empty = lambda *shape: np.empty(shape, np.float32)  # noqa: E731
    return RunState(
        empty(n_rows, d),
        empty(n_rows, d),
        empty(n_rows, 3 * d),
        empty(n_rows, d),
        empty(n_rows, 4 * d),
        empty(n_rows, c.n_head, c.d_head),
        empty(n_rows, c.n_head, max_seq),
        empty(n_rows, c.n_vocab),
    )


@njit(cache=True)
def linear_any(x, w, scale, b, out):  # x: [n, n_in], w: [n_in, n_out] f32 or int8 -> out: [n, n_out]
    """Float32 weights (no scales) or int8 weights with a scale per output column."""
    if scale.shape[0] == 0:
        K.linear(x, w, b, out)
    else:
        K.linear_int8(x, w, scale, b, out)


@njit(cache=True)
def decode_step(tokens, positions, tables, w, k_cache, v_cache, s, n_head, eps):
    """One token per row through every layer: row r is token tokens[r] at position positions[r]
    of the sequence whose block table is tables[r]. k_cache, v_cache: [n_layer, n_blocks, n_head,
    block_size, d_head], a pool of blocks (minfer.serving.paged): position p of row r is written
    and read at block tables[r, p // block_size], offset p % block_size. A contiguous cache is
    one block of max_seq positions per sequence (tables = slots[:, None]). The logits land in
    s.logits [n_rows, n_vocab]. The weights are read once per step for all rows."""
    n_rows, d = s.x.shape
    d_head, block_size = d // n_head, k_cache.shape[3]
    K.embed(tokens, w.wte, w.wte_scale, w.wpe, positions, s.x)
    for layer in range(w.ln_1_w.shape[0]):
        K.layer_norm(s.x, w.ln_1_w[layer], w.ln_1_b[layer], eps, s.h)
        linear_any(s.h, w.attn_w[layer], w.attn_scale[layer], w.attn_b[layer], s.qkv)
        for r in range(n_rows):  # q to its buffer; k and v straight into the row's block at its offset
            b, at = tables[r, positions[r] // block_size], positions[r] % block_size
            for head in range(n_head):
                for i in range(d_head):
                    s.q[r, head, i] = s.qkv[r, head * d_head + i]
                    k_cache[layer, b, head, at, i] = s.qkv[r, d + head * d_head + i]
                    v_cache[layer, b, head, at, i] = s.qkv[r, 2 * d + head * d_head + i]
        att = s.att.reshape(n_rows, n_head, d_head)  # [n_rows, n_head, d_head], a view
        K.paged_decode_attention(s.q, k_cache[layer], v_cache[layer], tables, positions + 1, att, s.scores)
        linear_any(s.att, w.proj_w[layer], w.proj_scale[layer], w.proj_b[layer], s.h)
        K.add(s.x, s.h, s.x)
        K.layer_norm(s.x, w.ln_2_w[layer], w.ln_2_b[layer], eps, s.h)
        linear_any(s.h, w.fc_w[layer], w.fc_scale[layer], w.fc_b[layer], s.fc)
        K.gelu(s.fc, s.fc)
        linear_any(s.fc, w.out_w[layer], w.out_scale[layer], w.out_b[layer], s.h)
        K.add(s.x, s.h, s.x)
    K.layer_norm(s.x, w.ln_f_w, w.ln_f_b, eps, s.h)
    K.lm_head(s.h, w.wte, w.wte_scale, s.logits)


drop_stale_compiled_code(compiled_code_dir())


class CompiledBackend:
    """What both families' Numba backends share: the Backend protocol (minfer.model) around a
    family's compiled decode `step` and its BLAS `prefill_layers`, which a subclass supplies
    with its stacked weights (`FastModel` for GPT-2, `minfer.fast.llama.LlamaFastModel`).

    One compiled step serves every cache: it writes and reads keys and values through block
    tables (minfer.serving.paged), and a contiguous cache is a pool of one block of max_seq
    positions per sequence, so `decode` (a KVCache), `decode_batch` (a BatchKVCache) and
    `decode_paged` (a PagedKVCache) differ only in the tables they pass.

    Nothing here changes during a call: scratch buffers belong to the call and keys and values
    to the caller's cache, so threads may share one backend. The compiled kernels trust their
    arguments (Numba does not check bounds), so every method checks the cache, the positions,
    the block tables and the token ids against the config first: a wrong-shaped cache or a bad
    table is an error, never a write past a buffer's end.
    """

    config: Any  # the family's config (Config or LlamaConfig)
    w: Any  # the family's stacked weights (a namedtuple of arrays)
    quantize: str | None
    head = "wte"  # the field of `w` holding the LM head's table (scale: f"{head}_scale")

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """Every position's logits, through a throwaway cache (the prefill kernels attend through one)."""
        c = self.config
        cache = KVCache.empty(c.n_layer, c.n_kv_head, len(ids), c.d_head)
        return self.prefill(ids, cache, all_logits=True)  # [n_seq, n_vocab]

    def decode(self, token: int, cache: KVCache) -> np.ndarray:
        """One token at cache.length -> float32 [n_vocab]: the compiled step with one row, the
        cache seen as a pool of one block of max_seq positions."""
        ids = np.array([token])  # [1]
        with in_use(cache):
            self.check(ids, cache)
            k, v = cache.k[:, None], cache.v[:, None]  # [n_layer, 1, n_kv_head, max_seq, d_head], views
            table = np.zeros((1, 1), np.int32)  # [1, 1]: the sequence is block 0 of that pool
            logits = self.step(ids, np.array([cache.length], np.int64), table, k, v)
            cache.advance(1)
        return logits[0]  # [n_vocab], this call's own buffer

    def decode_batch(self, tokens: np.ndarray, cache, rows: np.ndarray) -> np.ndarray:
        """One compiled step for the rows of a BatchKVCache: tokens[i] into slot rows[i] at its
        length. Slot b is block b of max_seq positions, so row i's table is [rows[i]].
        tokens, rows: [n_rows] -> [n_rows, n_vocab]"""
        from minfer.batch import check_batch_step

        with in_use(cache):
            tokens, rows = check_batch_step(self.config, tokens, cache, rows)  # [n_rows], [n_rows]
            tables = rows.astype(np.int32)[:, None]  # [n_rows, 1]
            logits = self.step(tokens, cache.lengths[rows].astype(np.int64), tables, cache.k, cache.v)
            cache.lengths[rows] += 1
        return logits  # [n_rows, n_vocab]

    def decode_paged(self, tokens, positions, cache: PagedKVCache, tables) -> np.ndarray:
        """One compiled step through block tables: tokens[i] at positions[i] of the sequence
        whose table is tables[i], its key and value written into the pool, its attention read
        from the blocks in place. tokens, positions: [n_rows], tables: [n_rows, n_table]
        -> [n_rows, n_vocab]. The caller moves its sequences' lengths."""
        from minfer.serving.paged import check_paged_step

        tokens, positions, tables = check_paged_step(self.config, tokens, positions, cache, tables)
        if not len(tokens):  # no rows this step
            return np.empty((0, self.config.n_vocab), np.float32)  # [0, n_vocab]
        return self.step(tokens, positions, tables, cache.k, cache.v)  # [n_rows, n_vocab]

    def prefill_paged(self, ids: np.ndarray, seq: PagedSequence) -> np.ndarray:
        """A chunk of one sequence after seq.length, through its block table: the family's BLAS
        prefill loop, its keys gathered by `seq` (PagedSequence). -> [n_vocab], the last position's"""
        from minfer.serving.paged import check_paged_step

        ids, n_vocab = token_id_array(ids), self.config.n_vocab  # [n_seq]
        if not len(ids) or ids.min() < 0 or ids.max() >= n_vocab:
            raise InvalidInputError(f"prefill_paged takes a non-empty chunk of token ids in [0, {n_vocab})")
        last = seq.length + len(ids) - 1  # the chunk's last position: checked as a step's row, it must
        # be within n_ctx and the table, and every block up to its own must be a block of the pool
        check_paged_step(self.config, ids[-1:], [last], seq.cache, np.asarray(seq.table)[None, :])
        with compiled_calls(), blas_on_one_thread():
            return self.prefill_layers(ids, seq, all_logits=False)  # [n_vocab]

    def check(self, ids: np.ndarray, cache: KVCache) -> None:
        """What the kernels index by must fit the buffers: the cache's shape and length against
        the config, the ids against the vocabulary, the positions against n_ctx. (Model has
        checked already; this costs a few microseconds and keeps the backend safe on its own.)"""
        c = self.config
        if not (
            isinstance(ids, np.ndarray)
            and ids.ndim == 1
            and np.issubdtype(ids.dtype, np.integer)
            and len(ids)
            and 0 <= ids.min()
            and ids.max() < c.n_vocab
        ):
            raise InvalidInputError(f"token ids must be a non-empty 1-D integer array in [0, {c.n_vocab})")
        check_cache(cache, c.n_layer, c.n_kv_head, c.d_head, len(ids), c.n_ctx)

    def prefill(self, ids: np.ndarray, cache: KVCache, all_logits: bool = False) -> np.ndarray:
        """The prompt in one pass: BLAS matmuls and Numba kernels (`prefill_layers`)."""
        with in_use(cache):
            self.check(ids, cache)
            with compiled_calls(), blas_on_one_thread():
                return self.prefill_layers(ids, cache, all_logits)

    def lm_head(self, x: np.ndarray) -> np.ndarray:
        """Logits of a few rows by the streaming kernel, of many by BLAS. x: [n_rows, n_embd] -> [n_rows, n_vocab]"""
        if len(x) > FEW_ROWS:
            return x @ self.dequantized(self.head).T  # [n_rows, n_vocab]
        out = np.empty((len(x), self.config.n_vocab), np.float32)  # [n_rows, n_vocab]
        K.lm_head(np.ascontiguousarray(x), getattr(self.w, self.head), getattr(self.w, f"{self.head}_scale"), out)
        return out

    def matmul(self, x: np.ndarray, layer: int, name: str) -> np.ndarray:
        """x @ W + b for a stacked matrix. Many rows: BLAS, the fastest matrix-matrix product
        (int8 weights dequantized first, paid once for all rows). A few rows: the streaming
        kernel, which reads W once and starts no BLAS threads (they spin for ~100 ms after a
        call and would slow the decode kernels that follow a short prompt)."""
        b = getattr(self.w, f"{name}_b")[layer]  # [n_out]
        if len(x) > FEW_ROWS:
            return x @ self.dequantized(name, layer) + b  # [n_seq, n_out]
        w, scale = getattr(self.w, f"{name}_w")[layer], getattr(self.w, f"{name}_scale")[layer]
        out = np.empty((len(x), w.shape[1]), np.float32)  # [n_seq, n_out]
        linear_any(np.ascontiguousarray(x), w, scale, b, out)
        return out

    def dequantized(self, name: str, layer: int | None = None) -> np.ndarray:
        """A weight matrix as float32 (itself, if it is not quantized)."""
        if layer is None:  # the LM head's table, a scale per row
            table = getattr(self.w, name)  # [n_vocab, n_embd]
            return table if self.quantize is None else table * getattr(self.w, f"{name}_scale")[:, None]
        w, scale = getattr(self.w, f"{name}_w")[layer], getattr(self.w, f"{name}_scale")[layer]
        return w if self.quantize is None else w * scale[None, :]  # [n_in, n_out]

    def step(self, tokens, positions, tables, k_cache, v_cache) -> np.ndarray:
        """The family's compiled decode step on checked arguments: tokens, positions int64 [n_rows],
        tables int32 [n_rows, n_table], k_cache, v_cache [n_layer, n_blocks, n_kv_head, block_size,
        d_head]. -> logits [n_rows, n_vocab]"""
        raise NotImplementedError

    def prefill_layers(self, ids: np.ndarray, cache: KVCache | PagedSequence, all_logits: bool) -> np.ndarray:
        """The family's prefill block loop on checked arguments. It uses only the cache's
        length, update and advance, so a PagedSequence serves as well as a KVCache."""
        raise NotImplementedError


class FastModel(CompiledBackend):
    """GPT-2's Numba backend: its weights stacked (maybe int8) and read-only once built, and
    `decode_step` compiled for one or several rows (see CompiledBackend for what it shares)."""

    def __init__(self, config: Config, weights: GPT2Weights, quantize: str | None = None):
        if quantize not in QUANTIZE:
            raise InvalidInputError(f"quantize={quantize!r} is not supported; choose None or 'int8'")
        self.config: Config = config
        self.quantize = quantize
        self.w = stack_weights(weights, quantize)
        start_threads()

    def step(self, tokens, positions, tables, k_cache, v_cache) -> np.ndarray:
        """Run `decode_step` on checked arguments. -> logits [n_rows, n_vocab]"""
        c = self.config
        state = new_run_state(c, int(positions.max()) + 1, len(tokens))
        with compiled_calls():
            eps = np.float32(c.layer_norm_eps)
            decode_step(tokens, positions, tables, self.w, k_cache, v_cache, state, c.n_head, eps)
        return state.logits

    def prefill_layers(self, ids: np.ndarray, cache: KVCache | PagedSequence, all_logits: bool) -> np.ndarray:
        """The Numba backend's prefill block loop (a Python loop: its time is in BLAS's matmuls)."""
        c, w = self.config, self.w
        x = np.empty((len(ids), c.n_embd), np.float32)  # [n_seq, n_embd]
        K.embed(ids, w.wte, w.wte_scale, w.wpe, np.arange(cache.length, cache.length + len(ids)), x)
        for layer in range(c.n_layer):
            h = norm(x, w.ln_1_w[layer], w.ln_1_b[layer], c.layer_norm_eps)  # [n_seq, n_embd]
            x = x + self.attention(self.matmul(h, layer, "attn"), cache, layer)  # [n_seq, n_embd]
            h = norm(x, w.ln_2_w[layer], w.ln_2_b[layer], c.layer_norm_eps)  # [n_seq, n_embd]
            fc = self.matmul(h, layer, "fc")  # [n_seq, 4 n_embd]
            K.gelu(fc, fc)
            x = x + self.matmul(fc, layer, "out")  # [n_seq, n_embd]
        cache.advance(len(ids))
        x = norm(x if all_logits else x[-1:], w.ln_f_w, w.ln_f_b, c.layer_norm_eps)  # [n_rows, n_embd]
        logits = self.lm_head(x)  # [n_rows, n_vocab]
        return logits if all_logits else logits[0]

    def attention(self, qkv: np.ndarray, cache: KVCache | PagedSequence, layer: int) -> np.ndarray:
        """Write the new keys and values into the cache, attend causally. qkv: [n_seq, 3 n_embd] -> [n_seq, n_embd]"""
        n_seq, c = qkv.shape[0], self.config
        q, k, v = (
            np.ascontiguousarray(p.reshape(n_seq, c.n_head, c.d_head).transpose(1, 0, 2))
            for p in np.split(qkv, 3, axis=1)
        )  # [n_head, n_seq, d_head]
        keys, values = cache.update(layer, k, v)  # [n_head, n_past + n_seq, d_head]
        out = np.empty_like(q)  # [n_head, n_seq, d_head]
        K.prefill_attention(q, np.ascontiguousarray(keys), np.ascontiguousarray(values), out, 64)
        return self.matmul(out.transpose(1, 0, 2).reshape(n_seq, c.n_embd), layer, "proj")


_COMPILED_LOCK = threading.Lock()
_LAYER = {"needs_lock": True}  # until start_threads has seen which threading layer runs


@contextmanager
def compiled_calls() -> Iterator[None]:
    """Serializes the compiled calls when Numba's threading layer cannot take concurrent ones.

    Numba's default layer, `workqueue`, aborts the process when two Python threads enter
    parallel kernels at once. The `omp` and `tbb` layers can (NUMBA_THREADING_LAYER=omp, or
    install tbb): then this does nothing. With workqueue, one lock lets any number of threads
    share the backend: their calls take turns, each still using every core
    (benchmarks/threads.py measures what that costs)."""
    if _LAYER["needs_lock"]:
        with _COMPILED_LOCK:
            yield
    else:
        yield


class _BlasPolicy:  # the state of blas_on_one_thread
    controller: Any = None  # threadpoolctl's ThreadpoolController, made on first use
    limit: Any = None  # the limit in force while users > 0
    users = 0  # calls inside blas_on_one_thread now


_BLAS = _BlasPolicy()
_BLAS_LOCK = threading.Lock()


@contextmanager
def blas_on_one_thread() -> Iterator[None]:
    """The thread policy: inside the Numba backend, Numba's thread pool owns the cores and BLAS
    runs on one thread.

    Prefill mixes BLAS matmuls with parallel Numba kernels (attention, GELU). OpenBLAS's workers
    spin for about 100 ms after each call, waiting for more work, so with both pools on two
    cores each one's threads steal the other's time: without this policy, decode steps straight
    after a prefill ran 1.16x slower, batched ones 1.13x, the prefill itself 1.02x (GPT-2 124M's
    shape; benchmarks/thread_policy.py measures each phase). Single-threaded BLAS starts no
    workers, so nothing spins. The limit is process-wide (BLAS has one setting), so it is
    counted: the first call in sets it, the last one out restores it; a NumPy-backend model
    prefilling in another thread meanwhile also gets one BLAS thread.
    """
    with _BLAS_LOCK:
        if _BLAS.users == 0:
            if _BLAS.controller is None:
                from threadpoolctl import ThreadpoolController

                _BLAS.controller = ThreadpoolController()  # finds the loaded BLAS (~0.5 ms, once)
            _BLAS.limit = _BLAS.controller.limit(limits=1, user_api="blas")
        _BLAS.users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS.users -= 1
            if _BLAS.users == 0:
                _BLAS.limit.restore_original_limits()


def start_threads() -> None:
    """Start Numba's thread pool by calling a parallel kernel from Python. A function loaded from
    the cache (cache=True) that calls a parallel kernel does not start the pool itself, and
    crashes if nothing has started it yet (seen with Numba 0.6x in a fresh process). Then note
    whether the layer that started needs the calls serialized."""
    x = np.ones((1, 1), np.float32)  # [1, 1]
    with _COMPILED_LOCK:
        K.linear(x, x, np.zeros(1, np.float32), np.empty((1, 1), np.float32))
    _LAYER["needs_lock"] = numba.threading_layer() == "workqueue"


def norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """The Numba layer norm with a fresh output (prefill's arrays change size with the prompt)."""
    out = np.empty_like(x)  # [n_seq, n_embd]
    K.layer_norm(np.ascontiguousarray(x), weight, bias, np.float32(eps), out)
    return out
