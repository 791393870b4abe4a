"""A small catalog of real accelerators and CPUs, for "what if this ran on X?" projections.

`minfer calibrate` measures this machine's two roofline ceilings. To ask what the same model
would do on an H100, a TPU or a Groq chip, we need the same two ceilings for them, plus what
they draw and what they cost. This module holds those numbers, one `Hardware` per chip, and
says where every one comes from.

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
  over 3 years of round-the-clock use, plus electricity at full power (`_owned_price_per_hour`).
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


def _owned_price_per_hour(purchase_usd: float, power_w: float) -> float:
    """Hourly cost of hardware one buys: price spread over 3 years, plus electricity at full power.

    Example:
        >>> round(_owned_price_per_hour(26_280.0, 1000.0), 3)  # $1/h of purchase + 1 kW
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
        }


# --- the catalog --------------------------------------------------------------------------------

H100_SXM = Hardware(
    name="h100-sxm",
    label="NVIDIA H100 SXM5 80GB",
    kind="gpu",
    # datasheet: BF16/FP16 1,979, FP8 3,958, INT8 3,958 "with sparsity" -> halved; FP32 67 (CUDA
    # cores, never sparse)
    peak_tflops={"float32": 67.0, "bfloat16": 989.5, "float16": 989.5, "fp8": 1979.0, "int8": 1979.0},
    bandwidth_gbs=3350.0,
    memory_gb=80.0,
    power_w=700.0,
    price_per_hour=2.99,
    sources=(
        "NVIDIA H100 Tensor Core GPU datasheet, SXM column (https://www.nvidia.com/en-us/data-center/h100/)",
        "https://glennklockwood.com/garden/processors/h100 (dense vs sparse table: BF16 989.4 matrix, 1978.9 sparse)",
    ),
    notes=(
        "Tensor-core peaks are the datasheet's sparse figures halved. 700 W is the "
        "configurable maximum. Price: $2.99/GPU-h, Lambda on demand as quoted in May 2026 "
        "(cliffcenter.com 'AMD inference economics'); the cross-provider median was ~$2.95 "
        "(aimultiple.com GPU index, May 2026); hyperscalers list $3.50-7."
    ),
)

H200_SXM = Hardware(
    name="h200-sxm",
    label="NVIDIA H200 SXM 141GB",
    kind="gpu",
    # same GH100 die and clocks as the H100: same compute, more and faster memory (HBM3e)
    peak_tflops={"float32": 67.0, "bfloat16": 989.5, "float16": 989.5, "fp8": 1979.0, "int8": 1979.0},
    bandwidth_gbs=4800.0,
    memory_gb=141.0,
    power_w=700.0,
    price_per_hour=4.00,
    sources=(
        "NVIDIA H200 Tensor Core GPU datasheet, SXM column (https://www.nvidia.com/en-us/data-center/h200/)",
        "https://aiwiki.ai/wiki/nvidia_h200 (141 GB HBM3e at 4.8 TB/s, same GH100 die)",
    ),
    notes=(
        "Compute as the H100 SXM (datasheet BF16 1,979 / FP8 3,958 with sparsity, halved); "
        "some spec pages list 1.97 PFLOPS BF16 as dense, which is the sparse figure. "
        "700 W is the configurable maximum. Price: $4.00/GPU-h, the middle of the $3.50-4.50 "
        "specialised-cloud on-demand range (mercatus-ai.com, May 2026); Spheron listed "
        "$4.54 (March 2026), hyperscalers $4.50-7."
    ),
)

B200 = Hardware(
    name="b200",
    label="NVIDIA B200 (HGX B200, 1000 W)",
    kind="gpu",
    # HGX B200 table: FP16/BF16 4.5 PF, FP8 9 PF, INT8 9 POPS, all "with sparsity" -> halved
    peak_tflops={"float32": 75.0, "bfloat16": 2250.0, "float16": 2250.0, "fp8": 4500.0, "int8": 4500.0},
    bandwidth_gbs=7700.0,
    memory_gb=180.0,
    power_w=1000.0,
    price_per_hour=6.00,
    sources=(
        "NVIDIA HGX B200 / DGX B200 specifications (https://www.nvidia.com/en-us/"
        "data-center/hgx/), per-GPU column: 180 GB HBM3e, 7.7 TB/s, up to 1,000 W",
        "https://glennklockwood.com/garden/processors/B200 (HGX B200 at 1,000 W: BF16 2,250 dense / 4,500 sparse)",
    ),
    notes=(
        "The GB200 version runs at up to 1,200 W and is faster (BF16 2.5 PF dense). "
        "Bandwidth: NVIDIA's HGX table gives 7.7 TB/s per GPU (62 TB/s for 8); it is "
        "often rounded to 8 TB/s, and early material said 192 GB. FP32 75 TFLOPS is the HGX "
        "table's; third-party tables give 75-80. Price: $6.00/GPU-h, the top of the "
        "$4.50-6.00 specialised-cloud on-demand range (lyceum.technology, March 2026); "
        "Spheron listed $6.03 (March 2026)."
    ),
)

