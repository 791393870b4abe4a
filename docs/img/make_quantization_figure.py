"""Redraw docs/img/quantization-error-classroom.png, the figure of docs/concepts/quantization.md.

The int8 round-trip error of every weight of the classroom model's layer-0 `mlp.c_fc`, one scale
for the matrix against one scale per output column, drawn by minfer.plots.quantization's
`quantization_error`. Deterministic: the weights ship with the repository. From the repository root:

    python docs/img/make_quantization_figure.py
"""

from pathlib import Path

import minfer
from minfer.plots import quantization_error, save_figure

OUT = Path(__file__).with_name("quantization-error-classroom.png")

if __name__ == "__main__":
    model = minfer.load_model()  # the classroom model, NumPy, float32
    c_fc = model.weights.h[0].mlp.c_fc.weight  # [n_embd, 4 n_embd]
    fig = quantization_error(
        c_fc, axis=0, title="Layer 0 mlp.c_fc of the classroom model: the int8 error of every weight"
    )
    print(save_figure(fig, OUT))
