"""Data sets larger than memory: prepared splits as fixed-width record files read a batch
at a time (``records``), and orders over them computed a batch at a time (``order``).

Imports: the core only (errors, data's schema, layout); no TensorFlow, no pandas.
"""
