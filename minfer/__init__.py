"""minfer: transformer inference from scratch, in readable NumPy, with the numbers shown.

The stages, in data-flow order, one module each:
tokenizer -> embed -> attention -> mlp -> block -> model (prefill / decode) -> sampling -> generate.
Beside them, the instrumentation: counts -> profiler -> calibrate -> plots -> whatif.
"""

from minfer.batch import generate_batch
from minfer.config import Config
from minfer.errors import (
    ContextOverflowError,
    InsufficientMemoryError,
    InvalidInputError,
    MinferError,
    ModelLoadError,
    NonFiniteError,
    TokenizerError,
)
from minfer.evaluate import Perplexity, perplexity
from minfer.generation import Generation, Stream, generate, stream
from minfer.kvcache import KVCache
from minfer.loading import load_model
from minfer.model import Model
from minfer.profiler import Profiler
from minfer.sampling import SamplingParams
from minfer.tokenizer import IncrementalDecoder, Tokenizer

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ContextOverflowError",
    "Generation",
    "IncrementalDecoder",
    "InsufficientMemoryError",
    "InvalidInputError",
    "KVCache",
    "MinferError",
    "Model",
    "ModelLoadError",
    "NonFiniteError",
    "Perplexity",
    "Profiler",
    "SamplingParams",
    "Tokenizer",
    "Stream",
    "TokenizerError",
    "generate",
    "generate_batch",
    "load_model",
    "perplexity",
    "stream",
]
