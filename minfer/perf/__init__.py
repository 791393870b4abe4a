"""Instrumentation: what a step costs and how fast this machine runs it (lessons 08, 09 and 12).

`counts` adds up each op's FLOPs and bytes for a step (GPT-2 or the Llama family); `profiler`
times a run and sets the two side by side; `report` prints it; `calibrate` measures this
machine's ceilings; `bench` times the backends; `hardware` is a catalogue of chips
(`data/hardware.toml`) and `whatif` projects a model, or a public shape (`data/archs.toml`), onto
them. Each op's own cost formula stays beside the op, in the stage modules.
"""
