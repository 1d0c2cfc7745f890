"""Importing TensorFlow quietly, and the session settings every graph here runs with."""

from __future__ import annotations

import os


def import_tf():
    """Import TensorFlow with its C++ and Python log noise turned down; return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TF
        pass
    return tf


def session_config(threads: int | None = None):
    """A ConfigProto with fixed thread pools (``threads`` per pool) when given."""
    tf = import_tf()
    config = tf.compat.v1.ConfigProto()
    if threads:
        config.intra_op_parallelism_threads = threads
        config.inter_op_parallelism_threads = threads
    return config


def enable_determinism() -> None:
    """Ask TensorFlow for deterministic kernels (same hardware → same bits)."""
    tf = import_tf()
    tf.config.experimental.enable_op_determinism()
