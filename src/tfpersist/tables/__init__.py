"""Data sets larger than memory: prepared splits as fixed-width record files read by row
(``records``), and orders over them computed a batch at a time (``order``). No TensorFlow,
no pandas."""
