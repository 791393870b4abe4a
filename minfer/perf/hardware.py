"""A small catalog of real accelerators and CPUs, for "what if this ran on X?" projections.

`minfer calibrate` measures this machine's two roofline ceilings. To ask what the same model
would do on an H100, a TPU or a Groq chip, we need the same two ceilings for them, plus what
they draw and what they cost. The numbers, one table per chip with the sources
of every one, are data: `minfer/perf/data/hardware.toml`, read into one `Hardware` each.

Where each kind of number comes from:
- `peak_tflops`: the vendor's datasheet maximum for one chip, per data type. These are the
  rates of the matrix units (tensor cores, MXUs) at the highest clock, with every unit busy
  every cycle; real kernels reach 50-80% of them at best, and far less on small matrices.
  Vendors often quote the *sparse* rate (2:4 structured sparsity: half the weights forced to
  zero, which dense LLM weights are not), which is twice the dense one. Every figure here is
  *dense*; where a datasheet quoted sparse numbers we halved them and say so in `notes`. For
  a CPU the datasheet gives no FLOP rate, so we work it out, and write the arithmetic out:
  cores x FMA units per core x SIMD lanes x 2 (an FMA is a multiply and an add) x clock.
  int8 figures are TOPS (tera integer ops/s), counted the same way.
- `bandwidth_gbs`: the peak bandwidth of the memory the weights live in (HBM on a GPU or TPU,
  on-chip SRAM on a Groq chip, LPDDR5x on a laptop), from the datasheet or from the memory's
  transfer rate x bus width. Real streaming reaches ~80-90% of it on a GPU.
- `memory_gb`: the capacity of that same memory, 1 GB = 1e9 bytes (vendors' "GB"; where a
  vendor states GiB we converted, and say so).
- `power_w`: the board power (TDP) the vendor publishes, an upper bound on what the chip draws.
- `price_per_hour`: an ASSUMPTION, in US dollars, dated mid-2026. For chips one rents, a typical
  on-demand price per chip on the specialised GPU clouds (hyperscalers often charge 1.5-2x
  more; 1- and 3-year commitments 30-50% less). For chips one buys, the purchase price spread
  over 3 years of round-the-clock use, plus electricity at full power (`owned_price_per_hour`).
  Prices move every month and differ by provider and region: `notes` gives each basis.

Projections built on these numbers are BOUNDS, not measurements: the time a phase cannot beat
(FLOPs / peak, bytes / bandwidth) and the tokens/s it cannot exceed. A real deployment adds
kernel inefficiency, communication between chips, batching policy and software overheads.

"This machine" is not in the catalog: `this_machine(ceilings)` builds its entry from what
`minfer calibrate` measured, so it sits next to the datasheet figures on the same terms.

Example:
    >>> h100 = get_hardware("H100-SXM")
    >>> h100.peak_flops("bfloat16") / (h100.bandwidth_gbs * 1e9)  # doctest: +ELLIPSIS
    295.3...
"""

from __future__ import annotations

import math
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minfer.errors import InvalidInputError

KINDS = ("gpu", "tpu", "lpu", "cpu")
DTYPES = ("float32", "bfloat16", "float16", "int8", "fp8")  # int8 peaks are TOPS, not TFLOPS

# --- the assumptions behind price_per_hour and this machine's power ----------------------------

_AMORTISATION_YEARS = 3  # how long bought hardware is assumed to stay in service
_HOURS_PER_YEAR = 24 * 365
_USD_PER_KWH = 0.15  # assumed electricity price (roughly a 2025-26 US average); varies 2x by place
# This machine: 2 vCPUs of an AMD Zen 5 server VM. Its share of the power is the CPU's TDP per
# core: AMD EPYC 9655, 96 Zen 5 cores at 400 W -> 4.2 W per core. DRAM, board, fans and the
# data centre's cooling are not counted. (A Zen 3 EPYC 7763, 64 cores at 280 W, gives 4.4 W.)
_THIS_MACHINE_CORES = 2
_SERVER_CPU_TDP_W = 400.0
_SERVER_CPU_CORES = 96
# A 2-vCPU general-purpose cloud VM on demand: about $0.08-0.12/h in 2026 (AWS lists m7g.large,
# 2 Arm vCPUs, at $0.0816/h in us-east-1, June 2026; x86 AMD types list a little higher).
_THIS_MACHINE_PRICE_PER_HOUR = 0.10
_DEFAULT_MEMORY_GB = 24.0  # when /proc/meminfo cannot be read (not Linux, or no permission)


