"""Where a training process runs among several workers of TensorFlow's multi-worker runtime:
its place (``Cluster``), its server, its session settings, the bounded wait for the others
(``Watchdog``), and the agreement before step 0. training.py builds the graph and the loop;
workers.py starts and supervises the processes."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.pipeline.params import TrainParams
from tfpersist.tfapi import tfcompat
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()


@dataclass(frozen=True)
class Cluster:
    """Where this process trains: task ``task`` of ``workers`` (TF's multi-worker runtime,
    worker 0 the chief), each at ``addresses[i]``; one worker needs no server."""

    workers: int = 1
    task: int = 0
    addresses: tuple[str, ...] = ()

    @property
    def chief(self) -> bool:
        return self.task == 0

    def micro_batches(self, k: int) -> range:
        """The micro-batches this worker computes: a contiguous block, so that gathering
        them in worker order lists all ``k`` in order."""
        return range(self.task * k // self.workers, (self.task + 1) * k // self.workers)

    def device(self) -> str:
        return f"/job:worker/replica:0/task:{self.task}/device:CPU:0" if self.workers > 1 else ""


SINGLE = Cluster()
# collective instance keys: what the workers agree on before step 0, each step's gather, and
# the chief's state (one gather per dtype of its variables, keys STATE_KEY, STATE_KEY + 1, …)
AGREE_KEY, GRADIENTS_KEY, STATE_KEY = 1, 2, 3


def session_config(params: TrainParams, cluster: Cluster = SINGLE):
    """Fixed thread pools; Grappler's arithmetic optimizer off (it would reorder the sum of
    the micro-batches' gradients); the chief leads the collectives."""
    from tensorflow.core.protobuf import rewriter_config_pb2

    config = tfcompat.session_config(params.threads)
    off = rewriter_config_pb2.RewriterConfig.OFF
    config.graph_options.rewrite_options.arithmetic_optimization = off
    if cluster.workers > 1:
        config.experimental.collective_group_leader = "/job:worker/replica:0/task:0"
    return config


class PortTaken(TfpersistError):
    """A worker's server could not listen on its address (the launcher picks others)."""


def server(cluster: Cluster, config):
    if cluster.workers == 1:
        return None
    spec = tf.train.ClusterSpec({"worker": list(cluster.addresses)})
    try:
        return tf.distribute.Server(
            spec, job_name="worker", task_index=cluster.task, config=config, start=True
        )
    except (tf.errors.OpError, RuntimeError, ValueError) as e:
        raise PortTaken(
            f"worker {cluster.task}: cannot serve on {cluster.addresses[cluster.task]} "
            f"({first_line(e)})"
        ) from None


class Watchdog:
    """Bounds a worker's wait for the others: a step (or the agreement) that has not ended
    ``timeout`` seconds after it began is reported (``report``: one line) and the process
    exits — a peer that hangs or stopped cannot hang this one."""

    def __init__(self, timeout: float, task: int, report: Callable[[str], None]):
        import threading

        self.timeout, self.task, self.report = timeout, task, report
        self.armed: tuple[float, int] | None = None
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, name="tfpersist-watchdog", daemon=True).start()

    def arm(self, step: int) -> None:
        with self.lock:
            self.armed = (time.monotonic(), step)

    def disarm(self) -> None:
        with self.lock:
            self.armed = None

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.5, self.timeout / 4))
            with self.lock:
                armed = self.armed
            if armed and time.monotonic() - armed[0] > self.timeout:
                self.report(
                    f"worker {self.task}: timed out after {self.timeout:g} s waiting for the "
                    f"other workers at step {armed[1]}"
                )
                sys.stderr.flush()
                os._exit(1)


def report_line(line: str) -> None:
    print(f"train: error: {line}", file=sys.stderr)


def run_step(sess, fetches, feed, cluster: Cluster, step: int, watchdog: Watchdog | None):
    """One step; a peer that died is one line naming this worker, one that hangs is the
    watchdog's."""
    if watchdog is None:
        return sess.run(fetches, feed)
    watchdog.arm(step)
    try:
        return sess.run(fetches, feed)
    except (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
        tf.errors.InternalError,
    ):
        raise TfpersistError(
            f"worker {cluster.task}: lost the other workers at step {step} (one stopped answering)"
        ) from None
    finally:
        watchdog.disarm()


def chief_state(variables, gathered):
    """An op setting every variable (weights, optimizer slots, the step, the best accuracy)
    to the chief's values: each dtype's variables packed into one vector, gathered from every
    worker (``gathered(tensor, instance_key)``), and worker 0's part assigned — the chief's
    restored checkpoint reaches the others over the collective runtime, nothing read from
    their disks."""
    by_dtype: dict = {}
    for v in variables:
        by_dtype.setdefault(v.dtype.base_dtype, []).append(v)
    assigns = []
    for i, (_, group) in enumerate(sorted(by_dtype.items(), key=lambda kv: kv[0].name)):
        sizes = [int(np.prod(v.shape.as_list())) for v in group]
        packed = tf.concat([tf.reshape(v.read_value(), [-1]) for v in group], 0)
        chief = gathered(packed, STATE_KEY + i)[: sum(sizes)]
        for v, part in zip(group, tf.split(chief, sizes), strict=True):
            assigns.append(v.assign(tf.reshape(part, v.shape)))
    return tf.group(assigns)


def agree(sess, g, expected: dict, watchdog) -> None:
    """Before step 0 every worker shows the others its fingerprint (params, data, CPU pin)
    and its variables' names, dtypes and shapes; any difference is refused by all, naming
    who differs (nothing is trained or written)."""
    variables = g.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    shapes = [[v.op.name, v.dtype.base_dtype.name, v.shape.as_list()] for v in variables]
    # the variables' layout too: the chief's state is sent as one flat vector per dtype
    agreed = {"fingerprint": expected, "variables": shapes}
    digest = hashlib.sha256(atomic.dumps_json(agreed).encode()).digest()
    mine = np.frombuffer(digest[:16], ">i8").astype(np.int64).tolist()
    seen = run_step(sess, g.agreed, {g.agree_in: mine}, g.cluster, 0, watchdog).reshape(-1, 2)
    if (seen == seen[0]).all():
        return
    views = [
        f"worker {i} has fingerprint {int(h) & (2**64 - 1):016x}" for i, (h, _) in enumerate(seen)
    ]
    raise TfpersistError(
        f"worker {g.cluster.task}: the workers disagree before step 0: {'; '.join(views)}; "
        "every worker needs the same commit, params and prepared data (models/train only on "
        "the chief)"
    )