MI300X = Hardware(
    name="mi300x",
    label="AMD Instinct MI300X 192GB",
    kind="gpu",
    # AMD quotes dense peaks and, separately, "with structured sparsity" at twice them
    peak_tflops={"float32": 163.4, "bfloat16": 1307.4, "float16": 1307.4, "fp8": 2614.9, "int8": 2614.9},
    bandwidth_gbs=5300.0,
    memory_gb=192.0,
    power_w=750.0,
    price_per_hour=2.00,
    sources=(
        "AMD Instinct MI300X accelerator data sheet "
        "(https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html)",
        "https://rocm.docs.amd.com (MI300 microarchitecture: 304 CUs, 8 HBM3 stacks)",
    ),
    notes=(
        "Dense peaks as AMD publishes them (sparse: FP16 2,614.9, FP8 5,229.8); some "
        "third-party pages list 2,615 as 'dense FP16', which is the sparse figure, and "
        "others ~330 TFLOPS, which is the vector (non-matrix) rate. FP32 163.4 is AMD's "
        "matrix and vector FP32 peak. 750 W peak board power. Price: $2.00/GPU-h, the "
        "May 2026 median (cliffcenter.com: $1.50 TensorWave, $1.85 Vultr, ~$6 Azure and "
        "Oracle)."
    ),
)

TPU_V4 = Hardware(
    name="tpu-v4",
    label="Google Cloud TPU v4 (one chip)",
    kind="tpu",
    # Google: "275 teraflops (bf16 or int8)" per chip; TPUs have no sparsity mode
    peak_tflops={"bfloat16": 275.0, "int8": 275.0},
    bandwidth_gbs=1200.0,
    memory_gb=32 * 2**30 / 1e9,
    power_w=192.0,
    price_per_hour=3.22,
    sources=(
        "Google Cloud TPU v4 documentation (https://cloud.google.com/tpu/docs/v4): "
        "275 TFLOPS bf16 or int8, 32 GiB HBM2 at 1200 GBps, measured min/mean/max power "
        "90/170/192 W",
        "Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for Machine "
        "Learning with Hardware Support for Embeddings', ISCA 2023",
        "https://cloud.google.com/tpu/pricing (v4 on-demand price per chip-hour)",
    ),
    notes=(
        "Chosen over v5e/v5p because Google publishes v4's power: 192 W is the measured "
        "maximum (mean 170 W) in Google's docs; for v5e (197 TFLOPS bf16, 393 TOPS int8, "
        "16 GB HBM2e at 819 GB/s) and v5p Google publishes no per-chip power. No float32 "
        "matrix rate is published. Memory: Google states 32 GiB = 34.4 GB. Price: $3.22 per "
        "chip-hour on demand in us-central2 (the price on Google's pricing page in Aug 2022, "
        "as cited by the INFER forecasting question 1114); unconfirmed here for 2026."
    ),
)

GROQ_LPU = Hardware(
    name="groq-lpu",
    label="Groq LPU (GroqChip / GroqCard, 14 nm)",
    kind="lpu",
    # Groq quotes 188 TFLOPS FP16 and 750 TOPS INT8 per chip; no sparsity mode
    peak_tflops={"float16": 188.0, "int8": 750.0},
    bandwidth_gbs=80_000.0,
    memory_gb=0.23,
    power_w=300.0,
    price_per_hour=_owned_price_per_hour(20_625.0, 300.0),
    sources=(
        "Groq GroqChip product brief (https://groq.com): 750 TOPS INT8, 188 TFLOPS FP16, "
        "230 MB SRAM, 80 TB/s on-die memory bandwidth",
        "TechPowerUp news on the Groq LPU, Feb 2024 (same figures: 320x320 matrix, 5,120 vector ALUs, 80 TB/s, 230 MB)",
        "TechSpot, 'Groq launches the first AI accelerator card capable of 1 PetaOPS', Jan 2020 ('300W per core')",
    ),
    notes=(
        "230 MB of on-chip SRAM per chip and no external DRAM: weights live in SRAM, so a "
        "model is spread over hundreds of chips (70 GB of 8-bit weights / 0.23 GB = ~305 "
        "chips, before activations and KV cache), and 80 TB/s is on-die bandwidth, not "
        "chip-to-chip. No bfloat16 or float32 rate is published: fp16 is the float one. "
        "Power: 300 W from press coverage of the 2020 launch; no Groq datasheet figure was "
        "found here: unconfirmed. Price: bought, not rented per chip (GroqCloud sells tokens): "
        "$20,625 per GroqCard (the widely reported 2024 distributor listing; unconfirmed "
        "here) over 3 years + electricity at $0.15/kWh; the host server is not counted."
    ),
)

