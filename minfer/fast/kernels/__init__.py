"""The Numba backend's kernels: plain-loop @njit functions, each the twin of a NumPy function.

Every kernel writes into an `out` array the caller allocated once (a decode step allocates
nothing) and can be called from other @njit code as well as from Python. `TWINS` maps each
kernel's name to (kernel, reference): called with the same arguments, `kernel(*args, out)`
(the decode attentions also take their `scores` scratch after out, prefill_attention its `block`)
must leave in out what `reference(*args)` returns, within float32 rounding
(tests/test_kernels.py). The module docstrings say why each loop is written the way it is.

Which to call: NumPy/BLAS wins at matrix-matrix products (prefill, many rows); these kernels win
where the weights are streamed once for one or a few rows (decode). benchmarks/kernels.py
measures both on this machine.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numba

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # minfer/


def use_writable_numba_cache(package_dir: Path = PACKAGE_DIR) -> str | None:
    """Numba caches compiled kernels in `__pycache__` beside their source. A read-only install
    (a system site-packages, a shared notebook image) cannot write there, and Numba's fallback
    ignores $MINFER_HOME; so point it at $MINFER_HOME/numba (~/.cache/minfer/numba), unless
    NUMBA_CACHE_DIR already chose. Runs before any kernel is defined. Returns the directory set."""
    if os.environ.get("NUMBA_CACHE_DIR") or os.access(package_dir, os.W_OK):
        return None
    from minfer.checkpoints.store import cache_dir

    numba.config.CACHE_DIR = str(cache_dir() / "numba")
    return numba.config.CACHE_DIR


use_writable_numba_cache()

from minfer.attention import causal_attention
from minfer.fast.kernels.attention import (
    batch_decode_attention,
    batch_decode_attention_numpy,
    decode_attention,
    decode_attention_numpy,
    grouped_decode_attention,
    grouped_decode_attention_numpy,
    paged_decode_attention,
    paged_decode_attention_numpy,
    prefill_attention,
)
from minfer.fast.kernels.elementwise import add, add_numpy, gelu, layer_norm, rms_norm, swiglu, swiglu_numpy
from minfer.fast.kernels.embed import embed
from minfer.fast.kernels.matvec import linear, linear_int8, lm_head
from minfer.fast.kernels.quant import dequantize_int8, embed_numpy, linear_int8_numpy, lm_head_numpy, quantize_int8
from minfer.fast.kernels.rope import rope, rope_numpy, rope_table, rope_table_numpy
from minfer.layers import gelu as gelu_numpy
from minfer.layers import layer_norm as layer_norm_numpy
from minfer.layers import linear as linear_numpy
from minfer.layers import rms_norm as rms_norm_numpy


class Twin(NamedTuple):
    kernel: Callable  # the Numba kernel, writing into out
    reference: Callable  # the NumPy function it must equal, returning a new array


TWINS: dict[str, Twin] = {
    "embed": Twin(embed, embed_numpy),
    "layer_norm": Twin(layer_norm, layer_norm_numpy),
    "linear": Twin(linear, linear_numpy),
    "linear_int8": Twin(linear_int8, linear_int8_numpy),
    "decode_attention": Twin(decode_attention, decode_attention_numpy),
    "batch_decode_attention": Twin(batch_decode_attention, batch_decode_attention_numpy),
    "prefill_attention": Twin(prefill_attention, causal_attention),
    "add": Twin(add, add_numpy),
    "gelu": Twin(gelu, gelu_numpy),
    "lm_head": Twin(lm_head, lm_head_numpy),
    # the Llama family's (minfer.fast.llama)
    "rms_norm": Twin(rms_norm, rms_norm_numpy),
    "swiglu": Twin(swiglu, swiglu_numpy),
    "rope_table": Twin(rope_table, rope_table_numpy),
    "rope": Twin(rope, rope_numpy),
    "grouped_decode_attention": Twin(grouped_decode_attention, grouped_decode_attention_numpy),
    # both families' decode steps (minfer.serving.paged's block tables)
    "paged_decode_attention": Twin(paged_decode_attention, paged_decode_attention_numpy),
}

__all__ = [
    "TWINS",
    "Twin",
    "add",
    "batch_decode_attention",
    "decode_attention",
    "dequantize_int8",
    "embed",
    "gelu",
    "grouped_decode_attention",
    "layer_norm",
    "linear",
    "linear_int8",
    "lm_head",
    "paged_decode_attention",
    "prefill_attention",
    "quantize_int8",
    "rms_norm",
    "rope",
    "rope_table",
    "swiglu",
]
