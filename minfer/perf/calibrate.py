"""This machine's two roofline ceilings: peak matmul GFLOP/s and memory read bandwidth GB/s.

A roofline says how fast a piece of work can possibly run on a machine. Any phase of inference
does some FLOPs and moves some bytes; it can go no faster than the slower of

    FLOPs / peak FLOP/s          (the compute ceiling: the arithmetic units are all busy)
    bytes / memory bandwidth     (the memory ceiling: the wires to DRAM are all busy)

Divide FLOPs by bytes to get a phase's arithmetic intensity (FLOP per byte). Below the ridge
point, peak / bandwidth, a phase is memory-bound (decoding one token reads every weight for a
couple of FLOPs each); above it, compute-bound (a long prefill reuses each weight across many
tokens). A profile then shows each phase as a share of the ceiling that binds it.

Why measure instead of reading a spec sheet? The numbers that matter are the ones this program
can reach here, and they are far from the datasheet's:
- this VM is shared: its read bandwidth swings between ~42 and ~80 GB/s over minutes, as
  neighbours come and go, so we keep the best of several runs, and note when we measured;
- peak sgemm is what NumPy's BLAS (OpenBLAS here) reaches, which depends on how it was built and
  on the OPENBLAS_* variables (which kernel it picks, its cache blocking, its thread count).
  We leave them as the machine sets them and record them beside the result.

Measuring takes a few seconds, so the result is cached in `ceilings_path()` (rerun
`minfer calibrate` to refresh it).

Example:
    >>> c = calibrate(quick=True)            # doctest: +SKIP
    >>> c.peak_gflops, c.bandwidth_gbs, c.ridge_point   # doctest: +SKIP
    (146.2, 61.3, 2.38...)
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from minfer.checkpoints.store import cache_dir
from minfer.errors import InvalidInputError

# Variables that change what the ceilings measure: OpenBLAS's kernel choice, its cache blocking
# and its threads, and the threads of OpenMP and Numba. Recorded, never set.
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
# (matmul_n, stream_bytes, matmul repeats, stream repeats) of a full and of a quick calibration.
# Full: 2 * 3072**3 = 58 GFLOP per matmul (~0.4 s here, long enough to time well) and 1 GiB,
# 32x the 32 MiB L3 cache. Quick: 8x fewer FLOPs, still past the size where BLAS peaks, and
# 256 MiB, still 8x the L3 cache.
FULL = (3072, 1 << 30, 5, 7)
QUICK = (1536, 256 << 20, 3, 3)
SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")  # Linux: one indexN folder per cache of cpu0
SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}  # sysfs writes sizes as "32768K"


@dataclass(frozen=True)
class Ceilings:
    """The two roofline ceilings measured on this machine, and how they were measured.

    Example:
        >>> c = Ceilings(peak_gflops=150.0, bandwidth_gbs=50.0, matmul_n=3072,
        ...              stream_bytes=1 << 30, threads=2, cpu="AMD EPYC",
        ...              measured_at="2025-01-01T00:00:00+00:00", env={})
        >>> c.ridge_point  # FLOP per byte where the roofline bends
        3.0
    """

    peak_gflops: float  # best float32 [n, n] @ [n, n] GFLOP/s through NumPy's BLAS
    bandwidth_gbs: float  # best read bandwidth, GB/s (1e9 bytes/s) of a Numba streaming sum
    matmul_n: int  # side of the square matrices timed for peak_gflops
    stream_bytes: int  # size of the array streamed for bandwidth_gbs
    threads: int  # numba.get_num_threads() when measured: the stream kernel's threads
    cpu: str  # model name, so a cache copied to another machine is recognisably stale
    measured_at: str  # ISO 8601 UTC: the shared machine's bandwidth drifts over time
    env: dict  # ENV_VARS -> value as set, or None if unset

    @property
    def ridge_point(self) -> float:
        """Arithmetic intensity (FLOP/byte) where a phase turns from memory- to compute-bound."""
        return (self.peak_gflops * 1e9) / (self.bandwidth_gbs * 1e9)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ceilings:
        """The inverse of `to_dict`; raises InvalidInputError naming a missing or bad field."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"ceilings must be a JSON object, got {type(d).__name__}")
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise InvalidInputError(f"ceilings are missing the key(s) {missing}")
        try:
            return cls(
                peak_gflops=float(d["peak_gflops"]),
                bandwidth_gbs=float(d["bandwidth_gbs"]),
                matmul_n=int(d["matmul_n"]),
                stream_bytes=int(d["stream_bytes"]),
                threads=int(d["threads"]),
                cpu=str(d["cpu"]),
                measured_at=str(d["measured_at"]),
                env=dict(d["env"]),
            )
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"ceilings have a field of the wrong type: {e}") from e


