"""Freezing: any source (TF1 checkpoint, SavedModel, .pb) folded into one frozen GraphDef —
the entry point (freeze), weights streamed from checkpoint files (streaming), variables
restored by reading the saver's graph (restore), and a model frozen in memory with its names
(models).

Imports: core, tfapi, safety, graph, formats.
"""
