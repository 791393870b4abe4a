"""minfer: transformer inference from scratch, in readable NumPy, with the numbers shown.

The stages, in data-flow order, one module each, at the top of the package:
tokenizer -> embed -> attention -> mlp -> block -> model (prefill / decode) -> sampling -> generate.
Beside them, in subpackages: `checkpoints` (reading and writing them), `fast` (the Numba backend
and its kernels), `perf` (counts -> profiler -> calibrate -> whatif), `plots`, `exercises`.

Modules that moved into the subpackages keep their old paths (`minfer.counts`,
`minfer.calibrate`, `minfer.kernels`, ...): `MOVED` maps each to where it lives now, and an
import finder hands out the same module under both names. New code uses the new paths.
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {  # old module path -> the module it names now
    "minfer.bench": "minfer.perf.bench",
    "minfer.calibrate": "minfer.perf.calibrate",
    "minfer.checkpoint": "minfer.checkpoints.store",
    "minfer.counts": "minfer.perf.counts",
    "minfer.hardware": "minfer.perf.hardware",
    "minfer.kernels": "minfer.fast.kernels",
    "minfer.loading": "minfer.checkpoints.loading",
    "minfer.profiler": "minfer.perf.profiler",
    "minfer.report": "minfer.perf.report",
    "minfer.safetensors_io": "minfer.checkpoints.safetensors_io",
    "minfer.whatif": "minfer.perf.whatif",
}


def moved_to(name: str) -> str | None:
    """Where an old module path (or a module under an old package path) lives now, or None."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module at its new one: one module object under two names
    (not a copy, so state and monkeypatching are shared)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if moved_to(name) else None

    def create_module(self, spec):
        module = importlib.import_module(moved_to(spec.name))  # the module keeps its own __name__
        self.specs[id(module)] = module.__spec__  # which the import system is about to overwrite
        return module

    def exec_module(self, module):  # already executed under its new name: put its own spec back
        module.__spec__ = self.specs.pop(id(module))

    def __init__(self):
        self.specs = {}  # id(module) -> its own __spec__, while an import under an old name runs


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())  # before the path finder, which would load a copy


SUBPACKAGES = ("checkpoints", "exercises", "fast", "perf", "plots")  # imported when first used


def __getattr__(name: str):
    """The subpackages (`minfer.plots`, ...) and the old module names (`minfer.counts`, ...) as
    attributes, imported on first use: `import minfer` stays quick (no matplotlib, no Numba)."""
    if f"minfer.{name}" in MOVED or name in SUBPACKAGES:
        return importlib.import_module(f"minfer.{name}")
    raise AttributeError(f"module 'minfer' has no attribute {name!r}")


from minfer.batch import generate_batch
from minfer.checkpoints.loading import load_model
from minfer.checkpoints.tokenizer_files import load_tokenizer
from minfer.config import Config
from minfer.errors import (
    ChatTemplateError,
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
from minfer.model import Model
from minfer.perf.profiler import Profiler
from minfer.sampling import SamplingParams
from minfer.tokenizer import IncrementalDecoder, Tokenizer

__version__ = "0.1.0"

__all__ = [
    "ChatTemplateError",
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
    "load_tokenizer",
    "perplexity",
    "stream",
]
