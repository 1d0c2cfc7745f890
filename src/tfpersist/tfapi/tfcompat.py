"""Importing TensorFlow quietly, and the session settings every graph here runs with."""

from __future__ import annotations

import os
import sys
import tempfile


def import_tf():
    """Import TensorFlow with its C++ and Python log noise turned down; return the module.

    TF 2.21 logs oneDNN notices to fd 2 at import whatever TF_CPP_MIN_LOG_LEVEL says; they
    are captured and shown only if the import fails.
    """
    global _quieted
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        _quiet_import()
    import tensorflow as tf

    if not _quieted:  # also when something imported TensorFlow before (Keras, a test)
        _quieted = True
        tf.get_logger().setLevel("ERROR")
        protos = sys.modules.get("tfpersist.tfapi.protos")
        if protos is not None:  # its modules loaded before their packages: bind them there
            protos.bind_to_packages()
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    return tf


_quieted = False


def _quiet_import() -> None:
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
