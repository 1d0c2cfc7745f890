"""What the stages call, one module per stage and the model: params (every knob, validated),
prepare, architectures and model (the network), training, release (the inference
checkpoint), export (the shipped formats) and evaluation.

Imports: core, tfapi, numerics, tables, safety, graph, formats, freezing, running,
shipping.
"""