# --- the two measurements ---------------------------------------------------------------------


def best_seconds(run: Callable[[], object], repeats: int = 5, warmup: bool = True) -> float:
    """The fastest of `repeats` timed calls of `run`, after one untimed warm-up call.

    The best, not the mean: a ceiling is what the machine can do, and on a shared machine every
    slower run is a neighbour's interference, not a property of the hardware. The lessons time
    their steps with it too.

        >>> best_seconds(lambda: a @ b, repeats=5)   # doctest: +SKIP
        0.0123
    """
    _check_at_least(1, repeats=repeats)
    if warmup:
        run()  # Numba compiles, BLAS starts its threads, caches and TLB fill
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def median_seconds(runs: Sequence[Callable[[], object]], repeats: int = 7, warmup: bool = True) -> list[float]:
    """The median time of each of `runs`, timed taking turns (a, b, a, b, ...), after one
    untimed warm-up call of each (unless warmup=False, as for `best_seconds`).

    Taking turns is how to compare two ways of doing one job on a shared machine: a neighbour's
    burst of work lands on both, and the median ignores the few runs it spoils.

        >>> one_pass, token_by_token = median_seconds([lambda: prefill(ids), lambda: loop(ids)])  # doctest: +SKIP
    """
    if not isinstance(runs, Sequence) or not runs:
        raise InvalidInputError(
            f"runs must be a non-empty list of functions to time, got {runs!r}; "
            "e.g. median_seconds([lambda: f(x), lambda: g(x)])"
        )
    _check_at_least(1, repeats=repeats)
    for run in runs if warmup else []:
        run()  # Numba compiles, BLAS starts its threads, caches fill
    times = [[] for _ in runs]  # [len(runs)][repeats]
    for _ in range(repeats):
        for run, mine in zip(runs, times):
            start = time.perf_counter()
            run()
            mine.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def cache_bytes(level: int = 3, *, root: str | os.PathLike = SYSFS_CACHE) -> int | None:
    """The size in bytes of this CPU's level-`level` data cache, from Linux's sysfs; None if
    there is none to read (another OS, or no such level). Entries that cannot be read are
    skipped. root: the sysfs cache folder (a test passes a fake one).

    Whether a model's weights fit in the last-level cache decides whether its decode is
    memory-bound at all: the classroom model's 17 MB fit in a 32 MiB L3, GPT-2's 500 MB do not.

        >>> cache_bytes(3)   # doctest: +SKIP
        33554432
    """
    if not isinstance(level, Integral) or isinstance(level, bool) or level < 1:
        raise InvalidInputError(f"level={level!r} must be a cache level, a whole number >= 1 (1, 2 or 3)")
    base = Path(root)
    for index in sorted(base.glob("index*")) if base.is_dir() else []:
        size = _cache_entry_bytes(index, int(level))
        if size is not None:
            return size
    return None


def _cache_entry_bytes(index: Path, level: int) -> int | None:
    """The size of one sysfs cache entry if it is a data (or unified) cache of `level`; None if
    it is another cache or cannot be read."""
    try:
        if int((index / "level").read_text()) != level or (index / "type").read_text().strip() == "Instruction":
            return None
        text = (index / "size").read_text().strip()  # "32768K"
        return int(text[:-1]) * SIZE_UNITS[text[-1]] if text[-1:] in SIZE_UNITS else int(text)
    except (OSError, ValueError):
        return None


def measure_matmul_gflops(n: int = FULL[0], repeats: int = FULL[2]) -> float:
    """Peak float32 GFLOP/s: the best of `repeats` [n, n] @ [n, n] products (2 n^3 FLOPs).

    Example:
        >>> measure_matmul_gflops(n=256, repeats=2) > 0
        True
    """
    _check_at_least(1, n=n, repeats=repeats)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)  # [n, n]
    b = rng.standard_normal((n, n), dtype=np.float32)  # [n, n]
    c = np.empty((n, n), dtype=np.float32)  # [n, n]; reused so the timing holds no page faults
    seconds = best_seconds(lambda: np.matmul(a, b, out=c), repeats)  # a @ b, written into c
    return 2 * n**3 / seconds / 1e9


