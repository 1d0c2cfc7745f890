"""What the stages call, one module per stage and the model: params (every knob, validated),
prepare, architectures and model (the network), training, release (the inference
checkpoint), export (the shipped formats) and evaluation.

Imports: any package below the CLI (core, safety, graph, formats, freezing, running,
shipping, versions, views).
"""
