"""minfer's figures, each drawn by the library from numbers it measured or counted.

One module per lesson: `attention` (03), `prefill` (04, 05), `sampling` (06), `batching` (07),
`costs` (08), `roof` (09), `kernels` (10), `quantization` (11), `economics` (12), and `bench` (the
Performance page); `common` holds what they share (`NotebookFigure`, `save_figure`, `subplots`).

Every function returns a matplotlib `Figure` drawn without pyplot (headless, in tests, in
Jupyter); most take an `ax` to draw into, and a `title`: None for the default, "" for none.
Artists carry a `gid` so tests and notebooks can find what was drawn. The figures trust what the
library's own functions return (a `Profile`, `SweepRow`s, an `Arch`, arrays); an argument of the
wrong kind fails as one `InvalidInputError` naming the function and an example call.
"""

from minfer.plots.attention import attention_growth, attention_heads, attention_map
from minfer.plots.batching import intensity_by_batch, throughput_by_batch
from minfer.plots.bench import benchmark_bars
from minfer.plots.common import NotebookFigure, save_figure, subplots
from minfer.plots.costs import byte_shares, intensity_by_length
from minfer.plots.economics import batch_economics, projected_cost, projected_throughput, tokens_per_watt
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

__all__ = ["NotebookFigure", "save_figure", "subplots"]
__all__ += ["attention_growth", "attention_heads", "attention_map"]  # lesson 03
__all__ += ["generation_cost", "prefill_scaling"]  # lessons 04 and 05
__all__ += ["token_probabilities", "token_probability_panels"]  # lesson 06
__all__ += ["cumulative_probability", "repetition_by_temperature"]  # lesson 06
__all__ += ["intensity_by_batch", "throughput_by_batch"]  # lesson 07
__all__ += ["byte_shares", "intensity_by_length"]  # lesson 08
__all__ += ["roofline", "timeline"]  # lesson 09
__all__ += ["decode_step_bars"]  # lesson 10
__all__ += ["quantization_error", "time_against_bytes"]  # lesson 11
__all__ += ["batch_economics", "projected_cost", "projected_throughput", "tokens_per_watt"]  # lesson 12
__all__ += ["benchmark_bars"]  # the Performance page
