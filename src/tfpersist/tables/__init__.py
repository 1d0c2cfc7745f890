"""Data sets larger than memory: prepared splits as fixed-width record files read a batch
at a time (``records``), and orders over them computed a batch at a time (``order``).

Imports: core; no TensorFlow (pandas only for CSV, in ``data``).
"""
