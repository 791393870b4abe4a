"""Stage 6, the model: the whole forward pass, and its two phases, prefill and decode (lessons 02, 04 and 05).

- `forward(ids)`: every position's logits, nothing cached (the textbook forward pass).
- `prefill(ids, cache)`: the whole prompt in one pass (matrix-matrix products, compute-bound);
  fills the KV cache and returns the last position's logits.
- `decode(token, cache)`: one new token against the cache (matrix-vector products,
  memory-bound: every weight is read to produce one token).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from minfer.block import block
from minfer.checks import is_whole, token_id_array
from minfer.config import Config, ModelConfig
from minfer.embed import embed, lm_head
from minfer.errors import ContextOverflowError, InvalidInputError
from minfer.kvcache import BatchKVCache, BatchSlots, KVCache, check_cache, check_max_seq, in_use, kv_bytes_per_token
from minfer.layers import layer_norm
from minfer.llama import llama_hidden_states
from minfer.tokenizer import Tokenizer
from minfer.weights import GPT2Weights, LlamaWeights

if TYPE_CHECKING:  # minfer.serving imports this module
    from minfer.serving.paged import PagedKVCache, PagedSequence

BACKENDS = ("numpy", "numba")  # the readable reference, and compiled kernels (minfer.fast)
DEFAULT_CACHE_BYTES = 1 << 30  # new_cache() keeps all n_ctx positions while they fit in 1 GiB


def kv_bytes_per_position(c: ModelConfig) -> int:
    """Bytes one position adds to the KV cache: a key and a value per layer and KV head, float32."""
    return kv_bytes_per_token(c.n_layer, c.n_kv_head, c.d_head, kv_size=4)


def default_cache_positions(c: ModelConfig) -> int:
    """n_ctx, or as many positions as fit in DEFAULT_CACHE_BYTES when n_ctx's cache would not."""
    return max(1, min(c.n_ctx, DEFAULT_CACHE_BYTES // kv_bytes_per_position(c)))


def hidden_states(
    ids: np.ndarray,
    w: GPT2Weights,
    cfg: Config,
    cache: KVCache | BatchSlots | None = None,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """Embed `ids`, run the blocks, return the final-norm hidden states. ids: [n_rows] -> [n_rows, n_embd]

    The one block loop of the reference: a prompt, a chunk after cached tokens and a batch of
    decode steps differ only in `positions` and `cache`. By default `ids` are the tokens after
    the `cache.length` already cached (positions [n_seq]); their keys and values are written
    into the cache, whose length advances by n_seq. For a batch, pass positions [n_batch, n_q]
    and a batch cache (`minfer.kvcache.BatchSlots`); its lengths are then the caller's to move.
    """
    # one sequence's cache (a KVCache, or a paged sequence's view) moves its own length; a batch's is its caller's
    own = cache if positions is None and not isinstance(cache, BatchSlots) else None
    if positions is None:
        start = 0 if own is None else own.length
        positions = np.arange(start, start + len(ids))  # [n_seq]
    x = embed(ids, w.wte, w.wpe, positions.reshape(-1))  # [n_rows, n_embd]
    for layer, bw in enumerate(w.h):
        x = block(x, bw, cfg.n_head, cfg.layer_norm_eps, cache, layer, positions)  # [n_rows, n_embd]
    if own is not None:
        own.advance(len(ids))
    return layer_norm(x, w.ln_f.weight, w.ln_f.bias, cfg.layer_norm_eps)  # [n_rows, n_embd]


class Backend(Protocol):
    """What computes a model: the seam between `Model` (which checks every argument once) and
    the code that runs it. The NumPy reference (`NumpyBackend`) and the Numba backend
    (`minfer.fast.FastModel`) implement it; a new model family or cache plugs in here. Its
    methods trust their arguments: Model has checked the ids and the cache's shape and room."""

    def forward(self, ids: np.ndarray) -> np.ndarray:  # [n_seq] -> [n_seq, n_vocab], no cache
        ...

    def prefill(
        self, ids: np.ndarray, cache: KVCache, all_logits: bool
    ) -> np.ndarray: ...  # the prompt after cache.length -> [n_vocab], or [n_seq, n_vocab] with all_logits

    def decode(self, token: int, cache: KVCache) -> np.ndarray:  # one token at cache.length -> [n_vocab]
        ...

    def decode_batch(
        self, tokens: np.ndarray, cache: BatchKVCache, rows: np.ndarray
    ) -> np.ndarray: ...  # tokens[i] into slot rows[i] at that slot's length: [n_rows] -> [n_rows, n_vocab]

    def prefill_paged(
        self, ids: np.ndarray, seq: PagedSequence
    ) -> np.ndarray: ...  # a chunk after seq.length, through its block table -> [n_vocab] (its last position)

    def decode_paged(
        self, tokens: np.ndarray, positions: np.ndarray, cache: PagedKVCache, tables: np.ndarray
    ) -> np.ndarray: ...  # tokens[i] at positions[i] through tables[i]: [n_rows] -> [n_rows, n_vocab]


# Each family's block loop (`config.family` -> function): GPT-2's above, Llama's in minfer.llama.
HIDDEN_STATES: dict[str, Callable[..., np.ndarray]] = {"gpt2": hidden_states, "llama": llama_hidden_states}


class NumpyBackend:
    """The readable reference: the family's block loop (`HIDDEN_STATES`) and the LM head, in NumPy."""

    def __init__(self, config: ModelConfig, weights: GPT2Weights | LlamaWeights):
        self.config, self.weights = config, weights
        self.hidden_states = HIDDEN_STATES[config.family]  # [n_rows] ids -> [n_rows, n_embd]

    def forward(self, ids: np.ndarray) -> np.ndarray:
        return lm_head(self.hidden_states(ids, self.weights, self.config), self.weights.lm_head)  # [n_seq, n_vocab]

    def prefill(self, ids: np.ndarray, cache: KVCache, all_logits: bool) -> np.ndarray:
        x = self.hidden_states(ids, self.weights, self.config, cache)  # [n_seq, n_embd]
        return lm_head(x, self.weights.lm_head) if all_logits else lm_head(x[-1:], self.weights.lm_head)[0]

    def decode(self, token: int, cache: KVCache) -> np.ndarray:
        x = self.hidden_states(np.array([token]), self.weights, self.config, cache)  # [1, n_embd]
        return lm_head(x, self.weights.lm_head)[0]  # [n_vocab]

    def decode_batch(self, tokens: np.ndarray, cache: BatchKVCache, rows: np.ndarray) -> np.ndarray:
        positions = cache.lengths[rows][:, None]  # [n_rows, 1]: one new token per sequence, at its length
        x = self.hidden_states(tokens, self.weights, self.config, cache.select(rows), positions)  # [n_rows, n_embd]
        cache.lengths[rows] += 1
        return lm_head(x, self.weights.lm_head)  # [n_rows, n_vocab]

    def prefill_paged(self, ids: np.ndarray, seq: PagedSequence) -> np.ndarray:
        x = self.hidden_states(ids, self.weights, self.config, seq)  # [n_seq, n_embd]
        return lm_head(x[-1:], self.weights.lm_head)[0]  # [n_vocab]

    def decode_paged(
        self, tokens: np.ndarray, positions: np.ndarray, cache: PagedKVCache, tables: np.ndarray
    ) -> np.ndarray:
        from minfer.serving.paged import PagedBatch

        view = PagedBatch(cache, tables)  # gathers each row's blocks: the readable reference
        x = self.hidden_states(tokens, self.weights, self.config, view, positions[:, None])  # [n_rows, n_embd]
        return lm_head(x, self.weights.lm_head)  # [n_rows, n_vocab]


class Model:
    """A loaded model (GPT-2 or the Llama family): config, weights, tokenizer (None if the
    checkpoint has no vocabulary file minfer can use) and the backend that computes it. Made by
    `minfer.load_model`.

    Example:
        >>> model = minfer.load_model("path/to/gpt2")
        >>> cache = model.new_cache()
        >>> logits = model.prefill(model.tokenizer.encode("Hello"), cache)   # [n_vocab]
        >>> logits = model.decode(int(logits.argmax()), cache)              # [n_vocab]
    """

    def __init__(
        self,
        config: ModelConfig,
        weights: GPT2Weights | LlamaWeights,
        tokenizer: Tokenizer | None = None,
        backend: str = "numpy",
        name: str = "",
        quantize: str | None = None,
    ):
        if backend not in BACKENDS:
            raise InvalidInputError(f"backend {backend!r} is not available; choose one of {', '.join(BACKENDS)}")
        if quantize is not None and backend != "numba":
            raise InvalidInputError(
                f"quantize={quantize!r} runs on the Numba backend: pass backend='numba' (--backend numba) "
                "(the NumPy reference computes with the float32 weights)"
            )
        self.config = config
        self.weights = weights  # float32, as loaded: the reference (and prefill's) weights
        self.tokenizer = tokenizer
        self.backend = backend
        self.name = name
        self.quantize = quantize
        self.runner: Backend = NumpyBackend(config, weights)  # what computes: see Backend
        if backend == "numba":
            from minfer.fast import fast_backend

            self.runner = fast_backend(config, weights, quantize)

    @property
    def fast(self):
        """The Numba backend (`minfer.fast.FastModel`, its stacked weights in `.w`), or None on NumPy."""
        return self.runner if self.backend == "numba" else None

    @property
    def weight_dtype(self) -> str:
        """How the matrices are stored for computing: "float32", or "int8" when quantized."""
        return self.quantize or str(self.weights.lm_head.dtype)

    def __repr__(self) -> str:
        c = self.config
        kv = f"n_kv_head={c.n_kv_head}, " if c.n_kv_head != c.n_head else ""
        return (
            f"Model({self.name!r}, {c.family}, n_layer={c.n_layer}, n_head={c.n_head}, {kv}n_embd={c.n_embd}, "
            f"n_ctx={c.n_ctx}, n_vocab={c.n_vocab}, params={self.n_params():,}, "
            f"backend={self.backend!r}, weights={self.weight_dtype!r})"
        )

    def n_params(self) -> int:
        """Number of parameters (the tied LM head counted once)."""
        return sum(a.size for a in self.weights.arrays().values())

    def forward(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Logits of every position, no cache. ids: [n_seq] -> float32 [n_seq, n_vocab]"""
        return self.runner.forward(self._check_ids(ids))  # [n_seq, n_vocab]

    def new_cache(self, max_seq: int | None = None) -> KVCache:
        """An empty KV cache for up to `max_seq` positions (at most n_ctx).

        Without `max_seq`: n_ctx positions if they take at most DEFAULT_CACHE_BYTES, else as
        many as do, with a warning saying what was chosen (a long-context model's full window
        can take gigabytes). A cache that would not fit in memory is an InsufficientMemoryError.
        """
        c = self.config
        if max_seq is None:
            max_seq = default_cache_positions(c)
            if max_seq < c.n_ctx:
                warnings.warn(
                    f"new_cache(): n_ctx={c.n_ctx:,} positions would take "
                    f"{c.n_ctx * kv_bytes_per_position(c) / 2**30:.1f} GiB, so the cache holds "
                    f"{max_seq:,}; pass max_seq to choose",
                    stacklevel=2,
                )
        check_max_seq(max_seq, c.n_ctx)
        return KVCache.empty(c.n_layer, c.n_kv_head, int(max_seq), c.d_head)

    def prefill(self, ids: Sequence[int] | np.ndarray, cache: KVCache, all_logits: bool = False) -> np.ndarray:
        """Process a prompt in one pass, appending its keys and values to `cache`.

        Returns the last position's logits, float32 [n_vocab] (the LM head runs on that row
        only), or with `all_logits=True` every position's, [n_seq, n_vocab].
        """
        ids = self._check_ids(ids)  # [n_seq]
        with in_use(cache):  # the cache is checked and written by this call alone
            self._check_cache(cache, len(ids))
            return self.runner.prefill(ids, cache, all_logits)  # [n_vocab] or [n_seq, n_vocab]

    def decode(self, token_id: int, cache: KVCache) -> np.ndarray:
        """One token at position `cache.length`: appends it to the cache, returns float32 [n_vocab]."""
        if not is_whole(token_id):
            raise InvalidInputError(
                f"decode takes one token id (an int), got {token_id!r} ({type(token_id).__name__}); "
                "use prefill for several tokens"
            )
        if not 0 <= token_id < self.config.n_vocab:  # scalar checks: this runs once per token
            raise InvalidInputError(f"token id {token_id} is outside the vocabulary [0, {self.config.n_vocab})")
        with in_use(cache):  # the cache is checked and written by this call alone
            self._check_cache(cache, n_new=1)
            return self.runner.decode(int(token_id), cache)  # [n_vocab]

    def _check_cache(self, cache: KVCache, n_new: int) -> None:
        """The cache must be this model's shape, with room for n_new more positions within n_ctx."""
        c = self.config
        check_cache(cache, c.n_layer, c.n_kv_head, c.d_head, n_new, c.n_ctx)

    def _check_ids(self, ids) -> np.ndarray:
        """Validate token ids at the boundary: integers, 1-D, non-empty, in the vocabulary, and
        no more than n_ctx of them (the cache's own room is `_check_cache`'s)."""
        arr = token_id_array(ids)  # [n_seq]
        if arr.size == 0:
            raise InvalidInputError("expected a non-empty 1-D sequence of token ids, got an empty one")
        n_vocab, n_ctx = self.config.n_vocab, self.config.n_ctx
        bad = arr[(arr < 0) | (arr >= n_vocab)]
        if bad.size:
            raise InvalidInputError(f"token id {int(bad[0])} is outside the vocabulary [0, {n_vocab})")
        if arr.size > n_ctx:
            raise ContextOverflowError(
                f"{arr.size} positions exceed the context window n_ctx={n_ctx}; shorten the prompt"
            )
        return arr  # [n_seq] int64
