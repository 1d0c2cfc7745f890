"""Running a model of any format: a frozen graph in a TF session (runner), every format opened
the same way with the same checks (loaders), offline prediction from CSV/.npy (prediction),
and TF Serving's REST API (serving).

Imports: core, tfapi, tables, safety, graph, formats, freezing.
"""
