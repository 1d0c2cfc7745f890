"""What decides float bits and how far apart two results are: the instruction set
TensorFlow's kernels are pinned to (``runtime``), the CPU cache sizes Eigen blocks by, read
or simulated (``cpucache``), and the one distance every comparison uses (``distances``).

Imports: core (``runtime`` pins TensorFlow's C library by its module's name if it is loaded).
No TensorFlow import.
"""