def owned_price_per_hour(purchase_usd: float, power_w: float) -> float:
    """Hourly cost of hardware one buys: price spread over 3 years, plus electricity at full power.

    Example:
        >>> round(owned_price_per_hour(26_280.0, 1000.0), 3)  # $1/h of purchase + 1 kW
        1.15
    """
    purchase = purchase_usd / (_AMORTISATION_YEARS * _HOURS_PER_YEAR)
    electricity = power_w / 1000 * _USD_PER_KWH
    return purchase + electricity


@dataclass(frozen=True)
class Hardware:
    """One chip: its peak rates, its memory, its power and an assumed hourly price.

    Example:
        >>> hw = get_hardware("mi300x")
        >>> hw.peak_flops("bfloat16")   # FLOP/s: 1,307.4 TFLOPS
        1307400000000000.0
    """

    name: str  # short key, lower case, as `get_hardware` takes it: "h100-sxm"
    label: str  # for display: "NVIDIA H100 SXM5 80GB"
    kind: str  # one of KINDS: "gpu", "tpu", "lpu" (Groq) or "cpu"
    # dtype -> dense peak, TFLOPS (TOPS for int8), one chip, no sparsity. Only the dtypes the
    # vendor publishes: a missing dtype means "not published", not "zero".
    peak_tflops: dict[str, float]
    bandwidth_gbs: float  # GB/s (1e9 bytes/s) of the memory the weights live in
    memory_gb: float  # GB (1e9 bytes) of that memory
    power_w: float | None  # board power / TDP, W; None only if unpublished (notes say so)
    price_per_hour: float  # USD per chip-hour: an assumption, basis in notes
    sources: tuple[str, ...]  # datasheets and pages the numbers come from
    notes: str = field(default="")  # caveats, unconfirmed figures, the price basis
    peak_basis: str = field(default="")  # how the peaks were read off the datasheet (e.g. sparse halved)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s (int8: op/s) for `dtype`; raises InvalidInputError if unpublished.

        Example:
            >>> get_hardware("tpu-v4").peak_flops("bfloat16")   # 275 TFLOPS
            275000000000000.0
        """
        if dtype not in self.peak_tflops:
            have = ", ".join(self.peak_tflops)
            raise InvalidInputError(
                f"{self.label} ({self.name!r}) has no published peak for dtype {dtype!r}; "
                f"it has: {have}. Pick one of those."
            )
        return self.peak_tflops[dtype] * 1e12

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "peak_tflops": dict(self.peak_tflops),
            "bandwidth_gbs": self.bandwidth_gbs,
            "memory_gb": self.memory_gb,
            "power_w": self.power_w,
            "price_per_hour": self.price_per_hour,
            "sources": list(self.sources),
            "notes": self.notes,
            "peak_basis": self.peak_basis,
        }


# --- the catalog: data, in minfer/perf/data/hardware.toml ----------------------------------------------

CATALOG_FILE = Path(__file__).resolve().parent / "data" / "hardware.toml"
_REQUIRED = ("label", "kind", "peak_tflops", "bandwidth_gbs", "memory_gb", "sources", "notes")


def _chip(name: str, f: dict[str, Any]) -> Hardware:
    """One table of the catalogue file as a Hardware, or an InvalidInputError naming the field."""
    missing = [k for k in _REQUIRED if k not in f]
    if missing or f["kind"] not in KINDS or not set(f["peak_tflops"]) <= set(DTYPES):
        raise InvalidInputError(
            f"hardware catalogue entry {name!r}: missing {missing}, or kind {f.get('kind')!r} not in {KINDS}, "
            f"or a peak for a dtype not in {DTYPES}"
        )
    power = f.get("power_w")
    if ("price_per_hour" in f) == ("purchase_usd" in f) or ("purchase_usd" in f and power is None):
        raise InvalidInputError(f"hardware catalogue entry {name!r}: give price_per_hour, or purchase_usd and power_w")
    price = f["price_per_hour"] if "price_per_hour" in f else owned_price_per_hour(f["purchase_usd"], power)
    return Hardware(
        name=name,
        label=f["label"],
        kind=f["kind"],
        peak_tflops={d: float(v) for d, v in f["peak_tflops"].items()},
        bandwidth_gbs=float(f["bandwidth_gbs"]),
        memory_gb=float(f["memory_gb"]),
        power_w=None if power is None else float(power),
        price_per_hour=float(price),
        sources=tuple(f["sources"]),
        notes=f["notes"],
        peak_basis=f.get("peak_basis", ""),
    )


def load_catalog(path: Path = CATALOG_FILE) -> dict[str, Hardware]:
    """The chips of a catalogue file (TOML, one table per chip, keyed by its lower-case name)."""
    with open(path, "rb") as f:
        tables = tomllib.load(f)
    return {name: _chip(name, fields) for name, fields in tables.items()}


CATALOG: dict[str, Hardware] = load_catalog()
THIS_MACHINE = "this-machine"  # the name `get_hardware` builds from measured ceilings


# --- this machine --------------------------------------------------------------------------------


def _positive(ceilings, attr: str) -> float:
    """`ceilings.<attr>` as a finite positive float, or an InvalidInputError saying what to do."""
    value = getattr(ceilings, attr, None)
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(
            f"ceilings.{attr}={value!r} is not allowed: it must be a positive, finite number "
            f"measured by `minfer calibrate`; run `minfer calibrate` to measure it again"
        )
    return float(value)


def _memory_gb(meminfo: Path = Path("/proc/meminfo")) -> float:
    """Total RAM in GB (1e9 bytes) from /proc/meminfo's MemTotal line (in KiB), else 24 GB."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 1e9  # "MemTotal:  24684092 kB"
    except (OSError, ValueError, IndexError):
        pass
    return _DEFAULT_MEMORY_GB