L4 = Hardware(
    name="l4",
    label="NVIDIA L4 24GB (PCIe, 72 W)",
    kind="gpu",
    # datasheet: FP16/BF16 242, FP8 485, INT8 485 "with sparsity" -> halved; FP32 30.3
    peak_tflops={"float32": 30.3, "bfloat16": 121.0, "float16": 121.0, "fp8": 242.5, "int8": 242.5},
    bandwidth_gbs=300.0,
    memory_gb=24.0,
    power_w=72.0,
    price_per_hour=0.70,
    sources=(
        "NVIDIA L4 Tensor Core GPU datasheet (https://www.nvidia.com/en-us/data-center/l4/)",
        "https://grokipedia.com/page/NVIDIA_L4_vs_L40S (242 TFLOPS FP16 and 485 FP8/INT8 "
        "with sparsity, 300 GB/s, 72 W)",
    ),
    notes=(
        "An inference card with GDDR6, not HBM: a tenth of an H100's bandwidth at a tenth "
        "of its power. Tensor peaks are the datasheet's sparse figures halved. Price: "
        "~$0.70/h, roughly a 1-L4 cloud VM on demand (e.g. Google Cloud g2-standard-4, "
        "including its 4 vCPUs); unconfirmed here."
    ),
)

# Zen 4: 2 FMA pipes per core, 256 bits wide = 8 float32 lanes (AVX-512 runs as two halves).
_RYZEN_7840U_GFLOPS = 8 * 2 * 8 * 2 * 5.1  # cores x FMA units x lanes x 2 x GHz = 1305.6
RYZEN_7840U = Hardware(
    name="ryzen-7840u",
    label="AMD Ryzen 7 7840U laptop CPU (8 Zen 4 cores)",
    kind="cpu",
    peak_tflops={"float32": _RYZEN_7840U_GFLOPS / 1000},
    # LPDDR5x-7500 on a 128-bit bus: 7.5e9 transfers/s x 16 bytes
    bandwidth_gbs=7.5 * 16,
    memory_gb=32.0,
    power_w=28.0,
    price_per_hour=_owned_price_per_hour(1000.0, 28.0),
    sources=(
        "AMD Ryzen 7 7840U product page (https://www.amd.com/en/products/processors/"
        "laptop/ryzen/7000-series/amd-ryzen-7-7840u.html): 8 cores, 3.3 GHz base, "
        "5.1 GHz boost, 28 W default TDP (15-30 W), LPDDR5x-7500 or DDR5-5600",
        "https://liliputing.com/amd-ryzen-mobile-7040u-chips-are-coming-to-thin-and-light-"
        "laptops-zen-4-and-rdna-3/ (7840U: 8/16, 3.3/5.1 GHz, 15-30 W)",
        "Stack Overflow question 76195232, 'Does Zen 4 core have 48 flops per cycle for "
        "32-bit precision fp?' (2 x 256-bit FMA pipes: 32 FP32 FLOP/cycle with FMAs)",
    ),
    notes=(
        "CPU cores only (the Radeon 780M iGPU and the XDNA NPU are not counted). Peak "
        "float32 = 8 cores x 2 FMA units x 8 lanes (256-bit) x 2 FLOP per FMA x 5.1 GHz = "
        "1,305.6 GFLOPS; 5.1 GHz is the single-core boost, so all 8 cores within 28 W run "
        "slower (at the 3.3 GHz base: 845 GFLOPS). Bandwidth: LPDDR5x-7500 x 128-bit bus = "
        "120 GB/s (DDR5-5600 laptops: 89.6 GB/s). Memory: 32 GB assumed (16-64 GB are sold). "
        "Price: an assumed $1,000 laptop over 3 years + 28 W at $0.15/kWh."
    ),
)

CATALOG: dict[str, Hardware] = {
    hw.name: hw for hw in (H100_SXM, H200_SXM, B200, MI300X, TPU_V4, GROQ_LPU, L4, RYZEN_7840U)
}
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
    `minfer.calibrate.Ceilings` has; `cpu` and `measured_at` are used in the notes if present.
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
            "measured: `minfer calibrate` (minfer.calibrate.Ceilings)",
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
