"""The fast path: the Numba backend (`backend.py` for GPT-2, `llama.py` for the Llama family) and
the kernels they compile (`kernels/`), each kernel beside the NumPy function it must equal
(lesson 10).

`Model(..., backend="numba")` computes with `FastModel`, or `minfer.fast.llama.LlamaFastModel`
for a Llama-family config (`fast_backend` picks); `minfer.fast.kernels` holds the kernels and
their twins (`TWINS`). The backend's public names are importable from here.
"""

from minfer.fast.backend import (
    FEW_ROWS,
    QUANTIZE,
    CompiledBackend,
    FastModel,
    RunState,
    StackedWeights,
    blas_on_one_thread,
    compiled_calls,
    compiled_code_dir,
    decode_step,
    drop_stale_compiled_code,
    is_compiled,
    linear_any,
    new_run_state,
    stack_weights,
    start_threads,
)

NumbaBackend = FastModel  # the name the Backend protocol (minfer.model) would suggest


def fast_backend(config, weights, quantize: str | None = None):
    """The Numba backend for a model's family: FastModel for GPT-2, LlamaFastModel for the Llama family."""
    if config.family == "llama":
        from minfer.fast.llama import LlamaFastModel

        return LlamaFastModel(config, weights, quantize)
    return FastModel(config, weights, quantize)


__all__ = [
    "FEW_ROWS",
    "QUANTIZE",
    "CompiledBackend",
    "FastModel",
    "NumbaBackend",
    "RunState",
    "StackedWeights",
    "blas_on_one_thread",
    "compiled_calls",
    "compiled_code_dir",
    "decode_step",
    "drop_stale_compiled_code",
    "fast_backend",
    "is_compiled",
    "linear_any",
    "new_run_state",
    "stack_weights",
    "start_threads",
]