def this_machine(ceilings, meminfo: Path = Path("/proc/meminfo")) -> Hardware:
    """A `Hardware` entry for this machine, from the ceilings `minfer calibrate` measured.

    `ceilings` needs `peak_gflops` (float32 matmul GFLOP/s) and `bandwidth_gbs` (GB/s), as
    `minfer.perf.calibrate.Ceilings` has; `cpu` and `measured_at` are used in the notes if present.
    Power and price are assumptions: 2 cores of an AMD Zen 5 server VM (their share of the CPU's
    TDP) and a 2-vCPU cloud VM's on-demand price.

    Example:
        >>> from types import SimpleNamespace
        >>> hw = this_machine(SimpleNamespace(peak_gflops=150.0, bandwidth_gbs=60.0))
        >>> hw.peak_tflops, hw.bandwidth_gbs
        ({'float32': 0.15}, 60.0)
    """
    peak_gflops = _positive(ceilings, "peak_gflops")
    bandwidth_gbs = _positive(ceilings, "bandwidth_gbs")
    power_w = _THIS_MACHINE_CORES * _SERVER_CPU_TDP_W / _SERVER_CPU_CORES
    measured = (
        f"Measured by `minfer calibrate` on {getattr(ceilings, 'cpu', 'this machine')}"
        f" at {getattr(ceilings, 'measured_at', 'an unrecorded time')}: float32 matmul "
        f"through NumPy's BLAS and a streaming read, the rates this program reaches."
    )
    return Hardware(
        name=THIS_MACHINE,
        label="this machine (measured)",
        kind="cpu",
        peak_tflops={"float32": peak_gflops / 1000},
        bandwidth_gbs=bandwidth_gbs,
        memory_gb=_memory_gb(meminfo),
        power_w=power_w,
        price_per_hour=_THIS_MACHINE_PRICE_PER_HOUR,
        sources=(
            "measured: `minfer calibrate` (minfer.perf.calibrate.Ceilings)",
            "memory: /proc/meminfo MemTotal (24 GB if unreadable)",
            "power assumption: AMD EPYC 9655, 96 Zen 5 cores, 400 W TDP",
        ),
        notes=(
            f"{measured} Power: assumed {_THIS_MACHINE_CORES} cores x "
            f"{_SERVER_CPU_TDP_W:.0f} W / {_SERVER_CPU_CORES} cores = {power_w:.1f} W, this "
            f"VM's share of a Zen 5 server CPU's TDP (DRAM, board and cooling not counted). "
            f"Price: assumed ${_THIS_MACHINE_PRICE_PER_HOUR:.2f}/h, a 2-vCPU cloud VM on "
            f"demand (about $0.08-0.12/h in 2026)."
        ),
    )


def get_hardware(name: str, ceilings=None) -> Hardware:
    """The catalog entry called `name` (any case), or this machine's, built from `ceilings`.

    Example:
        >>> get_hardware("H200-SXM").memory_gb
        141.0
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"hardware name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key == THIS_MACHINE:
        if ceilings is None:
            raise InvalidInputError(
                f"{THIS_MACHINE!r} is built from this machine's measured ceilings, and none "
                f"were given: run `minfer calibrate` and pass its result as `ceilings`"
            )
        return this_machine(ceilings)
    if key not in CATALOG:
        known = ", ".join([*CATALOG, THIS_MACHINE])
        raise InvalidInputError(f"unknown hardware {name!r}: the known names are {known}")
    return CATALOG[key]