@njit(parallel=True, cache=True, fastmath=True)
def stream_sum(x):  # x: [n] float32 -> sum, reads n*4 bytes once
    """The sum of x, read once by all Numba threads: the kernel behind measure_bandwidth_gbs.

    The sum is there so the reads cannot be optimised away. It accumulates in float32: 8 adds
    per AVX2 instruction instead of 4 (about 15% more GB/s measured here). fastmath lets LLVM
    reorder the adds into several vector accumulators, which also keeps the float32 error small.
    """
    total = np.float32(0.0)
    for i in prange(x.shape[0]):  # each thread sums its own chunk; Numba adds the partials
        total += x[i]
    return total


def stream_sum_numpy(x: np.ndarray) -> float:  # x: [n] float32 -> sum
    """stream_sum's NumPy twin, accumulated in float64: the reference the kernel must match."""
    return float(np.sum(x, dtype=np.float64))


def measure_bandwidth_gbs(n_bytes: int = FULL[1], repeats: int = FULL[3]) -> float:
    """Memory read bandwidth, GB/s: the best of `repeats` stream_sum passes over n_bytes.

    Example:
        >>> measure_bandwidth_gbs(n_bytes=1 << 20, repeats=2) > 0
        True
    """
    _check_at_least(4, n_bytes=n_bytes)  # one float32
    _check_at_least(1, repeats=repeats)
    # Far larger than the last-level cache, so every byte comes from DRAM: a small array would
    # be served from cache after the first pass and measure the cache instead. np.ones (not
    # np.empty) writes every page, so the OS maps them now rather than inside the timed reads.
    x = np.ones(n_bytes // 4, dtype=np.float32)  # [n_bytes / 4]
    seconds = best_seconds(lambda: stream_sum(x), repeats)
    return x.nbytes / seconds / 1e9


def _check_at_least(minimum: int, **values: int) -> None:
    """Refuse a size or repeat count below minimum: it would time nothing."""
    for name, value in values.items():
        if value < minimum:
            raise InvalidInputError(f"{name} must be at least {minimum}, got {value}")


# --- both ceilings, with their provenance -----------------------------------------------------


def calibrate(quick: bool = False) -> Ceilings:
    """Measure both ceilings: ~5 s here; quick=True (smaller sizes, fewer repeats) ~1-2 s.

    Example:
        >>> calibrate(quick=True).ridge_point > 0  # doctest: +SKIP
        True
    """
    matmul_n, stream_bytes, matmul_repeats, stream_repeats = QUICK if quick else FULL
    return Ceilings(
        peak_gflops=measure_matmul_gflops(matmul_n, matmul_repeats),
        bandwidth_gbs=measure_bandwidth_gbs(stream_bytes, stream_repeats),
        matmul_n=matmul_n,
        stream_bytes=stream_bytes,
        threads=numba.get_num_threads(),
        cpu=cpu_name(),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        env={name: os.environ.get(name) for name in ENV_VARS},
    )


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- the cache --------------------------------------------------------------------------------


def ceilings_path() -> Path:
    """Where the measured ceilings are cached: cache_dir() / "ceilings.json"."""
    return cache_dir() / "ceilings.json"


def save_ceilings(c: Ceilings, path: str | os.PathLike | None = None) -> Path:
    """Write c as JSON to path (default ceilings_path()), creating its directory; return path."""
    path = Path(path) if path is not None else ceilings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(c.to_dict(), indent=2) + "\n")
    return path


def load_ceilings(path: str | os.PathLike | None = None) -> Ceilings | None:
    """The ceilings cached at path (default ceilings_path()), or None if none were saved."""
    path = Path(path) if path is not None else ceilings_path()
    if not path.exists():
        return None
    try:
        return Ceilings.from_dict(json.loads(path.read_text()))
    except (ValueError, InvalidInputError) as e:  # JSONDecodeError is a ValueError
        raise InvalidInputError(
            f"{path} is not valid saved ceilings ({e}); rerun `minfer calibrate` to measure them again"
        ) from e


def ceilings(measure_if_missing: bool = True, quick: bool = True) -> Ceilings | None:
    """The cached ceilings; if there are none, measure (quickly by default) and cache them.

    Returns None only when nothing is cached and measure_if_missing is False.
    """
    cached = load_ceilings()
    if cached is not None or not measure_if_missing:
        return cached
    measured = calibrate(quick=quick)
    save_ceilings(measured)
    return measured
