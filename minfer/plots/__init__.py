"""minfer's figures, each drawn by the library from numbers it measured or counted.

One module per subject, matching the lesson that shows it:

- `minfer.plots.attention`: attention maps of one head or many, and n² growth (lesson 03).
- `minfer.plots.prefill`: prefill time and GFLOP/s against prompt length; cached vs recomputed
  generation cost (lessons 04 and 05).
- `minfer.plots.sampling`: next-token distributions before and after each transform (lesson 06).
- `minfer.plots.batching`: tokens/s and FLOP/byte against the batch size (lesson 07).
- `minfer.plots.costs`: where a decode step's bytes go; prefill vs decode intensity (lesson 08).
- `minfer.plots.roof`: the roofline and the timeline of a profiled generation (lesson 09).
- `minfer.plots.kernels`: a decode step's time per backend beside its bytes (lesson 10).
- `minfer.plots.quantization`: int8 rounding error; time against bytes moved (lesson 11).
- `minfer.plots.economics`: what-if projections by batch and chip (lesson 12).
- `minfer.plots.bench`: benchmark results beside each system's roofline bound (Performance page).
- `minfer.plots.common`: what every figure shares (`NotebookFigure`, `save_figure`, `subplots`).

Every function returns a matplotlib `Figure` drawn without pyplot, so it works headless, in
tests and in Jupyter; most take an `ax` to draw into instead. Artists carry a `gid` so tests
and notebooks can find what was drawn. The figures take what the library's own functions return
(typed results: a `Profile`, `SweepRow`s, an `Arch`, arrays) and trust it; an argument of the
wrong kind fails as one `InvalidInputError` naming the function and an example call
(`minfer.plots.common.figure_function`), and a profile given as a dict is checked once.
"""

from minfer.plots.attention import attention_growth, attention_heads, attention_map
from minfer.plots.batching import intensity_by_batch, throughput_by_batch
from minfer.plots.bench import benchmark_bars
from minfer.plots.common import NotebookFigure, save_figure, subplots
from minfer.plots.costs import byte_shares, intensity_by_length
from minfer.plots.economics import (
    batch_economics,
    projected_cost,
    projected_throughput,
    tokens_per_watt,
)
from minfer.plots.kernels import decode_step_bars
from minfer.plots.prefill import generation_cost, prefill_scaling
from minfer.plots.quantization import quantization_error, time_against_bytes
from minfer.plots.roof import roofline, timeline
from minfer.plots.sampling import (
    cumulative_probability,
    repetition_by_temperature,
    token_probabilities,
    token_probability_panels,
)

__all__ = [
    "NotebookFigure",
    "attention_growth",
    "attention_heads",
    "attention_map",
    "batch_economics",
    "benchmark_bars",
    "byte_shares",
    "cumulative_probability",
    "decode_step_bars",
    "generation_cost",
    "intensity_by_batch",
    "intensity_by_length",
    "prefill_scaling",
    "projected_cost",
    "projected_throughput",
    "quantization_error",
    "repetition_by_temperature",
    "roofline",
    "save_figure",
    "subplots",
    "throughput_by_batch",
    "time_against_bytes",
    "timeline",
    "token_probabilities",
    "token_probability_panels",
    "tokens_per_watt",
]
